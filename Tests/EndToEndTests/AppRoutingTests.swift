// Where and whether an app answers: extra domains, the maintenance page, apps:destroy, and
// following its logs; against a real daemon with a deployed app.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct AppRoutingTests {
    @Test func domainsAndMaintenanceChangeWhatVisitorsSeeAndDestroyTakesTheAppAway() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: work, message: "Shop")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)
            let client = HTTPConnection(port: daemon.port)

            #expect(try client.get("/", host: "www.example.com").status == 404)
            let added = try await daemon.cli(["domains:add", "shop", "WWW.Example.com"])
            #expect(added.status.succeeded, "\(added.output)")
            #expect(try client.get("/", host: "www.example.com").body.hasPrefix("hello from shop release v2"))
            #expect(try await daemon.cli(["domains", "shop"]).output.contains("www.example.com"))
            let bad = try await daemon.cli(["domains:add", "shop", "not a host"])
            #expect(bad.status != .exited(0))

            #expect(try await daemon.cli(["maintenance:on", "shop"]).status.succeeded)
            let page = try client.get("/", host: "shop.localhost")
            #expect(page.status == 503)
            #expect(page.body.contains("Down for maintenance"))
            #expect(page.headers["retry-after"] == "120")
            #expect(try client.get("/_slipway/version", host: "shop.localhost").status == 200)
            #expect(try await daemon.cli(["maintenance:off", "shop"]).status.succeeded)
            #expect(try client.get("/", host: "www.example.com").status == 200)

            #expect(try await daemon.cli(["domains:remove", "shop", "www.example.com"]).status.succeeded)
            #expect(try client.get("/", host: "www.example.com").status == 404)

            let ps = try await daemon.cli(["ps", "shop", "--json"])
            let instances = try JSONSerialization.jsonObject(with: Data(ps.output.utf8)) as? [[String: Any]] ?? []
            let pid = try #require(instances.first?["pid"] as? Int)
            let unconfirmed = try await daemon.cli(["apps:destroy", "shop"])
            #expect(unconfirmed.status == .exited(1))
            #expect(unconfirmed.output.contains("run `apps:destroy shop --confirm shop`"))
            #expect(try client.get("/", host: "shop.localhost").status == 200)

            let destroyed = try await daemon.cli(["apps:destroy", "shop", "--confirm", "shop"])
            #expect(destroyed.status.succeeded, "\(destroyed.output)")
            #expect(try client.get("/", host: "shop.localhost").status == 404)
            #expect(kill(pid_t(pid), 0) == -1)
            #expect(!FileManager.default.fileExists(atPath: daemon.data + "/repos/shop.git"))
            #expect(!FileManager.default.fileExists(atPath: daemon.data + "/apps/shop"))
            #expect(try await daemon.cli(["apps"]).output.contains("No apps yet"))
            // The name is free again.
            #expect(try await daemon.cli(["apps:create", "shop"]).status.succeeded)
        }
    }

    @Test func logsFollowKeepsPrintingAcrossARestartUntilTheClientLeaves() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: work, message: "Shop")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)
            let logFile = work + "/follow.log"
            let follower = try Spawner.start(daemon.cliCommand(["logs", "shop", "-f", "-n", "1"]), logFile: logFile)
            defer { follower.signalGroup(SIGKILL) }
            let listening = { () -> Int in
                let text = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
                return text.components(separatedBy: "web.1| ").filter { $0.contains("listening on") }.count
            }
            try await waitUntil("the last line is printed") { listening() == 1 }
            #expect(try await daemon.cli(["ps:restart", "shop"]).status.succeeded)
            try await waitUntil("the replacement's first line is followed") { listening() == 2 }
            #expect(follower.exitStatus == nil)
            _ = await follower.stop(grace: .seconds(5))
        }
    }

    @Test func logsFollowGoesOnAcrossALogRotation() async throws {
        try await DaemonHarness.with(arguments: ["--log-max-size", "1k"]) { daemon, work in
            try await daemon.cli(["apps:create", "ticker"])
            try FileManager.default.createDirectory(atPath: work + "/site", withIntermediateDirectories: true)
            try "ok\n".write(toFile: work + "/site/index.html", atomically: true, encoding: .utf8)
            // A line every 50 ms: the 1k log is rotated at the supervisor's next check (every 10 s).
            let ticker = "i=0; while :; do echo \"tick $i\"; i=$((i+1)); sleep 0.05; done"
            try "web: (\(ticker)) & exec python3 -m http.server --directory site $PORT\n".write(
                toFile: work + "/Procfile",
                atomically: true,
                encoding: .utf8
            )
            try await run("git", ["init", "--quiet", "--initial-branch=main"], in: work)
            try await run("git", ["add", "--all"], in: work)
            try await run("git", ["commit", "--quiet", "-m", "Ticker"], in: work)
            #expect(try await daemon.push(work, app: "ticker").output.contains("ticker v2 is live"))
            let logFile = work + "/follow.log"
            let follower = try Spawner.start(daemon.cliCommand(["logs", "ticker", "-f", "-n", "1"]), logFile: logFile)
            defer { follower.signalGroup(SIGKILL) }
            let rotated = daemon.data + "/apps/ticker/logs/web.1.log.1"
            try await waitUntil("the instance's log is rotated") {
                FileManager.default.fileExists(atPath: rotated)
            }
            // The first line of the emptied file: a follower that kept its old offset would skip it.
            let current = daemon.data + "/apps/ticker/logs/web.1.log"
            var firstAfter: Int?
            try await waitUntil("the emptied log has a line") {
                firstAfter = Self.ticks(in: (try? String(contentsOfFile: current, encoding: .utf8)) ?? "").first
                return firstAfter != nil
            }
            try await waitUntil("the first line written after the rotation is followed") {
                Self.ticks(in: (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "").contains(firstAfter!)
            }
            #expect(follower.exitStatus == nil)
            _ = await follower.stop(grace: .seconds(5))
        }
    }

    private static func ticks(in text: String) -> [Int] {
        text.split(separator: "\n").compactMap { line in line.split(separator: "tick ").last.flatMap { Int($0) } }
    }
}
