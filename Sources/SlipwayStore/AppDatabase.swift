// SlipwayStore: the SQLite file (WAL), its migrations, and every SQL statement Slipway runs.
// Callers use intention-named methods and never import GRDB.
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

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1 apps, releases, deploy events, config, instances") { db in
            try db.create(table: "app") { t in
                t.primaryKey("name", .text)
                t.column("deployBranch", .text).notNull()
                t.column("formation", .text).notNull().defaults(to: #"{"web":1}"#)
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "release") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("app", onDelete: .cascade).notNull()
                t.column("number", .integer).notNull()
                t.column("status", .text).notNull()
                t.column("description", .text).notNull()
                t.column("commitID", .text)
                t.column("commitAuthor", .text)
                t.column("buildpack", .text)
                t.column("processTypes", .text)
                t.column("buildNumber", .integer)
                t.column("config", .text).notNull().defaults(to: "{}")
                t.column("failureReason", .text)
                t.column("buildLog", .text).notNull().defaults(to: "")
                t.column("createdAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
                t.uniqueKey(["appName", "number"])
            }
            try db.create(table: "deployEvent") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("release", onDelete: .cascade).notNull()
                t.column("step", .text).notNull()
                t.column("outcome", .text).notNull()
                t.column("detail", .text)
                t.column("startedAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
            }
            try db.create(table: "configVar") { t in
                t.belongsTo("app", onDelete: .cascade).notNull()
                t.column("key", .text).notNull()
                t.column("value", .text).notNull()
                t.primaryKey(["appName", "key"])
            }
            try db.create(table: "instance") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("app", onDelete: .cascade).notNull()
                t.column("releaseNumber", .integer).notNull()
                t.column("processType", .text).notNull()
                t.column("pid", .integer).notNull()
                t.column("port", .integer)
                t.column("status", .text).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("stoppedAt", .datetime)
            }
        }
        migrator.registerMigration("v2 keys, domains, maintenance, release causes, per-app retention") { db in
            try db.create(table: "accessKey") { t in
                t.primaryKey("name", .text)
                t.column("role", .text).notNull()
                t.column("publicKey", .text).notNull().unique()
                t.column("fingerprint", .text).notNull()
                t.column("apps", .text).notNull().defaults(to: "[]")
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "domain") { t in
                t.primaryKey("hostname", .text)
                t.belongsTo("app", onDelete: .cascade).notNull()
            }
            try db.alter(table: "app") { t in
                t.add(column: "maintenance", .boolean).notNull().defaults(to: false)
                t.add(column: "keepReleases", .integer)
                t.add(column: "workersOverlap", .boolean).notNull().defaults(to: false)
            }
            try db.alter(table: "release") { t in
                t.add(column: "cause", .text).notNull().defaults(to: "local")
            }
            try db.create(table: "promotion") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("sourceRelease", inTable: "release", onDelete: .setNull)
                t.belongsTo("targetRelease", inTable: "release", onDelete: .cascade).notNull()
                t.column("sourceApp", .text).notNull()
                t.column("sourceNumber", .integer).notNull()
                t.column("targetApp", .text).notNull()
                t.column("targetNumber", .integer).notNull()
            }
        }
        migrator.registerMigration("v3 endpoint prefix") { db in
            try db.alter(table: "app") { t in
                t.add(column: "endpointPrefix", .text)
            }
        }
        migrator.registerMigration("v4 per-app drain timeout, sticky sessions") { db in
            try db.alter(table: "app") { t in
                t.add(column: "drainTimeout", .integer)
                t.add(column: "stickySessions", .boolean).notNull().defaults(to: false)
            }
        }
        migrator.registerMigration("v5 instance identity for adoption") { db in
            try db.alter(table: "instance") { t in
                t.add(column: "processIndex", .integer).notNull().defaults(to: 1)
                t.add(column: "startTime", .integer)
                t.add(column: "exitReason", .text)
            }
        }
        return migrator
    }

    // MARK: Apps

    /// Records a new app and its v1 "Initial release", as Heroku does.
    public func createApp(_ name: AppName, deployBranch: String = "main", cause: String = "local") throws -> App {
        try write { db in
            guard try App.fetchOne(db, key: name.rawValue) == nil else { throw StoreError.appExists(name) }
            let app = App(name: name.rawValue, deployBranch: deployBranch, formation: #"{"web":1}"#, createdAt: Date())
            try app.insert(db)
            var initial = Release(
                id: nil,
                appName: name.rawValue,
                number: 1,
                status: .initial,
                description: "Initial release",
                commitID: nil,
                commitAuthor: nil,
                buildpack: nil,
                processTypes: nil,
                buildNumber: nil,
                config: "{}",
                failureReason: nil,
                buildLog: "",
                createdAt: app.createdAt,
                finishedAt: app.createdAt,
                cause: cause
            )
            try initial.insert(db)
            return app
        }
    }

    /// How many instances of `type` each release of `app` runs.
    public func setScale(_ count: Int, of type: String, for app: AppName) throws {
        try updateApp(app) { record in
            var formation: [String: Int] = JSONMap.decode(record.formation)
            formation[type] = count
            record.formation = JSONMap.encode(formation)
        }
    }

    public func apps() throws -> [App] {
        try read { db in try App.order(Column("name")).fetchAll(db) }
    }

    public func app(_ name: AppName) throws -> App {
        try read { db in
            guard let app = try App.fetchOne(db, key: name.rawValue) else { throw StoreError.unknownApp(name.rawValue) }
            return app
        }
    }

    // MARK: Releases

    /// Records the next release of `app` as building, with the app's config as it is now.
    public func startRelease(
        of app: AppName,
        description: String,
        commitID: String?,
        author: String?,
        cause: String
    ) throws -> Release {
        try write { db in
            var release = Release(
                id: nil,
                appName: app.rawValue,
                number: try Self.nextNumber(of: app, db),
                status: .building,
                description: description,
                commitID: commitID,
                commitAuthor: author,
                buildpack: nil,
                processTypes: nil,
                buildNumber: nil,
                config: JSONMap.encode(try Self.config(of: app, db)),
                failureReason: nil,
                buildLog: "",
                createdAt: Date(),
                finishedAt: nil,
                cause: cause
            )
            try release.insert(db)
            return release
        }
    }

    /// The build of `releaseID` succeeded: it runs its own tree from now on.
    public func recordBuild(of releaseID: Int64, buildpack: String, processTypes: [String: String]) throws -> Release {
        try write { db in
            try db.execute(
                sql:
                    "UPDATE release SET buildpack = ?, processTypes = ?, buildNumber = number, status = ? WHERE id = ?",
                arguments: [buildpack, JSONMap.encode(processTypes), ReleaseStatus.deploying, releaseID]
            )
            guard let release = try Release.fetchOne(db, key: releaseID) else {
                throw InternalError("release \(releaseID) vanished while building")
            }
            return release
        }
    }

    /// Records "Rollback to vN": a new release that runs vN's built tree with vN's config.
    /// `target` nil means the newest retired release. `treeExists` says whether a release's tree is still on disk.
    public func startRollback(
        of app: AppName,
        to target: ReleaseVersion?,
        cause: String,
        treeExists: @Sendable (Release) -> Bool
    )
        throws -> (rollback: Release, target: Release)
    {
        try write { db in
            let releases = try Release.filter(Column("appName") == app.rawValue).order(Column("number").desc).fetchAll(
                db
            )
            let candidates = releases.filter { $0.status == .retired && $0.tree != nil && treeExists($0) }
            let chosen: Release
            if let target {
                guard let release = releases.first(where: { $0.number == target.number }) else {
                    throw StoreError.unknownRelease(app, target)
                }
                guard candidates.contains(where: { $0.number == target.number }) else {
                    let why =
                        switch release.status {
                        case .live: "it is the live release"
                        case .retired: "its built tree has been deleted"
                        default: "it never went live (\(release.status.rawValue))"
                        }
                    throw StoreError.notRollbackable(app, target, why: why, candidates: candidates.map(\.version))
                }
                chosen = release
            } else {
                guard let newest = candidates.first else { throw StoreError.nothingToRollBackTo(app) }
                chosen = newest
            }
            let rollback = try Self.insertRelease(
                reusing: chosen,
                description: "Rollback to \(chosen.version)",
                config: chosen.configValues,
                cause: cause,
                db
            )
            return (rollback, chosen)
        }
    }

    /// Records the next release of `app` as a promotion of `source` (another app's release): the
    /// same commit, buildpack and process types, in a tree of its own, with `app`'s config.
    public func startPromotion(of source: Release, to app: AppName, cause: String) throws -> Release {
        try write { db in
            var release = try Self.insertRelease(
                reusing: source,
                description: "Promote \(source.appName) \(source.version): \(source.description)",
                config: try Self.config(of: app, db),
                cause: cause,
                into: app,
                db
            )
            release.status = .building
            release.buildNumber = release.number
            try release.update(db)
            try db.execute(
                sql: "INSERT INTO promotion (sourceReleaseID, targetReleaseID, sourceApp, sourceNumber, targetApp, "
                    + "targetNumber) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [source.id, release.id, source.appName, source.number, app.rawValue, release.number]
            )
            return release
        }
    }

    /// Where a release was promoted from (`staging v5`) and to (`production v7`, ...).
    public func promotions(of release: Release) throws -> (from: String?, to: [String]) {
        try read { db in
            let from = try Row.fetchOne(
                db,
                sql: "SELECT sourceApp, sourceNumber FROM promotion WHERE targetReleaseID = ?",
                arguments: [release.id]
            ).map { "\($0["sourceApp"] as String) v\($0["sourceNumber"] as Int)" }
            let to = try Row.fetchAll(
                db,
                sql: "SELECT targetApp, targetNumber FROM promotion WHERE sourceReleaseID = ? ORDER BY id",
                arguments: [release.id]
            ).map { "\($0["targetApp"] as String) v\($0["targetNumber"] as Int)" }
            return (from, to)
        }
    }

    /// Records a new release that runs `source`'s built tree with `config` (a config change).
    public func startRelease(
        reusing source: Release,
        description: String,
        config: [String: String],
        cause: String
    ) throws -> Release {
        try write { db in
            try Self.insertRelease(reusing: source, description: description, config: config, cause: cause, db)
        }
    }

    private static func insertRelease(
        reusing source: Release,
        description: String,
        config: [String: String],
        cause: String,
        into app: AppName? = nil,
        _ db: Database
    ) throws -> Release {
        var release = source
        let app = try app ?? AppName(validating: source.appName)
        release.id = nil
        release.appName = app.rawValue
        release.number = try nextNumber(of: app, db)
        release.status = .deploying
        release.description = description
        release.config = JSONMap.encode(config)
        release.failureReason = nil
        release.buildLog = ""
        release.createdAt = Date()
        release.finishedAt = nil
        release.cause = cause
        try release.insert(db)
        return release
    }

    private static func nextNumber(of app: AppName, _ db: Database) throws -> Int {
        (try Int.fetchOne(db, sql: "SELECT MAX(number) FROM release WHERE appName = ?", arguments: [app.rawValue]) ?? 0)
            + 1
    }

    /// Makes `releaseID` the app's live release and retires the one it replaced, in one transaction.
    /// With `applyingConfig` (a rollback or a config change), the app's config becomes the release's own.
    public func markLive(_ releaseID: Int64, of app: AppName, applyingConfig: Bool = false) throws {
        try write { db in
            if applyingConfig, let release = try Release.fetchOne(db, key: releaseID) {
                try db.execute(sql: "DELETE FROM configVar WHERE appName = ?", arguments: [app.rawValue])
                for (key, value) in release.configValues {
                    try db.execute(
                        sql: "INSERT INTO configVar (appName, key, value) VALUES (?, ?, ?)",
                        arguments: [app.rawValue, key, value]
                    )
                }
            }
            try db.execute(
                sql: "UPDATE release SET status = ? WHERE appName = ? AND status = ?",
                arguments: [ReleaseStatus.retired, app.rawValue, ReleaseStatus.live]
            )
            try db.execute(
                sql: "UPDATE release SET status = ?, finishedAt = ? WHERE id = ?",
                arguments: [ReleaseStatus.live, Date(), releaseID]
            )
        }
    }

    public func markFailed(_ releaseID: Int64, reason: String) throws {
        try write { db in
            try db.execute(
                sql: "UPDATE release SET status = ?, failureReason = ?, finishedAt = ? WHERE id = ?",
                arguments: [ReleaseStatus.failed, reason, Date(), releaseID]
            )
        }
    }

    public func saveBuildLog(_ log: String, of releaseID: Int64) throws {
        try write { db in
            try db.execute(sql: "UPDATE release SET buildLog = ? WHERE id = ?", arguments: [log, releaseID])
        }
    }

    /// Why a deploy that the daemon's stop cut off failed (`during`: the step it was in, if known).
    public static func interruptedReason(during step: DeployStep? = nil) -> String {
        "interrupted: the Slipway daemon stopped during " + (step.map { "the \($0) step" } ?? "this deploy")
            + "; push again"
    }

    /// A daemon that died mid-deploy left releases half done and steps open, all in one transaction: the
    /// releases failed as interrupted (the live one stays live), and each open step failed. Returns the
    /// interrupted releases.
    public func failInterruptedDeploys() throws -> [Release] {
        try write { db in
            let interrupted = try Release.filter(
                [ReleaseStatus.building, ReleaseStatus.deploying].contains(Column("status"))
            ).fetchAll(db)
            let now = Date()
            for release in interrupted {
                let open = try DeployEvent.filter(Column("releaseID") == release.id && Column("finishedAt") == nil)
                    .order(Column("id").desc).fetchOne(db)
                try db.execute(
                    sql: "UPDATE release SET status = ?, failureReason = ?, finishedAt = ? WHERE id = ?",
                    arguments: [ReleaseStatus.failed, Self.interruptedReason(during: open?.step), now, release.id]
                )
            }
            try db.execute(
                sql: "UPDATE deployEvent SET outcome = ?, detail = COALESCE(detail, ?), finishedAt = ? "
                    + "WHERE finishedAt IS NULL",
                arguments: [StepOutcome.failed, "interrupted: the Slipway daemon stopped", now]
            )
            return interrupted
        }
    }

    public func liveRelease(of app: AppName) throws -> Release? {
        try read { db in
            try Release.filter(Column("appName") == app.rawValue && Column("status") == ReleaseStatus.live).fetchOne(db)
        }
    }

    /// The newest `limit` releases of `app`, newest first, each with its deploy steps.
    public func history(of app: AppName, limit: Int? = nil) throws -> [ReleaseHistoryEntry] {
        try read { db in
            guard try App.fetchOne(db, key: app.rawValue) != nil else { throw StoreError.unknownApp(app.rawValue) }
            let releases = try Release.filter(Column("appName") == app.rawValue)
                .order(Column("number").desc).limit(limit ?? Int.max).fetchAll(db)
            return try releases.map { release in
                ReleaseHistoryEntry(release: release, events: try Self.events(of: release, db))
            }
        }
    }

    public func release(_ version: ReleaseVersion, of app: AppName) throws -> ReleaseHistoryEntry {
        try read { db in
            guard try App.fetchOne(db, key: app.rawValue) != nil else { throw StoreError.unknownApp(app.rawValue) }
            guard
                let release = try Release.filter(
                    Column("appName") == app.rawValue && Column("number") == version.number
                )
                .fetchOne(db)
            else { throw StoreError.unknownRelease(app, version) }
            return ReleaseHistoryEntry(release: release, events: try Self.events(of: release, db))
        }
    }

    private static func events(of release: Release, _ db: Database) throws -> [DeployEvent] {
        try DeployEvent.filter(Column("releaseID") == release.id).order(Column("id")).fetchAll(db)
    }

    // MARK: Deploy events

    public func startStep(_ step: DeployStep, of releaseID: Int64) throws -> DeployEvent {
        try write { db in
            var event = DeployEvent(
                id: nil,
                releaseID: releaseID,
                step: step,
                outcome: .running,
                detail: nil,
                startedAt: Date(),
                finishedAt: nil
            )
            try event.insert(db)
            return event
        }
    }

    @discardableResult
    public func finishStep(_ event: DeployEvent, outcome: StepOutcome, detail: String? = nil) throws -> DeployEvent {
        var finished = event
        finished.outcome = outcome
        finished.detail = detail
        finished.finishedAt = Date()
        try write { [finished] db in try finished.update(db) }
        return finished
    }

    // MARK: Config

    public func config(of app: AppName) throws -> [String: String] {
        try read { db in try Self.config(of: app, db) }
    }

    private static func config(of app: AppName, _ db: Database) throws -> [String: String] {
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

    // MARK: Instances

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

    /// Instances of `release` that crashed at least `CrashLoop.exits` times in the last `CrashLoop.window`.
    public func crashLoops(of app: AppName, release: ReleaseVersion, now: Date = Date()) throws -> [CrashLoop] {
        try read { db in
            let crashes = try InstanceRecord.filter(
                Column("appName") == app.rawValue && Column("releaseNumber") == release.number
                    && Column("status") == InstanceStatus.crashed
                    && Column("stoppedAt") >= now.addingTimeInterval(-CrashLoop.window)
            ).order(Column("id")).fetchAll(db)
            let byProcess = Dictionary(grouping: crashes) { "\($0.processType).\($0.processIndex)" }
            return byProcess.compactMap { process, crashes in
                crashes.count >= CrashLoop.exits
                    ? CrashLoop(process: process, exits: crashes.count, lastExit: crashes.last?.exitReason) : nil
            }.sorted { $0.process < $1.process }
        }
    }

    /// Instances not known to have stopped: of one app, or of all apps.
    public func runningInstances(of app: AppName? = nil) throws -> [InstanceRecord] {
        try read { db in
            var request = InstanceRecord.filter(
                [InstanceStatus.booting, InstanceStatus.serving].contains(Column("status"))
            )
            if let app { request = request.filter(Column("appName") == app.rawValue) }
            return try request.order(Column("id")).fetchAll(db)
        }
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
