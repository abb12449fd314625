// Specifications for the client connection itself: pipelined requests, a slow reader, idle keep-alives.
import Foundation
import SlipwayTestSupport
import Testing

@testable import SlipwayProxy

@Suite("Client connections", .timeLimit(.minutes(1)))
struct ConnectionTests {
    @Test("pipelined requests are answered in order")
    func pipelining() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("web", host: "web.test", release: 1, to: [try await proxy.backend("web")])
            let raw = try await proxy.rawClient()
            try await raw.send(
                "GET /slow?ms=100 HTTP/1.1\r\nHost: web.test\r\n\r\nGET /status?code=201 HTTP/1.1\r\nHost: web.test\r\n\r\n"
            )
            let both = try await raw.waitFor("HTTP/1.1 201")
            let first = try #require(both.range(of: "HTTP/1.1 200 OK"))
            let second = try #require(both.range(of: "HTTP/1.1 201 Created"))
            #expect(first.lowerBound < second.lowerBound)
        }
    }

    @Test("an HTTP/1.0 client gets an HTTP/1.0 answer, then the connection closes")
    func http10Client() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("web", host: "web.test", release: 1, to: [try await proxy.backend("web")])
            let raw = try await proxy.rawClient()
            try await raw.send("GET / HTTP/1.0\r\nHost: web.test\r\n\r\n")
            try await raw.waitForClose()
            #expect(raw.text.hasPrefix("HTTP/1.0 200 OK\r\n"))
            #expect(raw.text.hasSuffix("\r\n\r\nweb"))
        }
    }

    @Test("an answer without a length is chunked for HTTP/1.1 clients; chunks reach HTTP/1.0 clients as plain data")
    func framingPerClientVersion() async throws {
        try await ProxyHarness.with { proxy in
            let backend = try await proxy.backend("web")
            proxy.deploy("web", host: "web.test", release: 1, to: [backend])
            let modern = try await proxy.rawClient()
            try await modern.send("GET /until-close HTTP/1.1\r\nHost: web.test\r\n\r\n")
            let chunked = try await modern.waitFor("0\r\n\r\n")
            #expect(chunked.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(chunked.contains("Transfer-Encoding: chunked\r\n"))
            let body = try #require(chunked.range(of: "\r\n\r\n")).upperBound
            // However the app's writes were split into chunks, they hold its bytes, then the last chunk.
            var lines = chunked[body...].components(separatedBy: "\r\n")
            var data = ""
            while let size = lines.first.flatMap({ Int($0, radix: 16) }), size > 0, lines.count > 1 {
                #expect(lines[1].utf8.count == size)
                data += lines[1]
                lines.removeFirst(2)
            }
            #expect(data == "abcdef")
            #expect(lines == ["0", "", ""])
            // The client connection stays open for the next request.
            try await modern.send("GET / HTTP/1.1\r\nHost: web.test\r\n\r\n")
            #expect(try await modern.waitFor("\r\n\r\nweb").contains("HTTP/1.1 200 OK"))

            let old = try await proxy.rawClient()
            try await old.send("GET /stream HTTP/1.0\r\nHost: web.test\r\n\r\n")
            _ = try await old.waitFor("first\n")
            backend.finishStreams()
            try await old.waitForClose()
            #expect(old.text.hasPrefix("HTTP/1.0 200 OK\r\n"))
            #expect(!old.text.contains("Transfer-Encoding"))
            #expect(old.text.hasSuffix("\r\n\r\nfirst\nlast\n"))
        }
    }

    @Test("a chunked request body streams through to the app")
    func chunkedRequestBody() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("web", host: "web.test", release: 1, to: [try await proxy.backend("web")])
            let raw = try await proxy.rawClient()
            try await raw.send(
                "POST /echo-body HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
            )
            try await Task.sleep(for: .milliseconds(20))
            try await raw.send("6\r\n world\r\n0\r\n\r\n")
            let answer = try await raw.waitFor("hello world")
            #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"))
        }
    }

    @Test("a client that stops reading stops the app's writes instead of filling the proxy's memory")
    func responseBackpressure() async throws {
        try await ProxyHarness.with { proxy in
            let backend = try await proxy.backend("big")
            proxy.deploy("big", host: "big.test", release: 1, to: [backend])
            let stalled = try await proxy.rawClient(reading: false)
            try await stalled.send("GET /large?mb=1024 HTTP/1.1\r\nHost: big.test\r\n\r\n")

            // Wait until the app's writes stall: every socket buffer between it and the client is full.
            var last = -1
            var steadyFor = 0
            for _ in 0..<100 where steadyFor < 5 {
                try await Task.sleep(for: .milliseconds(100))
                let now = backend.bytesStreamed
                steadyFor = now == last ? steadyFor + 1 : 0
                last = now
            }
            #expect(steadyFor >= 5, "the app kept writing: \(last) bytes")
            #expect(last > 0)
            #expect(last < 256 * 1024 * 1024, "the proxy read \(last) bytes ahead of its client")
        }
    }

    @Test("an idle keep-alive connection is closed, but a long answer is not idleness")
    func idleTimeout() async throws {
        // Generous enough that a loaded machine still sends the first request before the timeout hits.
        try await ProxyHarness.with(limits: ClientLimits(idleTimeout: .seconds(2))) { proxy in
            let backend = try await proxy.backend("web")
            proxy.deploy("web", host: "web.test", release: 1, to: [backend])

            let streaming = try await proxy.rawClient()
            try await streaming.send("GET /stream HTTP/1.1\r\nHost: web.test\r\n\r\n")
            try await streaming.waitFor("first\n")

            let idle = try await proxy.client()
            #expect(try await idle.get("/", host: "web.test").status == 200)
            #expect(await eventually(timeout: .seconds(8)) { !idle.isOpen })

            #expect(!streaming.isClosed)
            backend.finishStreams()
            try await streaming.waitFor("last\n\r\n0\r\n\r\n")
        }
    }
}
