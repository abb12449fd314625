// Specifications for the proxy's rules without sockets: header rewriting, host names, claims and
// drains counted by the set, and the order in which instances are retried.
import Foundation
import NIOHTTP1
import Synchronization
import Testing

@testable import SlipwayProxy

@Suite("Proxy rules")
struct ProxyRulesTests {
    let release = ReleaseStamp(app: "web", release: 7, commit: "abc", deployedAt: .init(timeIntervalSince1970: 0))

    @Test("Host names route without case, port or trailing dot")
    func hostNormalization() {
        #expect(Router.normalize(host: "Example.COM:8080") == "example.com")
        #expect(Router.normalize(host: " example.com. ") == "example.com")
        #expect(Router.normalize(host: "[::1]:8080") == "[::1]")
    }

    @Test("header values lose the spaces and tabs at their ends, and only those")
    func trimming() {
        #expect(" keep-alive\t".trimmingWhitespace() == "keep-alive")
        #expect("\t \t".trimmingWhitespace() == "")
        #expect("".trimmingWhitespace() == "")
        #expect("  héllo wörld ☃ ".trimmingWhitespace() == "héllo wörld ☃")
        #expect("a, b ,c".split(separator: ",").map { $0.trimmingWhitespace() } == ["a", "b", "c"])
    }

    @Test("a WebSocket handshake keeps Upgrade and Connection: Upgrade; other upgrades lose them")
    func upgradeHeaders() {
        var ids = RequestIDSource()
        let ws = HTTPRequestHead(
            version: .http1_1,
            method: .GET,
            uri: "/ws",
            headers: [
                "Host": "a.test", "Upgrade": "websocket", "Connection": "keep-alive, Upgrade",
            ]
        )
        let forwarded = MessageRewriting.upstreamRequestHead(for: ws, clientIP: "127.0.0.1", requestIDs: &ids)
        #expect(forwarded.headers["upgrade"] == ["websocket"])
        #expect(forwarded.headers["connection"] == ["Upgrade"])

        let h2c = HTTPRequestHead(
            version: .http1_1,
            method: .GET,
            uri: "/",
            headers: [
                "Host": "a.test", "Upgrade": "h2c", "Connection": "Upgrade, HTTP2-Settings", "HTTP2-Settings": "x",
            ]
        )
        let plain = MessageRewriting.upstreamRequestHead(for: h2c, clientIP: nil, requestIDs: &ids)
        #expect(!plain.headers.contains(name: "upgrade"))
        #expect(!plain.headers.contains(name: "http2-settings"))
        #expect(h2c.endsHTTPOnThisConnection)
    }

    @Test("headers a Connection header names are removed with the hop-by-hop ones; the rest keep their order")
    func connectionNamedHeaders() {
        var headers: HTTPHeaders = [
            "Host": "a.test", "Connection": "keep-alive, X-Hop", "Keep-Alive": "timeout=5", "X-Hop": "1",
            "Accept": "*/*", "TE": "trailers", "Cookie": "a=b",
        ]
        headers.removeHopByHop(keepingUpgrade: false)
        #expect(headers.map(\.name) == ["Host", "Accept", "Cookie"])

        var plain: HTTPHeaders = ["Host": "a.test", "Accept": "*/*"]
        plain.removeHopByHop(keepingUpgrade: false)
        #expect(plain.map(\.name) == ["Host", "Accept"])

        var ids = RequestIDSource()
        let made = (0..<100).map { _ in ids.next() }
        #expect(Set(made).count == 100)
        #expect(made.allSatisfy { $0.utf8.count == 32 && $0.allSatisfy(\.isHexDigit) && $0 == $0.lowercased() })
    }

    @Test("a chunked request body is re-chunked toward the app")
    func chunkedRequest() {
        var ids = RequestIDSource()
        let head = HTTPRequestHead(
            version: .http1_1,
            method: .POST,
            uri: "/",
            headers: [
                "Host": "a.test", "Transfer-Encoding": "chunked",
            ]
        )
        let forwarded = MessageRewriting.upstreamRequestHead(for: head, clientIP: nil, requestIDs: &ids)
        #expect(forwarded.headers["transfer-encoding"] == ["chunked"])
    }

