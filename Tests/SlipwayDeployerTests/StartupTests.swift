// Specifications for a daemon's start without processes: adoption reports which apps it could not give their whole
// scale, and restore works from that report, not from state left behind.
import Foundation
import SlipwayBasics
import SlipwayStore
import SlipwayTestSupport
import Testing

@testable import SlipwayDeployer

@Suite struct StartupTests {
    @Test("an app whose live release has no instance left is reported incomplete; an app never deployed is not")
    func adoptionReportsWhatItCouldNotAdopt() async throws {
        let scene = try DeployerFixture.Scene()
        defer { scene.remove() }
        try scene.store.markLive(try scene.builtRelease().id, of: scene.shop)
        _ = try scene.store.createApp(try AppName(validating: "blog"))

        let report = await scene.deployer.adopt()

        #expect(report.incomplete == [scene.shop])
    }
}
