// Specifications for the client limits: oversized headers, URLs and bodies, and clients that stall mid-request,
// each answered with its status (431, 413, 408) instead of a dropped connection, and never passed to the app.
import Foundation
import NIOHTTP1
import SlipwayTestSupport
import Testing

@testable import SlipwayProxy

@Suite("Client limits", .timeLimit(.minutes(1)))
struct LimitTests {
    static let small = ClientLimits(maxHeaderBytes: 1024, maxBodyBytes: 4096)
    /// For the silence tests only: elsewhere a loaded machine's pause between two sends would meet it.
    static let impatient = ClientLimits(maxHeaderBytes: 1024, maxBodyBytes: 4096, requestTimeout: .seconds(1))

    @Test("headers or a URL over the limit are answered 431 and never reach the app")
    func headerLimits() async throws {
        try await ProxyHarness.with(limits: Self.small) { proxy in
            let backend = try await proxy.backend("web")
            proxy.deploy("web", host: "web.test", release: 1, to: [backend])

            let big = try await proxy.rawClient()
            let cookie = String(repeating: "c", count: 2000)
            try await big.send("GET / HTTP/1.1\r\nHost: web.test\r\nCookie: \(cookie)\r\n\r\n")
            try await big.waitForClose()
            #expect(big.text.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
            #expect(big.text.contains("URL and headers are larger than the 1024 bytes allowed"))

            let long = try await proxy.rawClient()
            try await long.send("GET /\(String(repeating: "a", count: 1500)) HTTP/1.1\r\nHost: web.test\r\n\r\n")
            try await long.waitForClose()
            #expect(long.text.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))

            let fine = try await proxy.client()
            #expect(try await fine.get("/", host: "web.test", headers: ["Cookie": "a=b"]).status == 200)
            #expect(backend.requestCount == 1)
        }
    }

    @Test("a declared body over the limit is answered 413 before the app sees it, even while the client sends it")
    func declaredBodyTooLarge() async throws {
        try await ProxyHarness.with(limits: Self.small) { proxy in
            let backend = try await proxy.backend("web")
            proxy.deploy("web", host: "web.test", release: 1, to: [backend])
            let raw = try await proxy.rawClient()
            let body = String(repeating: "b", count: 64 * 1024)
            // The whole body right behind the head: the lingering close must not let a reset eat the answer.
            try await raw.send(
                "POST /echo-body HTTP/1.1\r\nHost: web.test\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            )
            try await raw.waitForClose()
            #expect(raw.text.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"))
            #expect(raw.text.contains("Connection: close\r\n"))
            #expect(raw.text.contains("larger than the 4096 bytes allowed"))
            #expect(backend.requestCount == 0)
        }
    }

    @Test("a chunked body that grows past the limit is answered 413 and its request never completes at the app")
    func chunkedBodyTooLarge() async throws {
        try await ProxyHarness.with(limits: Self.small) { proxy in
            let backend = try await proxy.backend("web")
            proxy.deploy("web", host: "web.test", release: 1, to: [backend])
            let raw = try await proxy.rawClient()
            try await raw.send("POST /echo-body HTTP/1.1\r\nHost: web.test\r\nTransfer-Encoding: chunked\r\n\r\n")
            let chunk = "800\r\n" + String(repeating: "x", count: 2048) + "\r\n"
            try await raw.send(chunk + chunk)
            #expect(await eventually(timeout: .seconds(5)) { backend.requestCount == 1 })
            try await raw.send(chunk)
            try await raw.waitForClose()
            #expect(raw.text.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"))
            // The app never got the end of the request, so it never answered with the echo.
            #expect(!raw.text.contains("xxxx"))
            #expect(await eventually(timeout: .seconds(5)) { backend.openConnections == 0 })
        }
    }

    @Test("a client that stalls in its head or its body is answered 408; one between requests is closed quietly")
    func stalledRequests() async throws {
        try await ProxyHarness.with(limits: Self.impatient) { proxy in
            let backend = try await proxy.backend("web")
            proxy.deploy("web", host: "web.test", release: 1, to: [backend])

            let inHead = try await proxy.rawClient()
            let started = ContinuousClock.now
            try await inHead.send("GET / HTTP/1.1\r\nHost: web.te")
            try await inHead.waitForClose()
            #expect(inHead.text.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
            #expect(ContinuousClock.now - started >= .seconds(1))

            let inBody = try await proxy.rawClient()
            try await inBody.send("POST /echo-body HTTP/1.1\r\nHost: web.test\r\nContent-Length: 10\r\n\r\nhalf")
            try await inBody.waitForClose()
            #expect(inBody.text.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))

            // Between requests only the (default 75 s) idle timeout applies: this one stays open, silently.
            let between = try await proxy.rawClient()
            try await between.send("GET / HTTP/1.1\r\nHost: web.test\r\n\r\n")
            _ = try await between.waitFor("\r\n\r\nweb")
            try await Task.sleep(for: .milliseconds(2500))
            #expect(!between.isClosed)
            #expect(!between.text.contains("408"))
            #expect(backend.requestCount == 2)
        }
    }
}
