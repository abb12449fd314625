// The new-version script's options in a real browser, through the real proxy, as the README promises them:
// the banner's text and position, the page's release taken from `data-release`, `data-banner="off"` with
// only the event, `preventDefault()` keeping the banner away, and `data-auto-reload="hidden"` reloading a
// hidden tab once per release, never in a loop.
import Foundation
import SlipwayTestSupport
import Testing

@testable import SlipwayProxy

@Suite("The new-version script's options", .serialized, .timeLimit(.minutes(2)))
struct ClientScriptTests {
    static let banner = "document.getElementById('slipway-new-version')"

    /// The page at `/page` with `attributes` on the script tag, open in `browser`, once the script heard release 1.
    func open(_ attributes: String, query: String = "", in browser: HeadlessChromium, port: Int) throws {
        let tag = attributes.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        try browser.navigate(to: "http://web.localhost:\(port)/page?tag=\(tag)\(query)")
        try browser.waitUntil("window.slipwayNewVersion?.liveRelease === 1", timeout: .seconds(10))
    }

    /// Runs `body` with app `web` live at release 1 behind the proxy; `goLive(n)` makes release n live.
    func withWebApp(_ body: (_ port: Int, _ goLive: (Int) -> Void) async throws -> Void) async throws {
        try await ProxyHarness.with { proxy in
            let backend = try await proxy.backend("web")
            let goLive = { (release: Int) in
                _ = proxy.deploy("web", host: "web.localhost", release: release, to: [backend])
            }
            goLive(1)
            try await body(proxy.port, goLive)
        }
    }

    @Test("the banner's text, button and position come from the tag, and so does the page's release")
    func textPositionAndRelease() async throws {
        try await withWebApp { port, goLive in
            let browser = try HeadlessChromium()
            defer { browser.stop() }
            try open(
                #"data-release="v1" data-message="Fresh bread" data-button="Get it" data-position="top""#,
                in: browser,
                port: port
            )
            #expect(try browser.evaluate("slipwayNewVersion.pageReleaseFrom") as? String == "data-release")

            goLive(2)
            try browser.waitUntil("\(Self.banner) !== null", timeout: .seconds(10))
            #expect(try browser.evaluate("\(Self.banner).textContent") as? String == "Fresh breadGet it×")
            #expect(try browser.evaluate("\(Self.banner).style.top") as? String == "16px")
            #expect(try browser.evaluate("\(Self.banner).style.bottom") as? String == "")
            #expect(try browser.evaluate("heard.join()") as? String == "v2")
        }
    }

    @Test(
        "with data-banner=\"off\", or when the page cancels the event, the page hears of the release and shows nothing"
    )
    func eventOnly() async throws {
        try await withWebApp { port, goLive in
            let off = try HeadlessChromium()
            defer { off.stop() }
            try open(#"data-banner="off""#, in: off, port: port)
            let cancelling = try HeadlessChromium()
            defer { cancelling.stop() }
            try open("", query: "&prevent", in: cancelling, port: port)

            goLive(2)
            for browser in [off, cancelling] {
                try browser.waitUntil(
                    "heard.join() === 'v2' && slipwayNewVersion.liveRelease === 2",
                    timeout: .seconds(10)
                )
                // The banner is made in the same call that dispatched the event, so it would be there by now.
                #expect(try browser.evaluate("\(Self.banner) === null") as? Bool == true)
            }
        }
    }

    @Test("data-auto-reload=\"hidden\" reloads a hidden tab once for each new release, never in a loop")
    func autoReloadWhenHidden() async throws {
        try await withWebApp { port, goLive in
            let browser = try HeadlessChromium()
            defer { browser.stop() }
            // The tag names release 1 for ever, so after a reload the page still looks out of date: only the
            // once-per-release rule keeps it from reloading again.
            try open(#"data-auto-reload="hidden" data-release="v1""#, in: browser, port: port)
            _ = try browser.evaluate(
                """
                sessionStorage.hidden = "1";
                Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
                document.dispatchEvent(new Event("visibilitychange"))
                """
            )
            #expect(try browser.evaluate("sessionStorage.loads") as? String == "1", "no new release, no reload")

            goLive(2)
            try browser.waitUntil(
                "sessionStorage.loads === '2' && window.slipwayNewVersion?.liveRelease === 2",
                timeout: .seconds(10)
            )
            goLive(3)
            try browser.waitUntil(
                "sessionStorage.loads === '3' && window.slipwayNewVersion?.liveRelease === 3",
                timeout: .seconds(10)
            )
            #expect(try browser.evaluate("\(Self.banner) !== null") as? Bool == true, "the banner is shown too")
        }
    }
}
