// What admin commands say matches what is true: a draining instance is `draining`, an app in maintenance says so,
// and a failed deploy does not claim that something keeps serving when nothing was.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct AdminOutputTests {
    @Test func psAppsAndAFailedDeploySayWhatIsTrue() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("build-fails", into: work, message: "v2")
            // Its objects stay in the repository after the failed push takes the branch away.
            let broken = try await run("git", ["rev-parse", "HEAD"], in: work).output
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await daemon.push(work, app: "shop").output.contains("Deploy of shop v2 failed"))
            let deploy = try await daemon.cli(["deploy", "shop", broken])
            #expect(!deploy.status.succeeded)
            #expect(deploy.output.contains("Deploy of shop v3 failed"), "\(deploy.output)")
            #expect(deploy.output.contains("slipway: it failed (see above)"), "\(deploy.output)")
            #expect(!deploy.output.contains("keeps serving"), "nothing was serving: \(deploy.output)")

            try await commitFixture("node-hello", into: work, message: "v4")
            let live = try await daemon.push(work, app: "shop").output
            #expect(live.contains("shop v4 is live"), "\(live)")
            let again = try await daemon.cli(["deploy", "shop", broken])
            #expect(again.output.contains("slipway: it failed (see above); v4 keeps serving"), "\(again.output)")

            // v4's instance drains while a slow request is under way on it.
            let slow = try await HTTPConnection.startGet(port: daemon.port, "/slow?ms=4000", host: "shop.localhost")
            #expect(try await daemon.cli(["ps:restart", "shop"]).status.succeeded)
            let ps = try await daemon.cli(["ps", "shop"]).output
            #expect(ps.contains("web.1  v4  draining"), "\(ps)")
            #expect(ps.contains("web.1  v4  serving"), "the fresh instance serves: \(ps)")
            #expect(try await slow.value.body.contains("slow done"))

            #expect(try await daemon.cli(["maintenance:on", "shop"]).status.succeeded)
            #expect(try await daemon.cli(["apps"]).output.contains("(maintenance on"))
            let json = try await daemon.cli(["apps", "--json"]).output
            #expect(json.contains("\"maintenance\" : true") || json.contains("\"maintenance\":true"), "\(json)")
            #expect(try await daemon.cli(["maintenance:off", "shop"]).status.succeeded)
            #expect(!(try await daemon.cli(["apps"]).output.contains("maintenance")))
        }
    }
}
