import Foundation
import SlipwayBasics
import SlipwayStore
import SlipwayTestSupport
import Testing

@Suite struct AppDatabaseTests {
    let shop = try! AppName(validating: "shop")

    @Test func aNewAppStartsWithHerokusInitialRelease() throws {
        let store = try AppDatabase.inMemory()
        _ = try store.createApp(shop)
        let history = try store.history(of: shop)
        #expect(history.map(\.release.number) == [1])
        #expect(history[0].release.status == .initial)
        #expect(try store.liveRelease(of: shop) == nil)
        #expect(throws: StoreError.self) { try store.createApp(shop) }
    }

    @Test func releasesAreNumberedPerAppAndGoingLiveRetiresThePreviousOne() throws {
        let store = try AppDatabase.inMemory()
        _ = try store.createApp(shop)
        _ = try store.createApp(try AppName(validating: "blog"))
        let v2 = try store.startRelease(of: shop, description: "Deploy a", commitID: "a", author: nil, cause: "local")
        try store.markLive(v2.id, of: shop)
        let v3 = try store.startRelease(of: shop, description: "Deploy b", commitID: "b", author: nil, cause: "local")
        let blog = try store.startRelease(
            of: try AppName(validating: "blog"),
            description: "x",
            commitID: "c",
            author: nil,
            cause: "local"
        )
        #expect((v2.number, v3.number, blog.number) == (2, 3, 2))
        try store.markLive(v3.id, of: shop)
        let statuses = try store.history(of: shop).map { "\($0.release.version) \($0.release.status.rawValue)" }
        #expect(statuses == ["v3 live", "v2 retired", "v1 initial"])
        #expect(try store.liveRelease(of: shop)?.number == 3)
    }

    @Test func everyReleaseTheStoreHandsOutHasTheIdTheDatabaseGaveIt() throws {
        let store = try AppDatabase.inMemory()
        _ = try store.createApp(shop)
        let built = try store.startRelease(
            of: shop,
            description: "Deploy a",
            commitID: "a",
            author: nil,
            cause: "local"
        )
        let reused = try store.startRelease(reusing: built, description: "Rollback", config: [:], cause: "local")
        let initial = try store.release(ReleaseVersion(1), of: shop).release
        let ids = [initial.id, built.id, reused.id]
        #expect(Set(ids).count == 3 && ids.allSatisfy { $0 > 0 }, "\(ids)")
        #expect(try store.release(ReleaseVersion(2), of: shop).release.id == built.id)
        #expect(try store.release(ReleaseVersion(3), of: shop).release.id == reused.id)
    }

    @Test func eachStepIsRecordedWithItsTimestamps() throws {
        let store = try AppDatabase.inMemory()
        _ = try store.createApp(shop)
        let release = try store.startRelease(
            of: shop,
            description: "Deploy",
            commitID: "a",
            author: nil,
            cause: "local"
        )
        let build = try store.startStep(.build, of: release.id)
        Thread.sleep(forTimeInterval: 0.02)
        try store.finishStep(build, outcome: .succeeded)
        let health = try store.startStep(.health, of: release.id)
        try store.finishStep(health, outcome: .failed, detail: "never healthy")
        try store.markFailed(release.id, reason: "never healthy")
        let entry = try store.release(ReleaseVersion(2), of: shop)
        #expect(entry.events.map(\.step) == [.build, .health])
        #expect(entry.events.map(\.outcome) == [.succeeded, .failed])
        #expect((entry.duration(of: .build) ?? .zero) >= .milliseconds(15))
        #expect(entry.release.status == .failed)
        #expect(entry.release.failureReason == "never healthy")
    }

