// proxy:sticky and proxy:drain against a real daemon: a pinned browser stays on its instance of a
// scaled app, an app's own drain timeout cuts a slow request off with 504 at a deploy, and both settings
// survive a restart; a pinned client is pinned anew after a deploy. Also the batched boot of a scaled-up app
// and of a push.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct ProxySettingsTests {
    @Test func stickySessionsAndAnAppsOwnDrainTimeout() async throws {
        try await DaemonHarness.with(arguments: ["--websocket-close-window", "0"]) { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: work, message: "First")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)
            #expect(try await daemon.cli(["ps:scale", "shop", "web=2"]).status.succeeded)

            let sticky = try await daemon.cli(["proxy:sticky", "shop", "on"])
            #expect(sticky.output.contains("the slipway_instance cookie pins each client to one instance"))
            let browser = HTTPConnection(port: daemon.port)
            let first = try browser.get("/env/DYNO", host: "shop.localhost")
            let cookie = try #require(first.headers["set-cookie"]?.split(separator: ";").first.map(String.init))
            for _ in 0..<8 {
                let again = try browser.get("/env/DYNO", host: "shop.localhost", headers: ["Cookie": cookie])
                #expect(again.body == first.body, "pinned to \(first.body), answered by \(again.body)")
            }
            let unpinned = try (0..<4).map { _ in try browser.get("/env/DYNO", host: "shop.localhost").body }
            #expect(Set(unpinned) == ["web.1", "web.2"])

            #expect(
                try await daemon.cli(["proxy:drain", "shop"]).output.contains(
                    "gets 5s to finish its requests after a switch (the daemon's default)"
                )
            )
            let drain = try await daemon.cli(["proxy:drain", "shop", "1"])
            #expect(drain.output.contains("shop's old release gets 1s to finish its requests after a switch;"))
            for bad in ["0", "3601", "soon"] {
                let refused = try await daemon.cli(["proxy:drain", "shop", bad])
                #expect(refused.status == .exited(64), "\(bad): \(refused.output)")
                #expect(refused.output.hasPrefix("slipway: invalid drain timeout"), "\(refused.output)")
            }
            #expect(try await daemon.cli(["proxy:sticky", "shop", "maybe"]).status == .exited(64))

            // A request slower than the app's 1 s drain timeout, running across a deploy, is cut off with 504.
            let slow = try await HTTPConnection.startGet(
                port: daemon.port,
                "/slow?ms=60000",
                host: "shop.localhost",
                headers: ["Cookie": cookie]
            )
            try await Task.sleep(for: .milliseconds(300))
            let deploy = try await daemon.cli(["config:set", "shop", "COLOUR=blue"])
            #expect(deploy.status.succeeded, "\(deploy.output)")
            let cutOff = try await slow.value
            #expect(cutOff.status == 504)
            #expect(cutOff.body.contains("did not answer before its old release was retired"))
            let live = try #require(deploy.output.firstMatch(of: /shop (v\d+) is live/)?.output.1)
            try await waitUntil("the drain is recorded") {
                try await daemon.cli(["releases:info", "shop", String(live)]).output.contains(
                    "1 cut off at the drain timeout"
                )
            }

            // The old pin names an instance of the retired release: the next request is pinned anew, to the live
            // one, and stays there.
            let repinned = try browser.get("/env/SLIPWAY_RELEASE", host: "shop.localhost", headers: ["Cookie": cookie])
            #expect(repinned.body == String(live))
            let newCookie = try #require(repinned.headers["set-cookie"]?.split(separator: ";").first.map(String.init))
            #expect(newCookie.hasPrefix("slipway_instance=\(live.dropFirst())."), "\(newCookie)")
            let newPin = try browser.get("/env/DYNO", host: "shop.localhost", headers: ["Cookie": newCookie])
            for _ in 0..<6 {
                let again = try browser.get("/env/DYNO", host: "shop.localhost", headers: ["Cookie": newCookie])
                #expect(again.body == newPin.body)
                #expect(again.headers["set-cookie"] == nil, "a kept pin is not set again")
            }

            await daemon.stop()
            let restarted = try await DaemonHarness(restartingIn: daemon)
            do {
                #expect(try await restarted.cli(["proxy:drain", "shop"]).output.contains("gets 1s"))
                #expect(try await restarted.cli(["proxy:sticky", "shop"]).output.contains("has sticky sessions"))
                try await waitUntil("the restarted daemon serves shop") {
                    (try? HTTPConnection(port: daemon.port).get("/", host: "shop.localhost").status) == 200
                }
                let fresh = try HTTPConnection(port: daemon.port).get("/", host: "shop.localhost")
                #expect(fresh.headers["set-cookie"]?.hasPrefix("slipway_instance=") == true)
            } catch {
                await restarted.stop()
                throw error
            }
            await restarted.stop()
        }
    }

    @Test func aScaledUpAppBootsInBatchesWhileTheLiveReleaseServes() async throws {
        try await DaemonHarness.with(arguments: ["--boot-batch", "1"]) { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: work, message: "First")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)

            let loop = RequestLoop(port: daemon.port, host: "shop.localhost", path: "/env/DYNO", keep: 5)
            let scaled = try await daemon.cli(["ps:scale", "shop", "web=3"])
            let seen = await loop.stop()
            #expect(scaled.status.succeeded, "\(scaled.output)")
            #expect(scaled.output.contains("web.1-3 (npm start) in batches of 1"), "\(scaled.output)")
            // Each batch is healthy before the next one starts.
            let order = [
                "web.1 is healthy", "Booting web.2 (batch 2 of 3)", "web.2 is healthy", "Booting web.3 (batch 3 of 3)",
            ]
            let positions = order.compactMap { scaled.output.range(of: $0)?.lowerBound }
            #expect(positions.count == order.count && positions == positions.sorted(), "\(scaled.output)")
            // Only answers of the live instances, never an error, while the new ones booted: and answers there were.
            #expect(seen.values.reduce(0, +) >= 10, "requests were made while scaling: \(seen)")
            #expect(Set(seen.keys).isSubset(of: ["web.1", "web.2", "web.3"]), "\(seen)")

            let client = HTTPConnection(port: daemon.port)
            let dynos = try (0..<6).map { _ in try client.get("/env/DYNO", host: "shop.localhost").body }
            #expect(Set(dynos) == ["web.1", "web.2", "web.3"])

            // A push boots the new release's three instances in the same batches, beside the live ones.
            try await run("git", ["commit", "--quiet", "--allow-empty", "-m", "Second"], in: work)
            let pushed = try await daemon.push(work, app: "shop")
            #expect(pushed.output.contains("-----> shop v3 is live"), "\(pushed.output)")
            #expect(pushed.output.contains("in batches of 1"), "\(pushed.output)")
            let pushedPositions = order.compactMap { pushed.output.range(of: $0)?.lowerBound }
            #expect(
                pushedPositions.count == order.count && pushedPositions == pushedPositions.sorted(),
                "\(pushed.output)"
            )
        }
    }
}
