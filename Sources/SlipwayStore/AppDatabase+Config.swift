// Config vars: an app's current values, set and unset.
import Foundation
import GRDB
import SlipwayBasics

extension AppDatabase {
    public func config(of app: AppName) throws -> [String: String] {
        try read { db in try Self.config(of: app, db) }
    }

    static func config(of app: AppName, _ db: Database) throws -> [String: String] {
        let rows = try Row.fetchAll(
            db,
            sql: "SELECT key, value FROM configVar WHERE appName = ?",
            arguments: [app.rawValue]
        )
        return Dictionary(uniqueKeysWithValues: rows.map { ($0["key"], $0["value"]) })
    }

    public func setConfig(_ values: [String: String], of app: AppName) throws {
        try write { db in
            for (key, value) in values {
                try db.execute(
                    sql: "INSERT INTO configVar (appName, key, value) VALUES (?, ?, ?) "
                        + "ON CONFLICT(appName, key) DO UPDATE SET value = excluded.value",
                    arguments: [app.rawValue, key, value]
                )
            }
        }
    }

    public func unsetConfig(_ keys: [String], of app: AppName) throws {
        try write { db in
            for key in keys {
                try db.execute(
                    sql: "DELETE FROM configVar WHERE appName = ? AND key = ?",
                    arguments: [app.rawValue, key]
                )
            }
        }
    }
}
