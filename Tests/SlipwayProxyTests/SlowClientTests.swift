// Specifications for slow and numerous clients: a request head trickled in a byte at a time gets 408 at its
// deadline, and connections over the limits get 503 and are closed, so no client holds the proxy for ever.
import Foundation
import Testing

@testable import SlipwayProxy

@Suite("Slow clients", .timeLimit(.minutes(1)))
struct SlowClientTests {
    @Test("a head that keeps trickling in is answered 408 at the header deadline, though the client is never silent")
    func trickledHeadTimesOut() async throws {
        let limits = ClientLimits(requestTimeout: .seconds(30), headerTimeout: .seconds(1))
        try await ProxyHarness.with(limits: limits) { proxy in
            let backend = try await proxy.backend("web")
            proxy.deploy("web", host: "web.test", release: 1, to: [backend])
            let raw = try await proxy.rawClient()
            try await raw.send("GET / HTTP/1.1\r\nHost: web.test\r\n")
            // A byte every 200 ms: never silent for the 30 s request timeout.
            for _ in 0..<25 where !raw.isClosed {
                try? await raw.send("X")
                try await Task.sleep(for: .milliseconds(200))
            }
            try await raw.waitForClose()
            #expect(raw.text.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"), "\(raw.text)")
            #expect(backend.requestCount == 0)
            // A request that arrives whole in time is served.
            #expect(try await proxy.client().get("/", host: "web.test").status == 200)
        }
    }

    @Test("connections over the limit from one address, or over all, get 503 and are closed; freed ones serve again")
    func connectionLimits() async throws {
        for limits in [
            ClientLimits(maxConnections: 100, maxConnectionsPerAddress: 2),
            ClientLimits(maxConnections: 2, maxConnectionsPerAddress: 100),
        ] {
            try await ProxyHarness.with(limits: limits) { proxy in
                proxy.deploy("web", host: "web.test", release: 1, to: [try await proxy.backend("web")])
                let held = [try await proxy.rawClient(), try await proxy.rawClient()]
                try await held[0].send("GET / HTTP/1.1\r\nHost: web.test\r\n\r\n")
                _ = try await held[0].waitFor("\r\n\r\nweb")
                let refused = try await proxy.rawClient()
                // The 503 is sent without waiting for a request, so the connection may be closed before this goes.
                try? await refused.send("GET / HTTP/1.1\r\nHost: web.test\r\n\r\n")
                try await refused.waitForClose()
                #expect(refused.text.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"), "\(refused.text)")
                #expect(refused.text.hasSuffix("too many connections open right now; try again soon.\n"))
                await held[1].close()
                var served = false
                for _ in 0..<50 where !served {
                    let again = try await proxy.rawClient()
                    // Until the freed slot is counted, this one may get the 503 and be closed before it sends.
                    try? await again.send("GET / HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n")
                    try await again.waitForClose()
                    served = again.text.hasPrefix("HTTP/1.1 200 OK\r\n")
                    if !served { try await Task.sleep(for: .milliseconds(20)) }
                }
                #expect(served)
            }
        }
    }
}
