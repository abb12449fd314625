// Specifications for instances that cannot be reached: retry on the next instance, or a clear 502.
import NIOHTTP1
import SlipwayTestSupport
import Testing

@testable import SlipwayProxy

@Suite("Retrying unreachable instances", .timeLimit(.minutes(1)))
struct RetryTests {
    @Test("a refused connection is retried on the other instance of the set")
    func connectFailureRetried() async throws {
        try await ProxyHarness.with { proxy in
            let live = try await proxy.backend("live")
            proxy.router.setHosts(["web.test"], for: "web")
            let dead = try RefusingPort()
            let set = proxy.makeSet("web", release: 1, [dead.upstream, live.upstream])
            proxy.router.activate(set, for: "web")
            // Ties are taken in turn, so of four requests one after the other, two begin on the dead instance.
            let firsts = (0..<4).map { _ in
                let claim = set.claim(pin: nil, sticky: false, onDrainDeadline: DrainCutOff(request: 0) { _ in })
                defer { claim.release() }
                return claim.first
            }
            #expect(firsts.filter { $0 == 0 }.count == 2, "\(firsts)")
            let client = try await proxy.client()
            for _ in 0..<4 {
                let response = try await client.get("/", host: "web.test")
                #expect(response.status == 200)
                #expect(response.body == "live")
            }
            // The claim ends when the proxy hands the answer's end on, a moment after the client may have read it.
            #expect(await eventually { proxy.router.liveSet(for: "web")?.inFlight == 0 })
            withExtendedLifetime(dead) {}
        }
    }

    @Test("an instance that answers with something other than HTTP gets the client a 502 saying so")
    func notHTTP() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("web", host: "web.test", release: 1, to: [try await proxy.backend("web")])
            let client = try await proxy.client()
            let response = try await client.get("/not-http", host: "web.test")
            #expect(response.status == 502)
            #expect(response.body == "web is not answering: it sent a malformed response (bad status line).\n")
            #expect(try await client.get("/", host: "web.test").body == "web")
        }
    }

    @Test("when no instance answers, the client gets 502 saying why")
    func allDead() async throws {
        try await ProxyHarness.with { proxy in
            proxy.router.setHosts(["web.test"], for: "web")
            let dead = [try RefusingPort(), try RefusingPort()]
            proxy.router.activate(proxy.makeSet("web", release: 1, dead.map(\.upstream)), for: "web")
            let client = try await proxy.client()
            let response = try await client.get("/", host: "web.test")
            #expect(response.status == 502)
            #expect(response.body == "web is not answering: connection refused.\n")
            // The claim ends when the proxy hands the answer's end on, a moment after the client may have read it.
            #expect(await eventually { proxy.router.liveSet(for: "web")?.inFlight == 0 })
            #expect(try await client.get("/", host: "web.test").status == 502)
            withExtendedLifetime(dead) {}
        }
    }

    @Test("a GET on a kept-alive connection the app just closed is retried on a fresh one")
    func staleConnectionRetried() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("web", host: "web.test", release: 1, to: [try await proxy.backend("web")])
            let client = try await proxy.client()
            #expect(try await client.get("/drop-second", host: "web.test").status == 200)
            let second = try await client.get("/drop-second", host: "web.test")
            #expect(second.status == 200)
            #expect(second.body == "web")
        }
    }

    @Test("a GET whose instance died before answering goes to another instance; a POST is not sent twice")
    func diedMidRequest() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy(
                "web",
                host: "web.test",
                release: 1,
                to: [try await proxy.backend("a"), try await proxy.backend("b")]
            )
            let client = try await proxy.client()
            for _ in 0..<4 {
                let answer = try await client.get("/die-a", host: "web.test")
                #expect(answer.status == 200 && answer.body == "b", "\(answer.status) \(answer.body)")
            }
            var statuses: [Int] = []
            for _ in 0..<2 {
                statuses.append(try await client.send(method: .POST, "/die-a", host: "web.test", body: "x=1").status)
            }
            #expect(statuses.sorted() == [200, 502], "one POST went to a, which died with it: \(statuses)")
        }
    }

    @Test("a POST whose body went out on a stale connection is not sent twice")
    func nonIdempotentNotRetried() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("web", host: "web.test", release: 1, to: [try await proxy.backend("web")])
            let client = try await proxy.client()
            #expect(try await client.get("/drop-second", host: "web.test").status == 200)
            let post = try await client.send(method: .POST, "/drop-second", host: "web.test", body: "charge=1")
            #expect(post.status == 502)
            #expect(post.body.hasPrefix("web is not answering: "))
        }
    }
}
