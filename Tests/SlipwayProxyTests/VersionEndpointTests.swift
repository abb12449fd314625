// Specifications for /_slipway/version: answered by the proxy from the live release, cacheable by ETag.
import Foundation
import NIOHTTP1
import Testing

@testable import SlipwayProxy

@Suite("The version endpoint", .timeLimit(.minutes(1)))
struct VersionEndpointTests {
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
}
