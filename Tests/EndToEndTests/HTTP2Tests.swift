// HTTP/2 on the HTTPS listener, with real clients: curl chooses h2 by ALPN (and http/1.1 still works), requests with
// bodies, the version endpoint and the event stream go through streams, h2load's many streams on few connections
// see no failed stream across a deploy, and a stopping daemon sends GOAWAY and lets an open stream finish.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct HTTP2Tests {
    @Test func httpsSpeaksHTTP2ByALPNAndNoStreamFailsAcrossADeploy() async throws {
        try await DaemonHarness.with { daemon, work in
            let ca = try await TestCA(in: work + "/ca")
            let leaf = try await ca.leaf("shop", names: ["shop.localhost"])
            try daemon.user.own(work + "/ca")
            try await daemon.cli(["apps:create", "shop"])
            #expect(
                try await daemon.cli(["certs:add", "shop", "--cert", leaf.fullChain, "--key", leaf.key]).status
                    .succeeded
            )
            try await commitFixture("node-hello", into: work + "/shop", message: "v2")
            #expect(try await daemon.push(work + "/shop", app: "shop").output.contains("shop v2 is live"))
            let origin = "https://shop.localhost:\(daemon.httpsPort)"
            func curl(_ arguments: [String]) async throws -> String {
                try await run(
                    "curl",
                    ["-sS", "--max-time", "10", "--cacert", ca.rootPath]
                        + ["--resolve", "shop.localhost:\(daemon.httpsPort):127.0.0.1"] + arguments
                ).output
            }

            #expect(
                try await curl(["--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", origin]) == "2 200"
            )
            #expect(
                try await curl(["--http1.1", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", origin])
                    == "1.1 200"
            )
            let headers = try await curl(["--http2", origin + "/headers"])
            #expect(headers.contains(#""host":"shop.localhost:\#(daemon.httpsPort)""#), "\(headers)")
            #expect(headers.contains(#""x-forwarded-proto":"https""#), "\(headers)")
            #expect(!headers.contains("transfer-encoding") && !headers.contains(#""connection":"upgrade""#))
            // Uploads the app answers before reading them: the answer arrives whole and the stream ends.
            try String(repeating: "a", count: 300_000).write(
                toFile: work + "/upload",
                atomically: true,
                encoding: .utf8
            )
            for _ in 0..<5 {
                let posted = try await curl(["--http2", "--data-binary", "@" + work + "/upload", origin + "/"])
                #expect(posted.hasPrefix("hello from shop release v2"), "a body sent as DATA frames: \(posted)")
            }
            let several = try await curl(["--http2", "-H", "Cookie: a=1", "-H", "Cookie: b=2", origin + "/headers"])
            #expect(several.contains(#""cookie":"a=1; b=2""#), "HTTP/2's split cookies joined: \(several)")
            let version = try await curl(["--http2", origin + "/_slipway/version"])
            #expect(version.contains("\"version\":\"v2\""), "\(version)")
            let events = try await curl(["--http2", "-N", "--max-time", "2", origin + "/_slipway/events"])
            #expect(
                events.contains("event: release") || events.contains("data:"),
                "the event stream over h2: \(events)"
            )

            // Many streams on two connections while v3 deploys: none fails.
            let load = try Spawner.start(
                Command(
                    "h2load",
                    [
                        "-c", "2", "-m", "16", "-D", "15", "--connect-to=127.0.0.1:\(daemon.httpsPort)",
                        origin + "/",
                    ],
                    environment: toolEnvironment
                ),
                logFile: work + "/h2load.log"
            )
            try await commitFixture("node-hello", into: work + "/shop", message: "v3")
            #expect(try await daemon.push(work + "/shop", app: "shop").output.contains("shop v3 is live"))
            _ = await load.waitForExit()
            let report = try String(contentsOfFile: work + "/h2load.log", encoding: .utf8)
            let requests = report.split(separator: "\n").first { $0.hasPrefix("requests:") } ?? ""
            let statuses = report.split(separator: "\n").first { $0.hasPrefix("status codes:") } ?? ""
            #expect(requests.contains(" 0 failed, 0 errored, 0 timeout"), "\(report)")
            #expect(statuses.contains(" 0 3xx, 0 4xx, 0 5xx"), "\(report)")
            #expect(report.contains("Application protocol: h2"), "\(report)")
            #expect(try await curl(["--http2", origin + "/"]).hasPrefix("hello from shop release v3"))

            // A stopping daemon sends GOAWAY naming the stream it will still answer, and lets that stream finish.
            let frames = try Spawner.start(
                Command(
                    "python3",
                    [
                        packageRoot + "/Tests/Fixtures/clients/h2_frames.py", "\(daemon.httpsPort)", "shop.localhost",
                        "/slow?ms=2000",
                    ],
                    environment: toolEnvironment
                ),
                logFile: work + "/frames.log"
            )
            func seen() -> String { (try? String(contentsOfFile: work + "/frames.log", encoding: .utf8)) ?? "" }
            // The server acknowledges the client's settings after reading them, and the request sent with them.
            try await waitUntil("the server read the request") { seen().contains("SETTINGS ack") }
            await daemon.stop(leavingApps: true)
            #expect(await frames.waitForExit() == .exited(0), "\(seen())")
            let lines = seen().split(separator: "\n").map(String.init)
            let goAway = lines.firstIndex { $0.hasPrefix("GOAWAY last=1 error=0") }
            let answer = lines.firstIndex { $0.hasPrefix("DATA stream=1") && $0.contains("slow done") }
            #expect(goAway != nil && answer != nil, "\(lines)")
            if let goAway, let answer { #expect(goAway < answer, "GOAWAY first, then the stream finishes: \(lines)") }
        }
    }
}
