// Specifications for the release pipeline without processes: a plan's steps run in order, each recorded, and the
// first that fails ends the release as failed with its reason, saying so to the pusher and keeping its whole output.
import Foundation
import SlipwayBasics
import SlipwayStore
import SlipwayTestSupport
import Synchronization
import Testing

@testable import SlipwayDeployer

@Suite struct PipelineTests {
    final class Lines: Sendable {
        let all = Mutex<[String]>([])
    }

    @Test("a plan that runs the release phase stops there when it fails: no boot, the release failed, the pusher told")
    func aFailingReleasePhaseEndsThePlan() async throws {
        let scene = try DeployerFixture.Scene()
        defer { scene.remove() }
        let (shop, store, deployer) = (scene.shop, scene.store, scene.deployer)
        let release = try scene.builtRelease(types: ["web": "serve", "release": "migrate"])
        let lines = Lines()
        let output = DeployOutput { line in lines.all.withLock { $0.append(line) } }

        let outcome = await deployer.whileLocked(shop, output: output) {
            await deployer.run(ReleasePlan(release: release, tree: .reuse), of: shop, output: output)
        }

        #expect(outcome == .failed)
        let history = try store.release(release.version, of: shop)
        #expect(history.release.status == .failed)
        #expect(history.events.map(\.step) == [.release])
        #expect(history.events.map(\.outcome) == [.failed])
        let said = lines.all.withLock { $0 }
        #expect(said.contains("-----> Running the release phase: migrate"))
        #expect(said.contains("-----> Deploy of shop v2 failed: this test starts no process"), "\(said)")
        #expect(said.contains("       shop has no live release yet"))
        #expect(history.release.buildLog.contains("this test starts no process"))
        let log = try String(
            contentsOfFile: scene.data.releaseLog(shop, release.version),
            encoding: .utf8
        )
        #expect(log.contains("Running the release phase: migrate"))
    }

    @Test("without its release phase a plan goes on to the boot, where it fails the same way")
    func withoutTheReleasePhaseThePlanBoots() async throws {
        let scene = try DeployerFixture.Scene()
        defer { scene.remove() }
        let (shop, store, deployer) = (scene.shop, scene.store, scene.deployer)
        let release = try scene.builtRelease(types: ["web": "serve", "release": "migrate"])
        let output = DeployOutput { _ in }

        let plan = ReleasePlan(release: release, tree: .reuse, announcement: "Trying", runsReleasePhase: false)
        let outcome = await deployer.whileLocked(shop, output: output) {
            await deployer.run(plan, of: shop, output: output)
        }

        #expect(outcome == .failed)
        let history = try store.release(release.version, of: shop)
        #expect(history.events.map(\.step) == [.boot])
        #expect(history.release.buildLog.hasPrefix("-----> Trying"))
    }

    @Test("while apps run unisolated though the sandbox was not turned off, every deploy's output says so first")
    func isolationWarning() async throws {
        let scene = try DeployerFixture.Scene(isolationWarning: "apps on this host are not isolated: no bubblewrap")
        defer { scene.remove() }
        let release = try scene.builtRelease()
        let lines = Lines()
        let output = DeployOutput { line in lines.all.withLock { $0.append(line) } }
        _ = await scene.deployer.whileLocked(scene.shop, output: output) {
            await scene.deployer.run(ReleasePlan(release: release, tree: .reuse), of: scene.shop, output: output)
        }
        let said = lines.all.withLock { $0 }
        #expect(said.first == "-----> Warning: apps on this host are not isolated: no bubblewrap", "\(said)")
    }
}
