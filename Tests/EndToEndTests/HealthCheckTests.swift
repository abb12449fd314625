// Health checks that help: an app on the wrong port fails in seconds with the answer, a WebSocket-only server
// and Dokku's `listening` check pass, and a steady failure is told once, not a hundred times.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct HealthCheckTests {
    @Test func anAppOnTheWrongPortFailsSayingWhereItListens() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("wrong-port", into: work, message: "app.run() on its own port")
            let push = try await daemon.push(work, app: "shop")
            #expect(push.output.contains("Deploy of shop v2 failed: web.1 listens on 127.0.0.1:"), "\(push.output)")
            #expect(push.output.contains(", not on PORT="), "\(push.output)")
            #expect(push.output.contains(": bind to $PORT"), "\(push.output)")
            #expect(push.output.contains("web.1|  * Running on http://127.0.0.1:"), "its own words are quoted")
            #expect(!push.output.contains("(0 tries)"))
        }
    }

    @Test func aWebSocketOnlyServerAndAListeningCheckPass() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "chat"])
            try await commitFixture("websocket-only", into: work, message: "426 on plain GET")
            let push = try await daemon.push(work, app: "chat")
            #expect(push.output.contains("-----> chat v2 is live"), "\(push.output)")
            let socket = try WebSocketClient(port: daemon.port, host: "chat.localhost", path: "/")
            let greeting = try #require(try socket.receive())
            #expect(String(decoding: greeting.payload, as: UTF8.self) == "hello over websocket from v2")

            // Dokku's listening check: the port accepts a connection, whatever GET / would answer (500 here).
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("never-healthy", "listening-check", into: work, message: "listening")
            let listening = try await daemon.push(work, app: "shop")
            #expect(listening.output.contains("-----> shop v2 is live"), "\(listening.output)")
            #expect(!listening.output.contains("\"listening\" is accepted but not acted on"))
        }
    }

    @Test func theSameFailureOverAndOverIsShownOnceWithItsCount() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("never-healthy", into: work, message: "the database is down")
            let push = try await daemon.push(work, app: "shop")
            #expect(push.output.contains("(5 tries); last check: GET / answered 500"), "\(push.output)")
            let tracebacks = push.output.components(separatedBy: "web.1| Traceback").count - 1
            #expect((1...2).contains(tracebacks), "5 tries, 5 tracebacks, at most two shown: \(push.output)")
            #expect(push.output.contains("web.1| … the same 3 lines "), "\(push.output)")
            let waiting = push.output.components(separatedBy: "waiting: GET / answered 500").count - 1
            #expect(waiting < 5, "the same waiting line is not repeated every second: \(push.output)")
            #expect(push.output.contains("waiting: GET / answered 500 (try "), "\(push.output)")
            let lastOutput = try #require(push.output.components(separatedBy: "last output of web.1:").last)
            #expect(lastOutput.components(separatedBy: "Traceback").count - 1 == 1, "\(lastOutput)")
            #expect(lastOutput.contains("… the same 3 lines "), "\(lastOutput)")
        }
    }
}
