// One-off commands running in the background (`run --detach`), kept so that `ps` lists them and `ps:stop` reaches
// them after a daemon restart too: they outlive the daemon that started them, as instances do.
import Foundation
import GRDB
import SlipwayBasics

public struct OneOffRun: Sendable, Codable, Equatable, FetchableRecord, MutablePersistableRecord {
    public var id: Int64?
    public var appName: String
    public var pid: Int32
    /// When the process started, in clock ticks since boot: with the pid, it tells the process from a later one
    /// that reuses the pid.
    public var startTime: Int64
    public var releaseNumber: Int
    public var commandLine: String
    public var startedAt: Date

    public static let databaseTableName = "oneOffRun"

    public init(app: AppName, pid: Int32, startTime: UInt64, release: ReleaseVersion, commandLine: String) {
        appName = app.rawValue
        self.pid = pid
        self.startTime = Int64(clamping: startTime)
        releaseNumber = release.number
        self.commandLine = commandLine
        startedAt = Date()
    }

    public var release: ReleaseVersion { ReleaseVersion(releaseNumber) }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension AppDatabase {
    public func recordOneOffRun(_ run: OneOffRun) throws {
        try write { db in
            var run = run
            try run.insert(db)
        }
    }

    /// The app's one-off runs as recorded, oldest first (some may have ended while no daemon watched).
    public func oneOffRuns(of app: AppName) throws -> [OneOffRun] {
        try read { db in
            try OneOffRun.filter(Column("appName") == app.rawValue).order(Column("id")).fetchAll(db)
        }
    }

    public func removeOneOffRun(pid: Int32, startTime: Int64) throws {
        try write { db in
            _ = try OneOffRun.filter(Column("pid") == pid && Column("startTime") == startTime).deleteAll(db)
        }
    }
}
