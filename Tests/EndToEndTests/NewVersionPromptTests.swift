// The new-version prompt end to end: the endpoints' prefix set by command on a real daemon, and a real
// headless Chromium showing the banner when a pushed release goes live.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct NewVersionPromptTests {
    @Test func theEndpointsMoveToAnotherPrefixAndStayThereAfterARestart() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: work, message: "Shop")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)
            let client = HTTPConnection(port: daemon.port)

            let shown = try await daemon.cli(["endpoints", "shop"])
            #expect(shown.output.contains("shop answers /_slipway/version, /_slipway/events and /_slipway/client.js"))
            let moved = try await daemon.cli(["endpoints", "shop", "/.well-known/slipway/"])
            #expect(moved.status.succeeded, "\(moved.output)")
            #expect(moved.output.contains("no request under /.well-known/slipway/ reaches the app"))
            #expect(try client.get("/.well-known/slipway/version", host: "shop.localhost").headers["etag"] == "\"shop-v2\"")
            let atTheApp = try client.get("/_slipway/version", host: "shop.localhost")
            #expect(atTheApp.status == 404)
            #expect(atTheApp.body == "not found\n", "the app's own 404, not the proxy's")

            for bad in ["/", "no-slash/", "/a//b/", "/../x/", "/a b/"] {
                let refused = try await daemon.cli(["endpoints", "shop", bad])
                #expect(refused.status == .exited(64), "\(bad): \(refused.output)")
                #expect(refused.output.hasPrefix("slipway: invalid prefix"), "\(bad): \(refused.output)")
                #expect(refused.output.split(separator: "\n").count == 1, "\(bad): \(refused.output)")
            }

            await daemon.stop()
            let restarted = try await DaemonHarness(restartingIn: daemon)
            do {
                try await waitUntil("the restarted daemon serves shop") {
                    (try? client.get("/.well-known/slipway/version", host: "shop.localhost").status) == 200
                }
                #expect(try await restarted.cli(["endpoints", "shop", "default"]).status.succeeded)
                #expect(try client.get("/_slipway/version", host: "shop.localhost").headers["etag"] == "\"shop-v2\"")
            } catch {
                await restarted.stop()
                throw error
            }
            await restarted.stop()
        }
    }
}
