// Releases and the deploy events of each: started, built, marked live or failed, their history, and the deploys
// a daemon's death cut off.
import Foundation
import GRDB
import SlipwayBasics

extension AppDatabase {
    /// Records the next release of `app` as building, with the app's config as it is now.
    public func startRelease(
        of app: AppName,
        description: String,
        commitID: String?,
        author: String?,
        cause: String
    ) throws -> Release {
        try write { db in
            let release = Release(
                id: NewRelease.unassigned,
                appName: app.rawValue,
                number: try Self.nextNumber(of: app, db),
                status: .building,
                description: description,
                commitID: commitID,
                commitAuthor: author,
                buildpack: nil,
                processTypes: nil,
                buildNumber: nil,
                config: try Self.config(of: app, db),
                failureReason: nil,
                buildLog: "",
                createdAt: Date(),
                finishedAt: nil,
                cause: cause
            )
            return try NewRelease.insert(release, db)
        }
    }

    /// The build of `releaseID` succeeded: it runs its own tree from now on.
    public func recordBuild(of releaseID: Int64, buildpack: String, processTypes: [String: String]) throws -> Release {
        try write { db in
            guard var release = try Release.fetchOne(db, key: releaseID) else {
                throw InternalError("release \(releaseID) vanished while building")
            }
            release.buildpack = buildpack
            release.processTypes = processTypes
            release.buildNumber = release.number
            release.status = .deploying
            try release.update(db)
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
                config: chosen.config,
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
        release.appName = app.rawValue
        release.number = try nextNumber(of: app, db)
        release.status = .deploying
        release.description = description
        release.config = config
        release.failureReason = nil
        release.buildLog = ""
        release.createdAt = Date()
        release.finishedAt = nil
        release.cause = cause
        return try NewRelease.insert(release, db)
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
                for (key, value) in release.config {
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

    /// Whether any release of `app` ever went live (it is live or retired now).
    public func hasBeenLive(_ app: AppName) throws -> Bool {
        try read { db in
            try Release.filter(
                Column("appName") == app.rawValue
                    && [ReleaseStatus.live, ReleaseStatus.retired].contains(Column("status"))
            ).fetchCount(db) > 0
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
}
