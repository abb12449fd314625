// Liveness after the switch, against a real daemon checking every second: an instance that is killed, or
// that stops passing its health check, is taken out of rotation and replaced on its port while a request
// loop sees no failure; one that keeps crashing is restarted with a growing delay and reported.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct LivenessTests {
    static let arguments = ["--liveness-interval", "1", "--stop-grace", "2"]

    @Test func aKilledOrSickInstanceIsReplacedWithoutAFailedRequest() async throws {
        try await DaemonHarness.with(arguments: Self.arguments) { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            // The app's health check (and so its liveness check) is GET /health.
            try await commitFixture("node-hello", "health-path", into: work, message: "v2")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)
            #expect(try await daemon.cli(["ps:scale", "shop", "web=2"]).status.succeeded)
            let before = try await webInstances(of: daemon)
            #expect(before.count == 2)

            let loop = RequestLoop(port: daemon.port, host: "shop.localhost", path: "/", keep: 26)
            // web.1 is killed, group and all, as the OOM killer would.
            kill(-before[0].pid, SIGKILL)
            try await waitUntil("web.1 was replaced and is serving") {
                let now = try await webInstances(of: daemon)
                return now.count == 2 && now[0].pid != before[0].pid && now[0].port == before[0].port
            }
            // web.2 keeps running but fails its health check from now on.
            _ = try HTTPConnection(port: before[1].port).get("/sick", host: "shop.localhost")
            try await waitUntil("web.2 was replaced and is serving") {
                let now = try await webInstances(of: daemon)
                return now.count == 2 && now[1].pid != before[1].pid && now[1].port == before[1].port
            }
            #expect(!ProcessTable.isRunning(before[1].pid), "the sick instance was stopped")
            let health = try HTTPConnection(port: before[1].port).get("/health", host: "shop.localhost")
            #expect(health.body == "ok\n", "its replacement is healthy")
            let seen = await loop.stop()
            #expect(Set(seen.keys) == ["hello from shop release v2"], "\(seen)")
            #expect(seen.values.reduce(0, +) > 100, "\(seen)")
            let log = try String(contentsOfFile: daemon.log, encoding: .utf8)
            #expect(log.contains("instance out of rotation"))
            #expect(log.contains("failed 3 liveness checks in a row"), "\(log)")
            #expect(log.contains("instance back in rotation"))
        }
    }

    @Test func aCrashLoopingInstanceBacksOffAndIsReported() async throws {
        try await DaemonHarness.with(arguments: Self.arguments) { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: work, message: "v2")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)
            let port = try #require(try await webInstances(of: daemon).first?.port)

            // Three crashes in a row, each as soon as the restarted instance answers again.
            var downtimes: [Duration] = []
            for _ in 0..<3 {
                _ = try HTTPConnection(port: port).get("/exit", host: "shop.localhost")
                let crashed = ContinuousClock.now
                try await Task.sleep(for: .milliseconds(300))
                try await waitUntil("the instance answers again") {
                    (try? HTTPConnection(port: port).get("/health", host: "shop.localhost").status) == 200
                }
                downtimes.append(ContinuousClock.now - crashed)
            }
            // Each restart waited its back-off: down at least 1 s, then 2 s, then 4 s (a floor, so a loaded machine
            // cannot fail it).
            #expect(zip(downtimes, [1, 2, 4]).allSatisfy { $0 >= .seconds($1) }, "down after each crash: \(downtimes)")
            // The supervisor waits 1 s, then 2 s, then 4 s before each restart.
            let log = try String(contentsOfFile: daemon.log, encoding: .utf8)
            let delays = log.matches(of: /restart.delay=([0-9.]+) seconds/).map { String($0.output.1) }
            #expect(delays == ["1.0", "2.0", "4.0"], "restarts back off: \(delays)")

            let ps = try await daemon.cli(["ps", "shop"]).output
            #expect(
                ps.contains(
                    "crash-looping: web.1 exited 3 times in the last 5 minutes (last: it exited with status 1)"
                ),
                "\(ps)"
            )
            let releases = try await daemon.cli(["releases", "shop"]).output
            #expect(releases.contains("crash-looping: web.1 exited 3 times"), "\(releases)")
        }
    }

    struct WebInstance: Equatable {
        var pid: pid_t
        var port: Int
    }

    /// The serving web instances, web.1 first.
    private func webInstances(of daemon: DaemonHarness) async throws -> [WebInstance] {
        let json = try await daemon.cli(["ps", "shop", "--json"]).output
        let rows = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] ?? []
        return rows.filter { $0["status"] as? String == "serving" && $0["processType"] as? String == "web" }
            .sorted { ($0["name"] as? String ?? "") < ($1["name"] as? String ?? "") }
            .compactMap { row in
                guard let pid = row["pid"] as? Int, let port = row["port"] as? Int else { return nil }
                return WebInstance(pid: pid_t(pid), port: port)
            }
    }
}
