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

    /// Config vars set for the first time (app.json's defaults and generated secrets): added to the app's config
    /// and to the release being built, in one transaction; a key either already has keeps its value. Returns the
    /// release with its config.
    public func addConfigDefaults(_ values: [String: String], of app: AppName, to releaseID: Int64) throws -> Release {
        try write { db in
            guard var release = try Release.fetchOne(db, key: releaseID) else {
                throw InternalError("release \(releaseID) vanished while building")
            }
            for (key, value) in values {
                try db.execute(
                    sql: "INSERT INTO configVar (appName, key, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    arguments: [app.rawValue, key, value]
                )
            }
            release.config.merge(values) { kept, _ in kept }
            try release.update(db)
            return release
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
