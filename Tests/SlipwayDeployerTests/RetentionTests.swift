// Specifications for what the deployer keeps and how it words a failure, without git, buildpacks or a daemon: an
// in-memory store, a scratch data directory, and a launcher that starts nothing (see DeployerFixture).
import Foundation
import Logging
import SlipwayBasics
import SlipwayProxy
import SlipwayStore
import SlipwaySupervisor
import SlipwayTestSupport
import Testing

@testable import SlipwayDeployer

@Suite struct RetentionTests {
    @Test("the live tree and the newest retired ones are kept, up to keep-releases; the newest 20 release logs too")
    func keepsTheLiveTreeAndTheNewestRetiredOnes() async throws {
        let scene = try DeployerFixture.Scene(keepReleases: 2)
        defer { scene.remove() }
        let (data, store, shop) = (scene.data, scene.store, scene.shop)
        for _ in 2...6 {
            let release = try scene.builtRelease()
            try store.markLive(release.id, of: shop)
            try FileManager.default.createDirectory(
                atPath: data.release(shop, release.version),
                withIntermediateDirectories: true
            )
        }
        try FileManager.default.createDirectory(atPath: data.releaseLogs(shop), withIntermediateDirectories: true)
        for number in 1...25 {
            try "log".write(toFile: data.releaseLogs(shop) + "/\(number).log", atomically: true, encoding: .utf8)
        }

        let removed = await scene.deployer.pruneTrees(of: shop)

        #expect(removed.map(\.number) == [2, 3, 4])
        #expect(try FileManager.default.contentsOfDirectory(atPath: data.releases(shop)).sorted() == ["5", "6"])
        let logs = try FileManager.default.contentsOfDirectory(atPath: data.releaseLogs(shop))
        #expect(Set(logs) == Set((6...25).map { "\($0).log" }))
        #expect(try store.history(of: shop).count == 6, "the history rows stay")
    }

    @Test func workersAreEveryProcessTypeButWebAndRelease() {
        let types = ["web": "a", "release": "b", "worker": "c", "clock": "d"]
        #expect(ProcessTypes.workers(in: types) == ["clock", "worker"])
    }

    @Test("a failure's headline: an exit during boot, a health check never passed, an interruption")
    func failureHeadlines() {
        let exited = BootFailure(instance: "web.2", cause: HealthFailure.exited(.exited(1)), lastOutput: ["boom"])
        let reason = Deployer.reason(for: exited)
        #expect(
            reason.headline == "web.2 exited with status 1 during boot; fix the crash in its last output and push again"
        )
        #expect(reason.details == ["last output of web.2:", "  boom"])
        let unhealthy = BootFailure(
            instance: "web.1",
            cause: HealthFailure.unhealthy(check: "root", tries: 3, last: nil),
            lastOutput: []
        )
        #expect(
            Deployer.reason(for: unhealthy).headline
                == "web.1 never passed the health check \"root\" (3 tries); no check ran"
        )
        #expect(Deployer.reason(for: CancellationError()).headline == AppDatabase.interruptedReason())
    }
}
