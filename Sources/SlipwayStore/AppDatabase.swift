// SlipwayStore: the SQLite file (WAL), its migrations, and every SQL statement Slipway runs. This file opens and
// migrates the store; each record type's statements are in AppDatabase+<Records>.swift, the schema in
// Migrations.swift. Callers use intention-named methods and never import GRDB.
import Foundation
import GRDB
import SlipwayBasics

public enum StoreError: UserFacingError {
    case appExists(AppName)
    case unknownApp(String)
    case unknownRelease(AppName, ReleaseVersion)
    case notRollbackable(AppName, ReleaseVersion, why: String, candidates: [ReleaseVersion])
    case nothingToRollBackTo(AppName)
    case database(String)

    public var description: String {
        switch self {
        case .appExists(let app): "app \(app) already exists; choose another name or deploy to it"
        case .unknownApp(let app):
            "no app named \(app); run `slipway apps` to list them or `slipway apps:create \(app)`"
        case .unknownRelease(let app, let version):
            "\(app) has no release \(version); run `slipway releases \(app)` to list them"
        case .notRollbackable(let app, let version, let why, let candidates):
            "cannot roll \(app) back to \(version): \(why); "
                + (candidates.isEmpty
                    ? "no release can be rolled back to"
                    : "releases you can roll back to: " + candidates.map(\.description).joined(separator: ", "))
        case .nothingToRollBackTo(let app):
            "\(app) has no earlier built release to roll back to; deploy with git push first"
        case .database(let message): "the Slipway database failed: \(message)"
        }
    }
}

public final class AppDatabase: Sendable {
    private let writer: any DatabaseWriter

    /// Opens (creating if needed) the store at `path` in WAL mode and migrates it.
    public static func open(path: String) throws -> AppDatabase {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA busy_timeout = 5000")
        }
        return try AppDatabase(DatabasePool(path: path, configuration: configuration))
    }

    /// An in-memory store, for tests.
    public static func inMemory() throws -> AppDatabase {
        try AppDatabase(DatabaseQueue())
    }

    private init(_ writer: any DatabaseWriter) throws {
        self.writer = writer
        try Self.migrator.migrate(writer)
    }

    // MARK: Plumbing

    func read<T: Sendable>(_ body: @Sendable (Database) throws -> T) throws -> T {
        do { return try writer.read(body) } catch let error as any UserFacingError { throw error } catch {
            throw StoreError.database(String(describing: error))
        }
    }

    func write<T: Sendable>(_ body: @Sendable (Database) throws -> T) throws -> T {
        do { return try writer.write(body) } catch let error as any UserFacingError { throw error } catch {
            throw StoreError.database(String(describing: error))
        }
    }
}
