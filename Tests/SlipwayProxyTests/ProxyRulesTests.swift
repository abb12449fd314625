// Specifications for the proxy's rules without sockets: header rewriting, host names, claims and
// drains counted by the set, and the order in which instances are retried.
import Foundation
import NIOCore
import NIOHTTP1
import SlipwayBasics
import SlipwayTestSupport
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

    /// The head a client's request text becomes for the instance, as its lines.
    func upstreamHead(_ request: String, clientIP: String? = "127.0.0.1") throws -> [String] {
        var ids = RequestIDSource()
        var buffer = ByteBuffer()
        MessageRewriting.writeUpstreamRequestHead(
            for: try requestHead(request),
            client: ClientEndpoint(ip: clientIP, listenerPort: 8080),
            requestIDs: &ids,
            into: &buffer
        )
        let text = String(buffer: buffer)
        #expect(text.hasSuffix("\r\n\r\n"))
        return text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
    }

    func requestHead(_ text: String) throws -> ClientRequestHead {
        var reader = ClientRequestReader(maxHeadBytes: 32 * 1024)
        var bytes = ByteBuffer(string: text)
        guard case .head(let head) = try reader.next(from: &bytes) else { throw HeadMissing() }
        return head
    }

    /// The head the client gets for an instance's head, its lines, and the framing chosen.
    func clientHead(
        _ text: String,
        method: HTTPMethod = .GET,
        clientVersion: HTTPVersion = .http1_1
    ) throws -> (lines: [String], framing: ClientFraming) {
        var reader = InstanceResponseReader()
        reader.answeringHEAD = method == .HEAD
        var bytes = ByteBuffer(string: text)
        guard case .head(let head) = try reader.next(from: &bytes) else { throw HeadMissing() }
        var buffer = ByteBuffer()
        let framing = MessageRewriting.writeClientResponseHead(
            for: head,
            clientVersion: clientVersion,
            releaseVersion: release.version,
            keepAlive: true,
            into: &buffer
        )
        return (String(buffer: buffer).components(separatedBy: "\r\n").filter { !$0.isEmpty }, framing)
    }

    struct HeadMissing: Error {}

    @Test("a WebSocket handshake keeps Upgrade and Connection: Upgrade; other upgrades lose them")
    func upgradeHeaders() throws {
        let ws = "GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n"
        #expect(try requestHead(ws).isWebSocketUpgrade)
        let forwarded = try upstreamHead(ws)
        #expect(forwarded.first == "GET /ws HTTP/1.1")
        #expect(forwarded.contains("Upgrade: websocket"))
        #expect(forwarded.contains("Connection: Upgrade"))
        #expect(!forwarded.contains { $0.hasPrefix("Connection: keep-alive") })

        let h2c =
            "GET / HTTP/1.1\r\nHost: a.test\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            + "HTTP2-Settings: x\r\n\r\n"
        let plain = try upstreamHead(h2c, clientIP: nil)
        #expect(!plain.contains { $0.lowercased().hasPrefix("upgrade") || $0.lowercased().hasPrefix("connection") })
        #expect(!plain.contains { $0.lowercased().hasPrefix("http2-settings") })
        #expect(try requestHead(h2c).endsHTTPOnThisConnection)
        #expect(try !requestHead(h2c).isWebSocketUpgrade)
    }

    @Test("what a client says of where its request came from never reaches the app: the proxy's own values do")
    func forgedOriginHeaders() throws {
        let forged = try upstreamHead(
            "GET / HTTP/1.1\r\nHost: a.test\r\nForwarded: for=1.2.3.4;proto=https\r\nX-Real-IP: 1.2.3.4\r\n"
                + "X-Forwarded-Port: 443\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-proto: https\r\n"
                + "X-Forwarded-Host: evil.test\r\nX-Request-Id: abc\r\n\r\n",
            clientIP: "127.0.0.9"
        )
        #expect(
            forged == [
                "GET / HTTP/1.1", "Host: a.test", "X-Request-Id: abc", "X-Forwarded-For: 127.0.0.9",
                "X-Real-IP: 127.0.0.9", "X-Forwarded-Proto: http", "X-Forwarded-Port: 8080", "X-Forwarded-Host: a.test",
            ]
        )
    }

    @Test("a Connection header may not remove a header that frames or routes the request (request smuggling)")
    func connectionCannotStripFramingOrRouting() throws {
        for named in [
            "content-length", "Content-Length", "transfer-encoding", "host", "X-Forwarded-For", "x-forwarded-proto",
            "x-forwarded-host", "x-forwarded-port", "x-real-ip", "forwarded", "x-request-id",
        ] {
            let request =
                "POST / HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, \(named)\r\nContent-Length: 5\r\n\r\n"
            #expect(
                throws: ClientRequestError.malformed(
                    "a Connection header naming \(named.lowercased()), which the proxy needs to pass on"
                )
            ) {
                try requestHead(request)
            }
        }
    }

    @Test("headers a Connection header names are removed with the hop-by-hop ones; the rest keep their order")
    func connectionNamedHeaders() throws {
        let forwarded = try upstreamHead(
            "GET /a?b HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\n"
                + "X-Hop: 1\r\nAccept: */*\r\nTE: trailers\r\nCookie: a=b\r\nX-Forwarded-For: 10.0.0.1\r\n"
                + "X-Request-Id: abc\r\n\r\n"
        )
        #expect(
            forwarded == [
                "GET /a?b HTTP/1.1", "Host: a.test", "Accept: */*", "Cookie: a=b", "X-Request-Id: abc",
                "X-Forwarded-For: 127.0.0.1", "X-Real-IP: 127.0.0.1", "X-Forwarded-Proto: http",
                "X-Forwarded-Port: 8080", "X-Forwarded-Host: a.test",
            ]
        )
        let unaddressed = try upstreamHead(
            "GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1\r\nHost: a.test\r\nX-Request-Id: bad id\r\n\r\n",
            clientIP: nil
        )
        #expect(unaddressed.prefix(2) == ["GET / HTTP/1.1", "Host: a.test"])
        #expect(!unaddressed.contains("X-Request-Id: bad id"))
        #expect(unaddressed.contains { $0.hasPrefix("X-Request-Id: ") && $0.utf8.count == 14 + 32 })

        var ids = RequestIDSource()
        let made = (0..<100).map { _ in
            var buffer = ByteBuffer()
            ids.write(into: &buffer)
            return String(buffer: buffer)
        }
        #expect(Set(made).count == 100)
        #expect(made.allSatisfy { $0.utf8.count == 32 && $0.allSatisfy(\.isHexDigit) && $0 == $0.lowercased() })
    }

    @Test("a chunked request body is re-chunked toward the app")
    func chunkedRequest() throws {
        let forwarded = try upstreamHead(
            "POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: Chunked\r\nX-Sent: 1\r\n\r\n"
        )
        #expect(forwarded.filter { $0.lowercased().hasPrefix("transfer-encoding") } == ["Transfer-Encoding: chunked"])
        #expect(forwarded.contains("X-Sent: 1"))
        #expect(!forwarded.contains { $0.lowercased().hasPrefix("content-length") })
    }

    @Test("responses carry Slipway-Release and framing the client understands")
    func responseFraming() throws {
        let unframed = "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Type: text/html\r\n\r\n"
        let modern = try clientHead(unframed)
        #expect(
            modern.lines == [
                "HTTP/1.1 200 OK", "Content-Type: text/html", "Slipway-Release: v7",
                "Server-Timing: slipway;desc=\"v7\"", "Transfer-Encoding: chunked",
            ]
        )
        #expect(modern.framing.wrapsInChunks && !modern.framing.closeAfter)

        let old = try clientHead(unframed, clientVersion: .http1_0)
        #expect(!old.lines.contains { $0.hasPrefix("Transfer-Encoding") })
        #expect(old.lines.first == "HTTP/1.0 200 OK")
        #expect(old.lines.last == "Connection: close")
        #expect(old.framing.closeAfter)

        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n"
        #expect(
            try clientHead(chunked).lines == ["HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Slipway-Release: v7"]
        )
        let toOld = try clientHead(chunked, clientVersion: .http1_0)
        #expect(toOld.framing.dechunks && toOld.framing.closeAfter)
        #expect(!toOld.lines.contains { $0.hasPrefix("Transfer-Encoding") })
        #expect(try clientHead(chunked, method: .HEAD).lines == ["HTTP/1.1 200 OK", "Slipway-Release: v7"])

        let named = "HTTP/1.1 204 No Content\nConnection: X-Secret\nX-Secret: 1\nSlipway-Release: v1\nX-Kept: 2\n\n"
        #expect(try clientHead(named).lines == ["HTTP/1.1 204 No Content", "X-Kept: 2", "Slipway-Release: v7"])
    }

    @Test("an instance's answers are found in its bytes however they are split, and bad framing is refused")
    func readingAnswers() throws {
        let answers =
            "HTTP/1.1 100 Continue\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
            + "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        // Every split of the stream into two reads gives the same parts.
        for split in 0...answers.utf8.count {
            for dechunk in [false, true] {
                var reader = InstanceResponseReader()
                reader.dechunk = dechunk
                var received = ByteBuffer()
                var seen: [String] = []
                for piece in [answers.utf8.prefix(split), answers.utf8.dropFirst(split)] {
                    received.writeBytes(Array(piece))
                    while let part = try reader.next(from: &received) {
                        switch part {
                        case .head(let head): seen.append("head \(head.status)")
                        case .body(let body): seen.append(String(buffer: body))
                        case .end: seen.append("end")
                        }
                    }
                }
                let body = seen.filter { !$0.hasPrefix("head") && $0 != "end" }.joined()
                #expect(
                    seen.filter { $0.hasPrefix("head") || $0 == "end" } == [
                        "head 100", "head 200", "end", "head 200", "end", "head 200", "end",
                    ]
                )
                #expect(
                    body == (dechunk ? "hellohello world" : "hello5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n")
                )
                // Between answers, a close is no cut-off answer.
                #expect(try reader.connectionClosed() == nil)
            }
        }

        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 200 OK\r\nX: 1\r\n folded\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n", "HTTP/2 200\r\n\r\n", "\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            var reader = InstanceResponseReader()
            var bytes = ByteBuffer(string: bad)
            #expect(throws: InstanceResponseError.self, "\(bad.debugDescription)") {
                while try reader.next(from: &bytes) != nil {}
            }
        }

        var untilClose = InstanceResponseReader()
        var bytes = ByteBuffer(string: "HTTP/1.0 200 OK\r\n\r\nall of it")
        guard case .head(let head) = try untilClose.next(from: &bytes) else { throw HeadMissing() }
        #expect(head.framing == .untilClose && !head.keepAlive)
        #expect(
            try untilClose.next(from: &bytes).map { if case .body(let b) = $0 { String(buffer: b) } else { "" } }
                == "all of it"
        )
        #expect(try untilClose.connectionClosed().map { if case .end = $0 { true } else { false } } == true)

        var cut = InstanceResponseReader()
        var short = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        while try cut.next(from: &short) != nil {}
        #expect(throws: InstanceResponseError.endedMidAnswer) { try cut.connectionClosed() }
    }

    @Test(
        "bytes that are not a well-formed answer are read the same however they are split: refused or waited on alike"
    )
    func readingNoise() {
        var random = SplitMix64(seed: Fuzzing.seed)
        let pieces = [
            "HTTP/1.1 200 OK\r\n", "HTTP/1.0 204 x\n", "Content-Length: 3\r\n",
            "Content-Length: 99999999999999999999\r\n",
            "Transfer-Encoding: chunked\r\n", "Transfer-Encoding: gzip\r\n", "Connection: close, x\r\n", "\r\n", "\n",
            "abc", "5\r\nhello\r\n", "0\r\n\r\n", "fffffffffffffffff\r\n", ": empty\r\n", " folded\r\n", "\u{0}", "\r",
        ]
        for _ in 0..<Fuzzing.iterations {
            var text = ""
            for _ in 0..<Int.random(in: 0..<12, using: &random) { text += pieces.randomElement(using: &random)! }
            var bytes = Array(text.utf8)
            if Int.random(in: 0..<4, using: &random) == 0, !bytes.isEmpty {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            let dechunk = Bool.random(using: &random)
            let split = Int.random(in: 0...bytes.count, using: &random)
            // The proxy and the app must never disagree on an answer because of where a read ended.
            let whole = answerOutcome(of: [bytes], dechunk: dechunk)
            let parted = answerOutcome(of: [Array(bytes[..<split]), Array(bytes[split...])], dechunk: dechunk)
            #expect(whole == parted, "\(text.debugDescription) split at \(split)")
            #expect(whole.bodyBytes <= bytes.count)
        }
    }

    /// What the reader made of `reads` and then the end of the connection: heads, body sizes, ends, and the error.
    private func answerOutcome(of reads: [[UInt8]], dechunk: Bool) -> (parts: [String], bodyBytes: Int, error: String?)
    {
        var reader = InstanceResponseReader()
        reader.dechunk = dechunk
        var received = ByteBuffer()
        var parts: [String] = []
        var bodyBytes = 0
        func note(_ part: InstanceResponseReader.Part) {
            switch part {
            case .head(let head): parts.append("head \(head.status) \(head.framing) keepAlive=\(head.keepAlive)")
            case .body(let body):
                bodyBytes += body.readableBytes
                if parts.last?.hasPrefix("body") != true { parts.append("body") }
            case .end: parts.append("end")
            }
        }
        do {
            for read in reads {
                received.writeBytes(read)
                while let part = try reader.next(from: &received) { note(part) }
            }
            if let part = try reader.connectionClosed() { note(part) }
        } catch {
            return (parts, bodyBytes, "\(error)")
        }
        return (parts, bodyBytes, nil)
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
            case .claimed(_, let first, _) = router.claim(
                host: "WEB.test",
                path: "/",
                stickyCookie: nil,
                onDrainDeadline: DrainCutOff(request: 0) { _ in }
            ),
            case .claimed(_, let second, _) = router.claim(
                host: "web.test",
                path: "/",
                stickyCookie: nil,
                onDrainDeadline: DrainCutOff(request: 0) { _ in }
            )
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
                case .claimed(_, let claim, _) = router.claim(
                    host: "web.test",
                    path: "/",
                    stickyCookie: nil,
                    onDrainDeadline: DrainCutOff(request: 0) { _ in }
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
        let cutOff = Mutex<[Int]>([])
        let tell: @Sendable (Int) -> Void = { request in cutOff.withLock { $0.append(request) } }
        guard
            case .claimed(_, let finishing, _) = router.claim(
                host: "web.test",
                path: "/",
                stickyCookie: nil,
                onDrainDeadline: DrainCutOff(request: 1, tell: tell)
            ),
            case .claimed = router.claim(
                host: "web.test",
                path: "/",
                stickyCookie: nil,
                onDrainDeadline: DrainCutOff(request: 2, tell: tell)
            )
        else {
            Issue.record("web.test should be claimed")
            return
        }

        router.activate(UpstreamSet(release: release, upstreams: []), for: "web")
        let draining = Task { await set.drain(timeout: .seconds(1)) }
        #expect(await eventually { set.isDraining })
        finishing.release()
        #expect(await draining.value == DrainReport(finished: 1, cancelled: 1, webSocketsClosed: 0))
        #expect(cutOff.withLock { $0 } == [2], "the connection is told which of its requests was cut off")
        #expect(set.inFlight == 0)
    }

    @Test("an ACME challenge is answered over plain HTTP while it is set, for its token only")
    func challengeAnswers() {
        let router = Router()
        router.setHosts(["shop.test"], for: "shop")
        router.setHTTPSPort(8443)
        router.setHTTPSPolicy(.only(maxAge: 60), for: "shop")
        func claim(_ path: String, overTLS: Bool = false) -> String {
            switch router.claim(
                host: "shop.test",
                path: Substring(path),
                overTLS: overTLS,
                stickyCookie: nil,
                onDrainDeadline: DrainCutOff(request: 0) { _ in }
            ) {
            case .challengeAnswer(let answer): "answer " + answer
            case .redirectToHTTPS: "redirect"
            default: "app"
            }
        }
        let token = "/.well-known/acme-challenge/abcdefghijklmnop"
        #expect(claim("/cart") == "redirect")
        #expect(claim(token) == "app", "no challenge of ours: the app's own, as an app may answer its CA itself")
        router.answerChallenge(token: "abcdefghijklmnop", with: "abcdefghijklmnop.thumb")
        #expect(claim(token) == "answer abcdefghijklmnop.thumb")
        #expect(claim(token + "x") == "app")
        #expect(claim("/.well-known/acme-challenge/") == "app")
        #expect(claim(token, overTLS: true) == "app", "over TLS the app answers its own paths")
        router.withdrawChallenge(token: "abcdefghijklmnop")
        #expect(claim(token) == "app")
    }

    @Test("a host given to another app goes with it, and a removed app's hosts route nowhere")
    func hostsMove() {
        let router = Router()
        router.setHosts(["shop.test", "www.shop.test"], for: "shop")
        router.setHosts(["www.shop.test"], for: "blog")
        router.setMaintenance(true, for: "shop")
        func app(at host: String) -> String? {
            switch router.claim(
                host: host,
                path: "/",
                stickyCookie: nil,
                onDrainDeadline: DrainCutOff(request: 0) { _ in }
            ) {
            case .unknownHost, .redirectToHTTPS, .challengeAnswer: nil
            case .noLiveRelease(let app), .maintenance(let app), .endpoint(let app, _, _), .claimed(let app, _, _): app
            }
        }
        #expect(app(at: "shop.test") == "shop")
        #expect(app(at: "www.shop.test") == "blog", "a change to shop does not take its old host back")
        router.setHosts(["shop.example"], for: "shop")
        #expect(app(at: "shop.test") == nil)
        #expect(app(at: "shop.example") == "shop")
        _ = router.remove(app: "shop")
        #expect(app(at: "shop.example") == nil)
        #expect(app(at: "www.shop.test") == "blog")
    }

    @Test("a tunnel opened after the drain started is refused and counted as closed")
    func tunnelDuringDrain() async {
        let set = UpstreamSet(release: release, upstreams: [])
        let claim = set.claim(pin: nil, sticky: false, onDrainDeadline: DrainCutOff(request: 0) { _ in })
        let told = Mutex<[GoingAwayReason]>([])
        let open = set.openTunnel(replacing: claim) { reason in told.withLock { $0.append(reason) } }
        #expect((try? open.get()) != nil)
        #expect(set.openWebSockets == 1)
        let report = await set.drain(timeout: .seconds(1), because: .shutdown)
        #expect(report == DrainReport(finished: 0, cancelled: 0, webSocketsClosed: 1))
        #expect(told.withLock { $0 } == [.shutdown])
        let late = set.claim(pin: nil, sticky: false, onDrainDeadline: DrainCutOff(request: 0) { _ in })
        #expect(set.openTunnel(replacing: late) { _ in } == .failure(.shutdown), "refused, saying why")
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
