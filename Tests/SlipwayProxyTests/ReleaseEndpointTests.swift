// Specifications for the endpoints under /_slipway/: the version (plain, cached by ETag, and long-polled), the
// event stream of releases, client.js, and the per-app prefix. All answered by the proxy, never by the app.
import Foundation
import NIOHTTP1
import SlipwayTestSupport
import Testing

@testable import SlipwayProxy

@Suite("The release endpoints", .timeLimit(.minutes(1)))
struct ReleaseEndpointTests {
    struct VersionBody: Decodable, Equatable {
        var app: String
        var release: Int
        var version: String
        var commit: String
        var deployedAt: String
    }

    @Test("it reports the live release as JSON, and never reaches the app")
    func reportsLiveRelease() async throws {
        try await ProxyHarness.with { proxy in
            let backend = try await proxy.backend("blog")
            proxy.deploy("blog", host: "blog.test", release: 3, to: [backend])
            let response = try await proxy.client().get("/_slipway/version?t=1", host: "blog.test")
            #expect(response.status == 200)
            #expect(response.header("Content-Type") == "application/json")
            #expect(response.header("Cache-Control") == "no-cache")
            #expect(response.header("ETag") == "\"blog-v3\"")
            let body = try JSONDecoder().decode(VersionBody.self, from: Data(response.body.utf8))
            #expect(
                body
                    == VersionBody(
                        app: "blog",
                        release: 3,
                        version: "v3",
                        commit: "c0ffee3",
                        deployedAt: "2023-11-14T22:13:23Z"
                    )
            )
            #expect(response.body.hasPrefix("{\"app\":\"blog\",\"release\":3,\"version\":\"v3\""))
            #expect(backend.requestCount == 0)
        }
    }

    @Test("the prefix is matched literally, as bytes: other spellings of it are the app's paths")
    func prefixIsLiteral() async throws {
        try await ProxyHarness.with { proxy in
            let backend = try await proxy.backend("blog")
            proxy.deploy("blog", host: "blog.test", release: 3, to: [backend])
            let client = try await proxy.client()
            for path in ["//_slipway/version", "/%5F_slipway/version", "/_SLIPWAY/version", "/_slipway%2Fversion"] {
                let response = try await client.get(path, host: "blog.test")
                #expect(response.header("ETag") == nil, "\(path)")
            }
            #expect(backend.requestCount == 4)
        }
    }

    @Test("If-None-Match with the current ETag gets 304 without a body; a switch changes the ETag")
    func notModified() async throws {
        try await ProxyHarness.with { proxy in
            let backend = try await proxy.backend("blog")
            proxy.deploy("blog", host: "blog.test", release: 3, to: [backend])
            let client = try await proxy.client()
            let unchanged = try await client.get(
                "/_slipway/version",
                host: "blog.test",
                headers: [
                    "If-None-Match": "\"other\", \"blog-v3\""
                ]
            )
            #expect(unchanged.status == 304)
            #expect(unchanged.body == "")
            #expect(unchanged.header("ETag") == "\"blog-v3\"")

            proxy.deploy("blog", host: "blog.test", release: 4, to: [backend])
            let changed = try await client.get(
                "/_slipway/version",
                host: "blog.test",
                headers: [
                    "If-None-Match": "\"blog-v3\""
                ]
            )
            #expect(changed.status == 200)
            #expect(changed.header("ETag") == "\"blog-v4\"")
            #expect(backend.requestCount == 0)
        }
    }

    @Test("other methods get 405, and unknown or undeployed hosts get their usual answers")
    func otherMethodsAndHosts() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("blog", host: "blog.test", release: 1, to: [try await proxy.backend("blog")])
            proxy.router.setHosts(["fresh.test"], for: "fresh")
            let client = try await proxy.client()
            let post = try await client.send(method: .POST, "/_slipway/version", host: "blog.test", body: "x")
            #expect(post.status == 405)
            #expect(post.header("Allow") == "GET, HEAD")
            #expect(try await client.get("/_slipway/version", host: "fresh.test").status == 503)
            #expect(try await client.get("/_slipway/version", host: "nope.test").status == 404)
        }
    }

    // MARK: Long poll

    @Test("?wait holds a request that names the live release until the next one goes live")
    func longPollAnswersAtTheSwitch() async throws {
        try await ProxyHarness.with { proxy in
            let backend = try await proxy.backend("blog")
            proxy.deploy("blog", host: "blog.test", release: 3, to: [backend])
            let client = try await proxy.rawClient()
            try await client.send(
                "GET /_slipway/version?wait=20 HTTP/1.1\r\nHost: blog.test\r\nIf-None-Match: \"blog-v3\"\r\n\r\n"
            )
            #expect(await eventually { proxy.router.watching(app: "blog") == 1 })
            #expect(client.text.isEmpty, "the long poll answered before any switch: \(client.text)")

            proxy.deploy("blog", host: "blog.test", release: 4, to: [backend])
            let answer = try await client.waitFor("}", timeout: .seconds(2))
            #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(answer.contains("ETag: \"blog-v4\""))
            #expect(answer.contains("\"release\":4,\"version\":\"v4\""))
            #expect(backend.requestCount == 0)
        }
    }

    @Test("?wait answers 304 at its timeout, and at once when the client's ETag is old or missing")
    func longPollTimeoutAndStaleClient() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("blog", host: "blog.test", release: 3, to: [try await proxy.backend("blog")])
            let client = try await proxy.client()
            let started = ContinuousClock.now
            let timedOut = try await client.get(
                "/_slipway/version?wait=0.4",
                host: "blog.test",
                headers: ["If-None-Match": "\"blog-v3\""]
            )
            let waited = ContinuousClock.now - started
            #expect(timedOut.status == 304)
            #expect(timedOut.header("ETag") == "\"blog-v3\"")
            #expect(waited >= .milliseconds(400), "answered after \(waited)")

            let stale = try await client.get(
                "/_slipway/version?wait=30",
                host: "blog.test",
                headers: ["If-None-Match": "\"blog-v2\""]
            )
            #expect(stale.status == 200)
            #expect(stale.header("ETag") == "\"blog-v3\"")
            #expect(try await client.get("/_slipway/version?wait=30", host: "blog.test").status == 200)
        }
    }

    @Test("?wait is capped, so no client holds a connection longer than the proxy allows")
    func longPollCap() async throws {
        try await ProxyHarness.with(noticeSettings: ReleaseNoticeSettings(longestWait: .milliseconds(300))) { proxy in
            proxy.deploy("blog", host: "blog.test", release: 3, to: [try await proxy.backend("blog")])
            let started = ContinuousClock.now
            let capped = try await proxy.client().get(
                "/_slipway/version?wait=3600",
                host: "blog.test",
                headers: ["If-None-Match": "\"blog-v3\""]
            )
            #expect(capped.status == 304)
            #expect(ContinuousClock.now - started < .seconds(5))
        }
    }

    // MARK: Event stream

    @Test("the event stream tells the live release at once, then one event per switch, with heartbeats")
    func eventStream() async throws {
        try await ProxyHarness.with(noticeSettings: ReleaseNoticeSettings(heartbeat: .milliseconds(200))) { proxy in
            let backend = try await proxy.backend("blog")
            proxy.deploy("blog", host: "blog.test", release: 3, to: [backend])
            let client = try await proxy.rawClient()
            try await client.send("GET /_slipway/events HTTP/1.1\r\nHost: blog.test\r\n\r\n")
            let opening = try await client.waitFor("id: 3\n")
            #expect(opening.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(opening.contains("Content-Type: text/event-stream; charset=utf-8\r\n"))
            #expect(opening.contains("Cache-Control: no-cache\r\n"))
            #expect(opening.contains("Transfer-Encoding: chunked\r\n"))
            #expect(opening.contains("retry: 3000\n\n"))
            #expect(opening.contains("event: release\nid: 3\ndata: {\"app\":\"blog\",\"release\":3,"))

            try await client.waitFor(": heartbeat\n\n")

            // The same release made live again (a restart) is no news; the next release is.
            proxy.router.activate(proxy.makeSet("blog", release: 3, [backend.upstream]), for: "blog")
            proxy.deploy("blog", host: "blog.test", release: 4, to: [backend])
            let told = try await client.waitFor("id: 4\n")
            #expect(told.components(separatedBy: "event: release").count == 3, "events: \(told)")
            #expect(told.contains("data: {\"app\":\"blog\",\"release\":4,\"version\":\"v4\""))
            #expect(backend.requestCount == 0)
        }
    }

    @Test("a reconnecting EventSource's Last-Event-ID gets only what it missed")
    func eventStreamResumes() async throws {
        try await ProxyHarness.with(noticeSettings: ReleaseNoticeSettings(heartbeat: .milliseconds(100))) { proxy in
            let backend = try await proxy.backend("blog")
            proxy.deploy("blog", host: "blog.test", release: 5, to: [backend])

            let missedOne = try await proxy.rawClient()
            try await missedOne.send("GET /_slipway/events HTTP/1.1\r\nHost: blog.test\r\nLast-Event-ID: 4\r\n\r\n")
            try await missedOne.waitFor("id: 5\n")

            let upToDate = try await proxy.rawClient()
            try await upToDate.send("GET /_slipway/events HTTP/1.1\r\nHost: blog.test\r\nLast-Event-ID: 5\r\n\r\n")
            try await upToDate.waitFor(": heartbeat\n\n")
            #expect(!upToDate.text.contains("event: release"))

            proxy.deploy("blog", host: "blog.test", release: 6, to: [backend])
            try await upToDate.waitFor("id: 6\n")
            try await missedOne.waitFor("id: 6\n")
        }
    }

    @Test("streams and long polls end cleanly when the app is removed or the proxy stops")
    func watchesEnd() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("blog", host: "blog.test", release: 3, to: [try await proxy.backend("blog")])
            proxy.deploy("shop", host: "shop.test", release: 7, to: [try await proxy.backend("shop")])
            let blogStream = try await proxy.rawClient()
            try await blogStream.send("GET /_slipway/events HTTP/1.1\r\nHost: blog.test\r\n\r\n")
            try await blogStream.waitFor("id: 3\n")
            let shopPoll = try await proxy.rawClient()
            try await shopPoll.send(
                "GET /_slipway/version?wait=30 HTTP/1.1\r\nHost: shop.test\r\nIf-None-Match: \"shop-v7\"\r\n\r\n"
            )
            let shopStream = try await proxy.rawClient()
            try await shopStream.send("GET /_slipway/events HTTP/1.1\r\nHost: shop.test\r\n\r\n")
            try await shopStream.waitFor("id: 7\n")

            _ = proxy.router.remove(app: "blog")
            try await blogStream.waitFor("\r\n0\r\n\r\n")
            try await blogStream.waitForClose()
            #expect(!shopStream.isClosed)

            await proxy.server.stop(finishingWithin: .zero)
            try await shopStream.waitFor("\r\n0\r\n\r\n")
            try await shopStream.waitForClose()
            try await shopPoll.waitFor("HTTP/1.1 304 Not Modified\r\n")
        }
    }

    // MARK: client.js, prefix, headers

    @Test("client.js is served as JavaScript with an ETag, and revalidates with 304")
    func clientScript() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("blog", host: "blog.test", release: 3, to: [try await proxy.backend("blog")])
            let client = try await proxy.client()
            let script = try await client.get("/_slipway/client.js", host: "blog.test")
            #expect(script.status == 200)
            #expect(script.header("Content-Type") == "text/javascript; charset=utf-8")
            #expect(script.body.contains("slipway:new-version"))
            #expect(script.body.utf8.count < 12 * 1024)
            let etag = try #require(script.header("ETag"))
            let again = try await client.get("/_slipway/client.js", host: "blog.test", headers: ["If-None-Match": etag])
            #expect(again.status == 304)
            #expect(try await client.get("/_slipway/nothing", host: "blog.test").status == 404)
        }
    }

    @Test("a per-app prefix moves the endpoints, and the old path reaches the app again")
    func endpointPrefix() async throws {
        try await ProxyHarness.with { proxy in
            let backend = try await proxy.backend("blog")
            proxy.deploy("blog", host: "blog.test", release: 3, to: [backend])
            proxy.router.setEndpointPrefix("/.well-known/deploys/", for: "blog")
            let client = try await proxy.client()

            let moved = try await client.get("/.well-known/deploys/version", host: "blog.test")
            #expect(moved.header("ETag") == "\"blog-v3\"")
            #expect(try await client.get("/.well-known/deploys/other", host: "blog.test").status == 404)
            #expect(backend.requestCount == 0)
            let appRoute = try await client.get("/_slipway/version", host: "blog.test")
            #expect(appRoute.header("X-Backend") == "blog")
            #expect(backend.requestCount == 1)

            proxy.router.setEndpointPrefix(nil, for: "blog")
            #expect(try await client.get("/_slipway/version", host: "blog.test").header("ETag") == "\"blog-v3\"")
        }
    }

    @Test("the endpoints answer during maintenance; HTML pages carry their release in Server-Timing")
    func maintenanceAndServerTiming() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("blog", host: "blog.test", release: 3, to: [try await proxy.backend("blog")])
            let client = try await proxy.client()
            let page = try await client.get("/page", host: "blog.test")
            #expect(page.header("Slipway-Release") == "v3")
            #expect(page.header("Server-Timing") == "slipway;desc=\"v3\"")
            let plain = try await client.get("/", host: "blog.test")
            #expect(plain.header("Slipway-Release") == "v3")
            #expect(plain.header("Server-Timing") == nil)

            proxy.router.setMaintenance(true, for: "blog")
            #expect(try await client.get("/page", host: "blog.test").status == 503)
            #expect(try await client.get("/_slipway/version", host: "blog.test").status == 200)
            #expect(try await client.get("/_slipway/client.js", host: "blog.test").status == 200)
        }
    }
}
