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
            #expect(
                try client.get("/.well-known/slipway/version", host: "shop.localhost").headers["etag"] == "\"shop-v2\""
            )
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

    @Test func anOpenTabOffersTheNewReleaseAndReloadsOnlyWhenAsked() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("version-prompt", into: work, message: "First")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)

            let browser = try HeadlessChromium()
            defer { browser.stop() }
            try browser.navigate(to: "http://shop.localhost:\(daemon.port)/")
            try browser.waitUntil("window.slipwayNewVersion.liveRelease === 2", timeout: .seconds(10))
            #expect(
                try browser.evaluate("document.getElementById('release').textContent") as? String == "Shop release v2"
            )
            #expect(try browser.evaluate("slipwayNewVersion.pageReleaseFrom") as? String == "server-timing")
            #expect(try browser.evaluate("slipwayNewVersion.transport") as? String == "events")
            _ = try browser.evaluate("window.stayedOpen = true")

            try "second\n".write(toFile: work + "/VERSION", atomically: true, encoding: .utf8)
            try await run("git", ["add", "VERSION"], in: work)
            try await run("git", ["commit", "--quiet", "-m", "Second"], in: work)
            let pushed = try await daemon.push(work, app: "shop")
            #expect(pushed.output.contains("-----> shop v3 is live"), "\(pushed.output)")
            let live = ContinuousClock.now
            try browser.waitUntil("document.getElementById('slipway-new-version') !== null", timeout: .seconds(5))
            let told = ContinuousClock.now - live
            try browser.screenshot(to: packageRoot + "/test-artifacts/new-version-banner.png")
            print("The banner appeared \(told) after the push reported v3 live.")

            #expect(try browser.evaluate("window.stayedOpen") as? Bool == true, "the page reloaded by itself")
            #expect(
                try browser.evaluate("document.getElementById('release').textContent") as? String == "Shop release v2"
            )
            let banner = "document.getElementById('slipway-new-version')"
            #expect(try browser.evaluate("\(banner).getAttribute('role')") as? String == "status")
            #expect(try browser.evaluate("\(banner).textContent") as? String == "A new version is availableReload×")
            #expect(try browser.evaluate("window.heard.join()") as? String == "v3")

            try browser.click(selector: "#slipway-new-version button")
            try browser.waitUntil(
                "document.getElementById('release')?.textContent === 'Shop release v3'"
                    + " && window.slipwayNewVersion?.liveRelease === 3",
                timeout: .seconds(10)
            )
            #expect(try browser.evaluate("window.stayedOpen") == nil)
            #expect(try browser.evaluate("\(banner) === null") as? Bool == true)

            // A browser without EventSource falls back to long polls, and a config change is a release too.
            try browser.navigate(to: "http://shop.localhost:\(daemon.port)/no-sse")
            try browser.waitUntil(
                "window.slipwayNewVersion.transport === 'long-poll' && window.slipwayNewVersion.liveRelease === 3",
                timeout: .seconds(10)
            )
            #expect(try await daemon.cli(["config:set", "shop", "GREETING=hi"]).output.contains("shop v4 is live"))
            try browser.waitUntil("document.getElementById('slipway-new-version') !== null", timeout: .seconds(5))
            #expect(try browser.evaluate("window.heard.join()") as? String == "v4")
        }
    }
}