    @Test func anInterruptedDeployIsFailedAndTheLiveReleaseStaysLive() throws {
        let store = try AppDatabase.inMemory()
        _ = try store.createApp(shop)
        let v2 = try store.startRelease(of: shop, description: "Deploy", commitID: "a", author: nil, cause: "local")
        try store.markLive(v2.id, of: shop)
        let v3 = try store.startRelease(of: shop, description: "Deploy", commitID: "b", author: nil, cause: "local")
        try store.finishStep(try store.startStep(.build, of: v3.id), outcome: .succeeded)
        _ = try store.startStep(.health, of: v3.id)
        #expect(try store.failInterruptedDeploys().map(\.number) == [3])
        let statuses = try store.history(of: shop).map(\.release.status)
        #expect(statuses == [.failed, .live, .initial])
        let interrupted = try store.release(ReleaseVersion(3), of: shop)
        #expect(
            interrupted.release.failureReason
                == "interrupted: the Slipway daemon stopped during the health step; push again"
        )
        #expect(interrupted.events.map(\.outcome) == [.succeeded, .failed])
        #expect(interrupted.events.allSatisfy { $0.finishedAt != nil })
        #expect(try store.failInterruptedDeploys().isEmpty)
    }

    @Test func unknownAppsAndReleasesAreClearErrors() throws {
        let store = try AppDatabase.inMemory()
        _ = try store.createApp(shop)
        let app = #expect(throws: StoreError.self) { try store.history(of: try AppName(validating: "nope")) }
        #expect(app?.description.contains("no app named nope") == true)
        let release = #expect(throws: StoreError.self) { try store.release(ReleaseVersion(9), of: shop) }
        #expect(release?.description == "shop has no release v9; run `slipway releases shop` to list them")
    }

    @Test func configVarsAreSetUpdatedAndUnset() throws {
        let store = try AppDatabase.inMemory()
        _ = try store.createApp(shop)
        try store.setConfig(["A": "1", "B": "2"], of: shop)
        try store.setConfig(["A": "3"], of: shop)
        try store.unsetConfig(["B"], of: shop)
        #expect(try store.config(of: shop) == ["A": "3"])
    }

    @Test func theFileIsInWALModeAndSurvivesReopening() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path + "/slipway.sqlite"
        do {
            let store = try AppDatabase.open(path: path)
            _ = try store.createApp(shop)
            // While open, a WAL-mode database keeps its log beside it.
            #expect(FileManager.default.fileExists(atPath: path + "-wal"))
        }
        #expect(try AppDatabase.open(path: path).apps().map(\.name) == ["shop"])
    }

    @Test func aRollbackRunsTheChosenBuildWithItsConfigAndIsANewRelease() throws {
        let store = try AppDatabase.inMemory()
        _ = try store.createApp(shop)
        try store.setConfig(["GREETING": "one"], of: shop)
        let v2 = try store.startRelease(of: shop, description: "Deploy a", commitID: "a", author: nil, cause: "local")
        _ = try store.recordBuild(of: v2.id, buildpack: "Node.js", processTypes: ["web": "npm start"])
        try store.markLive(v2.id, of: shop)
        try store.setConfig(["GREETING": "two"], of: shop)
        let v3 = try store.startRelease(of: shop, description: "Deploy b", commitID: "b", author: nil, cause: "local")
        _ = try store.recordBuild(of: v3.id, buildpack: "Node.js", processTypes: ["web": "npm start"])
        try store.markLive(v3.id, of: shop)

        let (rollback, target) = try store.startRollback(of: shop, to: nil, cause: "local") { _ in true }
        #expect(target.number == 2)
        #expect((rollback.number, rollback.description, rollback.tree?.number) == (4, "Rollback to v2", 2))
        #expect(rollback.commitID == "a")
        #expect(rollback.config == ["GREETING": "one"])
        try store.markLive(rollback.id, of: shop, applyingConfig: true)
        #expect(try store.config(of: shop) == ["GREETING": "one"])
    }

    @Test func rollbackRefusesReleasesItCannotRunAndNamesThoseItCan() throws {
        let store = try AppDatabase.inMemory()
        _ = try store.createApp(shop)
        #expect(throws: StoreError.self) { try store.startRollback(of: shop, to: nil, cause: "local") { _ in true } }
        for commit in ["a", "b", "c"] {
            let release = try store.startRelease(
                of: shop,
                description: commit,
                commitID: commit,
                author: nil,
                cause: "local"
            )
            _ = try store.recordBuild(of: release.id, buildpack: "x", processTypes: ["web": "x"])
            try store.markLive(release.id, of: shop)
        }
        let failed = try store.startRelease(of: shop, description: "d", commitID: "d", author: nil, cause: "local")
        try store.markFailed(failed.id, reason: "boom")
        // v2's tree was pruned; v3 can be rolled back to; v4 is live; v5 failed; v1 never ran.
        let pruned = { @Sendable (release: Release) in release.number != 2 }
        let message = { (version: Int) -> String? in
            (#expect(throws: StoreError.self) {
                try store.startRollback(of: shop, to: ReleaseVersion(version), cause: "local", treeExists: pruned)
            })?
            .description
        }
        #expect(
            message(2)
                == "cannot roll shop back to v2: its built tree has been deleted; releases you can roll back to: v3"
        )
        #expect(message(4) == "cannot roll shop back to v4: it is the live release; releases you can roll back to: v3")
        #expect(
            message(5) == "cannot roll shop back to v5: it never went live (failed); releases you can roll back to: v3"
        )
        #expect(
            message(1) == "cannot roll shop back to v1: it never went live (initial); releases you can roll back to: v3"
        )
        #expect(try store.startRollback(of: shop, to: nil, cause: "local", treeExists: pruned).target.number == 3)
    }
}