    @Test("responses carry Slipway-Release and framing the client understands")
    func responseFraming() {
        let unframed = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Keep-Alive": "timeout=5"])
        let modern = MessageRewriting.clientResponseHead(
            for: unframed,
            requestMethod: .GET,
            clientVersion: .http1_1,
            release: release,
            keepAlive: true
        )
        #expect(modern.head.headers["slipway-release"] == ["v7"])
        #expect(modern.head.headers["transfer-encoding"] == ["chunked"])
        #expect(!modern.head.headers.contains(name: "keep-alive"))
        #expect(!modern.closeAfter)

        let old = MessageRewriting.clientResponseHead(
            for: unframed,
            requestMethod: .GET,
            clientVersion: .http1_0,
            release: release,
            keepAlive: true
        )
        #expect(!old.head.headers.contains(name: "transfer-encoding"))
        #expect(old.closeAfter)
        #expect(old.head.headers["connection"] == ["close"])

        let chunked = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Transfer-Encoding": "chunked"])
        let head = MessageRewriting.clientResponseHead(
            for: chunked,
            requestMethod: .HEAD,
            clientVersion: .http1_1,
            release: release,
            keepAlive: true
        )
        #expect(!head.head.headers.contains(name: "transfer-encoding"))
    }

    @Test("If-None-Match matches the ETag in a list, weakly, or as *")
    func etagMatching() {
        #expect(ReleaseEndpoint.matches(etag: "\"web-v7\"", ifNoneMatch: ["\"a\", \"web-v7\""]))
        #expect(ReleaseEndpoint.matches(etag: "\"web-v7\"", ifNoneMatch: ["W/\"web-v7\""]))
        #expect(ReleaseEndpoint.matches(etag: "\"web-v7\"", ifNoneMatch: ["*"]))
        #expect(!ReleaseEndpoint.matches(etag: "\"web-v7\"", ifNoneMatch: ["\"web-v6\""]))
    }

    @Test("claims rotate over the instances and count as in flight until released")
    func claimsRotate() throws {
        let router = Router()
        router.setHosts(["web.test"], for: "web")
        let a = Upstream(host: "127.0.0.1", port: 1)
        let b = Upstream(host: "127.0.0.1", port: 2)
        let set = UpstreamSet(release: release, upstreams: [a, b])
        #expect(router.activate(set, for: "web") == nil)

        guard
            case .claimed(_, let first) = router.claim(host: "WEB.test", path: "/", headers: [:], onDrainDeadline: {}),
            case .claimed(_, let second) = router.claim(host: "web.test", path: "/", headers: [:], onDrainDeadline: {})
        else {
            Issue.record("web.test should be claimed")
            return
        }
        #expect(first.first == 0 && second.first == 1)
        #expect(set.inFlight == 2)
        first.release()
        first.release()
        #expect(set.inFlight == 1)
        second.release()
        #expect(set.inFlight == 0)
    }

    @Test("while one instance is busy with a slow request, new requests go to the instance with fewer")
    func leastOutstandingFirst() throws {
        let router = Router()
        router.setHosts(["web.test"], for: "web")
        let (a, b, c) = (
            Upstream(host: "127.0.0.1", port: 1), Upstream(host: "127.0.0.1", port: 2),
            Upstream(host: "127.0.0.1", port: 3)
        )
        router.activate(UpstreamSet(release: release, upstreams: [a, b, c]), for: "web")
        func claim() throws -> UpstreamClaim {
            guard
                case .claimed(_, let claim) = router.claim(
                    host: "web.test",
                    path: "/",
                    headers: [:],
                    onDrainDeadline: {}
                )
            else {
                throw ClaimRefused()
            }
            return claim
        }
        let slowOnA = try claim()
        let slowOnB = try claim()
        #expect(slowOnA.first == 0 && slowOnB.first == 1)
        // Quick requests, each done before the next: all go to c while a and b are busy.
        for _ in 0..<4 {
            let quick = try claim()
            #expect(quick.set.upstreams[quick.first] == c)
            quick.release()
        }
        slowOnA.release()
        let next = try claim()
        #expect(next.first == 0)
    }

