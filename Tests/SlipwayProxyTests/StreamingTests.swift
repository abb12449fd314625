// Specifications for streamed responses: parts reach the client as the app sends them.
import SlipwayTestSupport
import Testing

@testable import SlipwayProxy

@Suite("Streaming responses", .timeLimit(.minutes(1)))
struct StreamingTests {
    @Test("the first part of a streamed answer reaches the client while the app still holds it open")
    func partsArriveAsSent() async throws {
        try await ProxyHarness.with { proxy in
            let backend = try await proxy.backend("events")
            proxy.deploy("events", host: "events.test", release: 1, to: [backend])
            let raw = try await proxy.rawClient()
            try await raw.send("GET /stream HTTP/1.1\r\nHost: events.test\r\n\r\n")

            let early = try await raw.waitFor("first\n")
            #expect(early.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(early.lowercased().contains("transfer-encoding: chunked"))
            #expect(!early.contains("last"))
            #expect(proxy.router.liveSet(for: "events")?.inFlight == 1)

            backend.finishStreams()
            try await raw.waitFor("last\n\r\n0\r\n\r\n")
            #expect(await eventually { proxy.router.liveSet(for: "events")?.inFlight == 0 })
        }
    }
}
