// Deploys under load end to end: requests on keep-alive connections and WebSockets through the real
// proxy while real pushes replace the app's release, with no failed request and every WebSocket closed
// the proper way.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct DeployUnderLoadTests {
    @Test func requestsAndWebSocketsCrossThreeDeploysWithoutAFailure() async throws {
        try await DaemonHarness.with(arguments: ["--websocket-close-window", "1"]) { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: work, message: "v2")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)

            let loop = RequestLoop(port: daemon.port, host: "shop.localhost", path: "/", keep: 26)
            for release in 3...5 {
                let socket = try WebSocketClient(port: daemon.port, host: "shop.localhost", path: "/ws")
                try socket.sendText("before v\(release)")
                #expect(try socket.receive()?.payload == Array("before v\(release)".utf8))

                try "v\(release)\n".write(toFile: work + "/VERSION", atomically: true, encoding: .utf8)
                try await run("git", ["add", "VERSION"], in: work)
                try await run("git", ["commit", "--quiet", "-m", "v\(release)"], in: work)
                let pushed = try await daemon.push(work, app: "shop")
                #expect(pushed.output.contains("-----> shop v\(release) is live"), "\(pushed.output)")

                // The old release's WebSocket hears 1001 "going away"; a new one reaches the new release.
                let close = try socket.receive()
                #expect(close?.opcode == 8)
                #expect(close.map { Array($0.payload.prefix(2)) } == [0x03, 0xe9])
                let again = try WebSocketClient(port: daemon.port, host: "shop.localhost", path: "/ws")
                try again.sendText("after v\(release)")
                #expect(try again.receive()?.payload == Array("after v\(release)".utf8))
            }
            #expect(await loop.waitUntil { $0["hello from shop release v5"] != nil })
            let seen = await loop.stop()
            #expect(seen.keys.allSatisfy { $0.hasPrefix("hello from shop release v") }, "\(seen)")
            for release in 2...5 { #expect(seen["hello from shop release v\(release)"] ?? 0 > 0, "\(seen)") }
        }
    }
}
