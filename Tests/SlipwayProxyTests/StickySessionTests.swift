// Specifications for sticky sessions: a cookie pins a client to one instance of the live release, the pin
// moves to the new release after a switch, and an instance that went away does not strand its clients.
import Foundation
import NIOHTTP1
import SlipwayTestSupport
import Testing

@testable import SlipwayProxy

@Suite("Sticky sessions", .timeLimit(.minutes(1)))
struct StickySessionTests {
    /// The `slipway_instance=…` pair of a Set-Cookie header, as a browser would send it back.
    static func pin(of response: TestResponse) -> String? {
        response.header("set-cookie")?.split(separator: ";").first.map(String.init)
    }

    @Test("a pinned client always reaches its instance; others are balanced and get their own pin")
    func pinnedClientStays() async throws {
        try await ProxyHarness.with { proxy in
            let backends = [try await proxy.backend("a"), try await proxy.backend("b"), try await proxy.backend("c")]
            proxy.deploy("web", host: "web.test", release: 1, to: backends)
            proxy.router.setStickySessions(true, for: "web")

            let browser = try await proxy.client()
            let first = try await browser.get("/", host: "web.test")
            let cookie = try #require(Self.pin(of: first))
            #expect(cookie.hasPrefix("slipway_instance=1."))
            #expect(first.header("set-cookie")?.contains("HttpOnly") == true)

            // A slow request keeps the pinned instance the busiest, so balancing alone would send elsewhere.
            let slow = try await proxy.client()
            let busy = Task { try await slow.get("/slow?ms=1500", host: "web.test", headers: ["Cookie": cookie]) }
            #expect(await eventually { backends.map(\.requestCount).reduce(0, +) == 2 }, "the slow request arrived")
            for _ in 0..<12 {
                let answer = try await browser.get("/", host: "web.test", headers: ["Cookie": "theme=dark; \(cookie)"])
                #expect(answer.body == first.body)
                #expect(answer.header("set-cookie") == nil, "a kept pin is not set again")
            }
            _ = try await busy.value

            var seen: Set<String> = []
            for _ in 0..<6 {
                let fresh = try await proxy.client()
                let answer = try await fresh.get("/", host: "web.test")
                seen.insert(answer.body)
                #expect(Self.pin(of: answer) != nil)
            }
            #expect(seen.count == 3, "clients without a pin are spread over the instances: \(seen)")
        }
    }

    @Test("after a switch the old pin is replaced by one for an instance of the new release")
    func pinMovesToNewRelease() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("web", host: "web.test", release: 1, to: [try await proxy.backend("old")])
            proxy.router.setStickySessions(true, for: "web")
            let browser = try await proxy.client()
            let oldPin = try #require(Self.pin(of: try await browser.get("/", host: "web.test")))

            proxy.deploy(
                "web",
                host: "web.test",
                release: 2,
                to: [try await proxy.backend("new1"), try await proxy.backend("new2")]
            )
            let moved = try await browser.get("/", host: "web.test", headers: ["Cookie": oldPin])
            #expect(moved.body.hasPrefix("new"))
            let newPin = try #require(Self.pin(of: moved))
            #expect(newPin.hasPrefix("slipway_instance=2."))
            for _ in 0..<5 {
                let again = try await browser.get("/", host: "web.test", headers: ["Cookie": newPin])
                #expect(again.body == moved.body)
            }
        }
    }

    @Test("a client pinned to an instance that stopped answering is served by another and pinned to it")
    func pinnedInstanceGone() async throws {
        try await ProxyHarness.with { proxy in
            let (a, b) = (try await proxy.backend("a"), try await proxy.backend("b"))
            proxy.deploy("web", host: "web.test", release: 1, to: [a, b])
            proxy.router.setStickySessions(true, for: "web")
            await b.stop()

            let browser = try await proxy.client()
            let answer = try await browser.get("/", host: "web.test", headers: ["Cookie": "slipway_instance=1.2"])
            #expect(answer.status == 200)
            #expect(answer.body == "a")
            #expect(Self.pin(of: answer) == "slipway_instance=1.1")
        }
    }

    @Test("without sticky sessions no cookie is set and a pin cookie is ignored")
    func offByDefault() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy(
                "web",
                host: "web.test",
                release: 1,
                to: [try await proxy.backend("a"), try await proxy.backend("b")]
            )
            let client = try await proxy.client()
            var seen: Set<String> = []
            for _ in 0..<4 {
                let answer = try await client.get("/", host: "web.test", headers: ["Cookie": "slipway_instance=1.1"])
                #expect(answer.header("set-cookie") == nil)
                seen.insert(answer.body)
            }
            #expect(seen == ["a", "b"])
        }
    }

    @Test("an instance out of rotation gets no new requests, not even pinned ones, until it is back")
    func outOfRotation() async throws {
        try await ProxyHarness.with { proxy in
            let backends = [try await proxy.backend("a"), try await proxy.backend("b"), try await proxy.backend("c")]
            proxy.deploy("web", host: "web.test", release: 1, to: backends)
            proxy.router.setStickySessions(true, for: "web")
            let set = try #require(proxy.router.liveSet(for: "web"))
            let browser = try await proxy.client()
            let pinnedToB = "slipway_instance=1.2"
            #expect(try await browser.get("/", host: "web.test", headers: ["Cookie": pinnedToB]).body == "b")

            set.setInRotation(1, false)
            #expect(set.inRotation == [0, 2])
            var seen: Set<String> = []
            for _ in 0..<9 {
                let answer = try await browser.get("/", host: "web.test", headers: ["Cookie": pinnedToB])
                seen.insert(answer.body)
                #expect(Self.pin(of: answer) != nil, "the client is pinned anew, to an instance in rotation")
            }
            #expect(seen.isSubset(of: ["a", "c"]) && !seen.isEmpty, "\(seen)")

            // With every instance out, all are tried rather than none.
            for index in 0..<3 { set.setInRotation(index, false) }
            #expect(try await browser.get("/", host: "web.test").status == 200)

            for index in 0..<3 { set.setInRotation(index, true) }
            #expect(try await browser.get("/", host: "web.test", headers: ["Cookie": pinnedToB]).body == "b")
        }
    }
}