    struct ClaimRefused: Error {}

    @Test("a drain cuts off what is still claimed at its deadline and counts it")
    func drainCountsCutOffs() async {
        let router = Router()
        router.setHosts(["web.test"], for: "web")
        let set = UpstreamSet(release: release, upstreams: [Upstream(host: "127.0.0.1", port: 1)])
        router.activate(set, for: "web")
        let cutOff = Counter()
        guard
            case .claimed(_, let finishing) = router.claim(
                host: "web.test",
                path: "/",
                headers: [:],
                onDrainDeadline: { cutOff.add() }
            ),
            case .claimed = router.claim(host: "web.test", path: "/", headers: [:], onDrainDeadline: { cutOff.add() })
        else {
            Issue.record("web.test should be claimed")
            return
        }

        router.activate(UpstreamSet(release: release, upstreams: []), for: "web")
        let draining = Task { await set.drain(timeout: .seconds(1)) }
        #expect(await eventually { set.isDraining })
        finishing.release()
        #expect(await draining.value == DrainReport(finished: 1, cancelled: 1, webSocketsClosed: 0))
        #expect(cutOff.value == 1)
        #expect(set.inFlight == 0)
    }

    @Test("a tunnel opened after the drain started is refused and counted as closed")
    func tunnelDuringDrain() async {
        let set = UpstreamSet(release: release, upstreams: [])
        let claim = set.claim(pin: nil, sticky: false, onDrainDeadline: {})
        let open = set.openTunnel(replacing: claim.ticket, close: {})
        #expect(open != nil)
        #expect(set.openWebSockets == 1)
        let report = await set.drain(timeout: .seconds(1))
        #expect(report == DrainReport(finished: 0, cancelled: 0, webSocketsClosed: 1))
        let late = set.claim(pin: nil, sticky: false, onDrainDeadline: {})
        #expect(set.openTunnel(replacing: late.ticket, close: {}) == nil)
    }

    @Test("a failed instance is tried once; a stale kept-alive connection gets one fresh retry")
    func attemptOrder() {
        let a = Upstream(host: "127.0.0.1", port: 1)
        let b = Upstream(host: "127.0.0.1", port: 2)
        var attempts = UpstreamAttempts(upstreams: [a, b], first: 0)
        #expect(attempts.current == a)
        #expect(attempts.next(afterStalePooledConnection: true) == a)
        #expect(attempts.next(afterStalePooledConnection: true) == b)
        #expect(attempts.next(afterStalePooledConnection: false) == nil)
        #expect(attempts.lastTried == b)

        let c = Upstream(host: "127.0.0.1", port: 3)
        var fromLast = UpstreamAttempts(upstreams: [a, b, c], first: 2)
        #expect(fromLast.current == c)
        #expect(fromLast.next(afterStalePooledConnection: false) == a)
        #expect(fromLast.currentIndex == 0)
        #expect(fromLast.next(afterStalePooledConnection: false) == b)
        #expect(fromLast.next(afterStalePooledConnection: false) == nil)

        var skippingB = UpstreamAttempts(upstreams: [a, b, c], first: 0, resting: 0b010)
        #expect(skippingB.current == a)
        #expect(skippingB.next(afterStalePooledConnection: false) == c, "an instance out of rotation is not tried")
        #expect(skippingB.next(afterStalePooledConnection: false) == nil)
    }
}

/// A thread-safe tally for callbacks the set runs on the draining task.
final class Counter: Sendable {
    private let count = Mutex(0)
    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
