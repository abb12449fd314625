// Instances as the supervisor reports them: recorded, their status, the ones running, and crash loops.
import Foundation
import GRDB
import SlipwayBasics

extension AppDatabase {
    public func recordInstance(_ instance: InstanceRecord) throws -> InstanceRecord {
        try write { db in
            var saved = instance
            try saved.insert(db)
            return saved
        }
    }

    /// Updates the newest instance with process id `pid`; `exitReason` says how it ended.
    public func setInstanceStatus(pid: Int32, _ status: InstanceStatus, exitReason: String? = nil) throws {
        try write { db in
            let stoppedAt: Date? = status == .stopped || status == .crashed ? Date() : nil
            try db.execute(
                sql: "UPDATE instance SET status = ?, stoppedAt = COALESCE(?, stoppedAt), "
                    + "exitReason = COALESCE(?, exitReason) WHERE id = (SELECT MAX(id) FROM instance WHERE pid = ?)",
                arguments: [status, stoppedAt, exitReason, pid]
            )
        }
    }

    /// Instances of `release` that crashed at least `exits` (by default `CrashLoop.exits`) times in the last
    /// `CrashLoop.window`.
    public func crashLoops(
        of app: AppName,
        release: ReleaseVersion,
        exits: Int = CrashLoop.exits,
        now: Date = Date()
    ) throws -> [CrashLoop] {
        try read { db in
            let crashes = try InstanceRecord.filter(
                Column("appName") == app.rawValue && Column("releaseNumber") == release.number
                    && Column("status") == InstanceStatus.crashed
                    && Column("stoppedAt") >= now.addingTimeInterval(-CrashLoop.window)
            ).order(Column("id")).fetchAll(db)
            let byProcess = Dictionary(grouping: crashes) { "\($0.processType).\($0.processIndex)" }
            return byProcess.compactMap { process, crashes in
                crashes.count >= exits
                    ? CrashLoop(process: process, exits: crashes.count, lastExit: crashes.last?.exitReason) : nil
            }.sorted { $0.process < $1.process }
        }
    }

    /// Instances not known to have stopped: of one app, or of all apps.
    public func runningInstances(of app: AppName? = nil) throws -> [InstanceRecord] {
        try read { db in
            var request = InstanceRecord.filter(
                [InstanceStatus.booting, InstanceStatus.serving, InstanceStatus.draining].contains(Column("status"))
            )
            if let app { request = request.filter(Column("appName") == app.rawValue) }
            return try request.order(Column("id")).fetchAll(db)
        }
    }
}
