// Specifications for WebSocket pass-through: the upgrade, raw bytes both ways, and closing.
import Testing

@testable import SlipwayProxy

@Suite("WebSocket tunnels", .timeLimit(.minutes(1)))
struct WebSocketTests {
    static let handshake = """
        GET /ws HTTP/1.1\r
        Host: chat.test\r
        Upgrade: websocket\r
        Connection: Upgrade\r
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
        Sec-WebSocket-Version: 13\r
        \r

        """

    /// Opens a tunnel through the proxy and checks the 101 and the app's greeting came through.
    private func openTunnel(_ proxy: ProxyHarness) async throws -> RawClient {
        let raw = try await proxy.rawClient()
        try await raw.send(Self.handshake)
        let opening = try await raw.waitFor("hello from chat\n")
        #expect(opening.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
        #expect(opening.lowercased().contains("upgrade: websocket\r\n"))
        #expect(opening.contains("Slipway-Release: v1\r\n"))
        return raw
    }

    @Test("an upgrade passes through and bytes echo both ways")
    func upgradeAndEcho() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("chat", host: "chat.test", release: 1, to: [try await proxy.backend("chat")])
            let raw = try await openTunnel(proxy)
            let set = try #require(proxy.router.liveSet(for: "chat"))
            #expect(set.openWebSockets == 1)
            #expect(set.inFlight == 0)

            try await raw.send("\u{1}binary-ish frame one")
            try await raw.waitFor("\u{1}binary-ish frame one")
            try await raw.send("frame two")
            try await raw.waitFor("frame two")
        }
    }

    @Test("draining the set closes its tunnels so clients reconnect to the new release")
    func drainClosesTunnels() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("chat", host: "chat.test", release: 1, to: [try await proxy.backend("chat")])
            let raw = try await openTunnel(proxy)
            let old = try #require(
                proxy.deploy("chat", host: "chat.test", release: 2, to: [try await proxy.backend("chat-2")])
            )
            let report = await old.drain(timeout: .seconds(5))
            #expect(report == DrainReport(finished: 0, cancelled: 0, webSocketsClosed: 1))
            try await raw.waitForClose()
            #expect(old.openWebSockets == 0)
        }
    }

    @Test("when the client closes, the tunnel and the app's side close too")
    func clientCloseEndsTunnel() async throws {
        try await ProxyHarness.with { proxy in
            let backend = try await proxy.backend("chat")
            proxy.deploy("chat", host: "chat.test", release: 1, to: [backend])
            let raw = try await openTunnel(proxy)
            let set = try #require(proxy.router.liveSet(for: "chat"))
            await raw.close()
            #expect(await eventually { set.openWebSockets == 0 })
            #expect(await eventually { backend.openConnections == 0 })
        }
    }
}
