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
        let folder = try TemporaryDirectory("startup")
        defer { folder.remove() }
        let store = try AppDatabase.inMemory()
        let (shop, release) = try DeployerFixture.builtRelease(in: store, types: ["web": "serve"])
        try store.markLive(release.id!, of: shop)
        _ = try store.createApp(try AppName(validating: "blog"))
        let deployer = DeployerFixture.deployer(data: DataDirectory(root: folder.path), store: store, keepReleases: 5)

        let report = await deployer.adopt()

        #expect(report.incomplete == [shop])
    }
}
