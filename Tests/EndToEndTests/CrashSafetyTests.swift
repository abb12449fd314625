// Fault injection against a real daemon: it is killed (SIGKILL) or stopped (SIGTERM) with apps running
// and in the middle of each deploy step that can be held open, then started again on the same data.
// Apps keep serving across it, the restarted daemon adopts the same processes, and every interrupted
// deploy is cleaned up.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct CrashSafetyTests {
    @Test func appsOutliveAKilledOrStoppedDaemonAndAreAdoptedWithoutARestart() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: work, message: "v2")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)
            #expect(try await daemon.cli(["ps:scale", "shop", "web=2"]).status.succeeded)
            let before = try await servingInstances(of: daemon)
            #expect(before.count == 2)

            // Across both restarts a client sees refused connections while no daemon listens, and then only the
            // live release: never an answer from a half-restored proxy (a 404 for an app not routed yet, a 502).
            let loop = RequestLoop(port: daemon.port, host: "shop.localhost", path: "/", keep: 26)
            var current = daemon
            for (round, crash) in [true, false].enumerated() {
                if crash { await current.kill() } else { await current.stop(leavingApps: true) }
                // No daemon: the instances, each in its own session, still answer on their own ports.
                for instance in before {
                    let direct = try HTTPConnection(port: instance.port).get("/", host: "shop.localhost")
                    #expect(direct.body.hasPrefix("hello from shop release v2"), "round \(round): \(direct.body)")
                }
                let started = ContinuousClock.now
                current = try await DaemonHarness(restartingIn: current)
                try await waitUntil("shop answers through the restarted daemon") {
                    (try? HTTPConnection(port: current.port).get("/", host: "shop.localhost").status) == 200
                }
                print("round \(round): shop answered \(ContinuousClock.now - started) after the daemon was started")
                #expect(try await servingInstances(of: current) == before, "adopted, not restarted")
                // Round robin is shared with the loop's requests, so a few in step with them could all meet one instance.
                let dynos = try (0..<40).map { _ in
                    try HTTPConnection(port: current.port).get("/env/DYNO", host: "shop.localhost").body
                }
                #expect(Set(dynos) == ["web.1", "web.2"])
            }

            let seen = await loop.stop()
            #expect(seen["hello from shop release v2"] ?? 0 > 0, "\(seen)")
            #expect(!seen.keys.contains { $0.hasPrefix("status") }, "\(seen)")

            // The adopted instances are a release like any other: the next deploy retires and stops them.
            try await run("git", ["commit", "--quiet", "--allow-empty", "-m", "v3"], in: work)
            let push = try await current.push(work, app: "shop")
            #expect(push.output.contains("shop v3 is live"), "\(push.output)")
            try await waitUntil("the adopted v2 instances stopped") {
                before.allSatisfy { !ProcessTable.isRunning($0.pid) }
            }
            await current.stop()
            #expect(current.appProcesses().isEmpty)
        }
    }

    @Test func anInstanceThatCannotBeAdoptedIsReplacedByAFreshHealthCheckedSet() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: work, message: "v2")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)
            let before = try await servingInstances(of: daemon)
            #expect(before.count == 1)
            // While no daemon runs, the instance dies: the next daemon has nothing to adopt.
            await daemon.stop(leavingApps: true)
            for instance in before { kill(-instance.pid, SIGKILL) }
            try await waitUntil("the instance is gone") { before.allSatisfy { !ProcessTable.isRunning($0.pid) } }

            let restarted = try await DaemonHarness(restartingIn: daemon)
            try await waitUntil("shop answers again from a new instance") {
                (try? HTTPConnection(port: restarted.port).get("/", host: "shop.localhost").status) == 200
            }
            let after = try await servingInstances(of: restarted)
            #expect(after.count == 1)
            #expect(Set(after.map(\.pid)).isDisjoint(with: before.map(\.pid)), "a fresh instance, not the dead one")
            let answer = try HTTPConnection(port: restarted.port).get("/", host: "shop.localhost")
            #expect(answer.body.hasPrefix("hello from shop release v2"), "the same release: \(answer.body)")
        }
    }

    @Test func aRequestStillInFlightWhenTheShutdownTimeoutRunsOutIsCutAndTheDaemonStops() async throws {
        try await DaemonHarness.with(arguments: ["--shutdown-timeout", "1"]) { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: work, message: "v2")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)
            let slow = try await HTTPConnection.startGet(port: daemon.port, "/slow?ms=20000", host: "shop.localhost")
            let stopping = ContinuousClock.now
            let status = await daemon.process.stop(grace: .seconds(30))
            let took = ContinuousClock.now - stopping
            #expect(status == .exited(0), "a clean stop")
            // Not the request's 20 s, nor the 30 s grace: the daemon gave up on it after its shutdown timeout.
            #expect(took < .seconds(15), "stopped after \(took)")
            let answer = try? await slow.value
            #expect(answer?.body != "slow done\n", "the request was cut, not answered")
        }
    }

    @Test func stopAppsStopsEveryInstanceWithTheDaemon() async throws {
        try await DaemonHarness.with(arguments: ["--stop-apps"]) { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", "worker", into: work, message: "v2")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)
            #expect(try await daemon.cli(["ps:scale", "shop", "worker=1"]).status.succeeded)
            #expect(daemon.appProcesses().count >= 2)
            await daemon.stop(leavingApps: true)
            #expect(daemon.appProcesses().isEmpty, "\(daemon.appProcesses())")
        }
    }

    @Test func aGracefulStopFinishesRequestsTellsThePusherAndLeavesTheAppRunning() async throws {
        try await DaemonHarness.with { daemon, scratch in
            try await daemon.cli(["apps:create", "shop"])
            // The pusher is remote: the verdict has to get through the SSH session while the daemon stops.
            let key = try await SSHKeyPair(in: scratch, name: "alice")
            try await daemon.cli(["keys:add", "alice", "--role", "admin"], input: key.publicLine())
            var sshEnvironment = toolEnvironment
            sshEnvironment["GIT_SSH_COMMAND"] = key.gitSSHCommand(port: daemon.sshPort)
            let remote = "ssh://git@127.0.0.1:\(daemon.sshPort)/shop"
            let work = scratch + "/app"
            try await commitFixture("node-hello", into: work, message: "v2")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)
            let v2 = try await servingInstances(of: daemon)
            try await commitFixture("node-hello", "hold-step", into: work, message: "v3")
            try "health".write(toFile: work + "/HOLD", atomically: true, encoding: .utf8)
            try await run("git", ["add", "HOLD"], in: work)
            try await run("git", ["commit", "--quiet", "-m", "hold the health step"], in: work)
            let push = Task { try await run("git", ["push", remote, "main"], in: work, environment: sshEnvironment) }
            try await waitUntil("the health step is held") {
                daemon.isHolding("health")
            }
            let slow = try await HTTPConnection.startGet(port: daemon.port, "/slow?ms=1500", host: "shop.localhost")
            try await Task.sleep(for: .milliseconds(300))

            await daemon.stop(leavingApps: true)
            let pushed = try await push.value
            #expect(
                pushed.output.contains(
                    "remote: -----> Deploy of shop v3 failed: interrupted: the Slipway daemon stopped"
                ),
                "\(pushed.output)"
            )
            #expect(pushed.output.contains("remote:        shop v2 is still live"), "\(pushed.output)")
            let answered = try await slow.value
            #expect(answered.status == 200 && answered.body == "slow done\n", "in flight across the stop")
            #expect(v2.allSatisfy { ProcessTable.isRunning($0.pid) })
            #expect(!daemon.appProcesses().contains { $0.environment["SLIPWAY_RELEASE"] == "v3" })
        }
    }

    /// Each step of a deploy. The hold-step fixture holds the build, the release phase and the health check open;
    /// a slow request holds the drain; the checkout and the switch, which take milliseconds, are held at their end
    /// by the daemon's test hook (SLIPWAY_TEST_HOLD_STEP).
    enum HeldStep: String, CaseIterable, Sendable {
        case checkout, build, release, health, `switch`, drain

        var byHook: Bool { self == .checkout || self == .switch }
        /// Whether v3 is live once the daemon comes back: the switch had happened.
        var switched: Bool { self == .switch || self == .drain }
    }

    @Test(arguments: HeldStep.allCases)
    func aDaemonKilledDuringADeployStepComesBackConsistent(_ step: HeldStep) async throws {
        try await DaemonHarness.with(arguments: ["--drain-timeout", "120"]) { first, work in
            try await first.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: work, message: "v2")
            #expect(try await first.push(work, app: "shop").status.succeeded)
            let v2 = try await servingInstances(of: first)
            let daemon: DaemonHarness
            if step.byHook {
                // The hook holds every deploy's step, so it is switched on after v2: a daemon with it adopts v2.
                await first.stop(leavingApps: true)
                daemon = try await DaemonHarness(
                    arguments: ["--drain-timeout", "120"],
                    environment: ["SLIPWAY_TEST_HOLD_STEP": step.rawValue],
                    restartingIn: first
                )
            } else {
                daemon = first
            }

            let push: Task<(status: SlipwayBasics.ExitStatus, output: String), any Error>
            var slow: Task<HTTPAnswer, any Error>?
            if step == .drain {
                // A request v2 is still answering holds the drain open after v3 goes live (until the kill).
                slow = try await HTTPConnection.startGet(port: daemon.port, "/slow?ms=90000", host: "shop.localhost")
                try await Task.sleep(for: .milliseconds(300))
                try await run("git", ["commit", "--quiet", "--allow-empty", "-m", "v3"], in: work)
                push = Task { try await daemon.push(work, app: "shop") }
                #expect(try await push.value.output.contains("shop v3 is live"))
                try await waitUntil("v2 is draining") {
                    try await daemon.cli(["releases:info", "shop", "v3"]).output.contains("drain")
                }
            } else {
                if step.byHook {
                    try await run("git", ["commit", "--quiet", "--allow-empty", "-m", "v3"], in: work)
                } else {
                    try await commitFixture("node-hello", "hold-step", into: work, message: "v3, held at \(step)")
                    try step.rawValue.write(toFile: work + "/HOLD", atomically: true, encoding: .utf8)
                    try await run("git", ["add", "HOLD"], in: work)
                    try await run("git", ["commit", "--quiet", "-m", "hold \(step)"], in: work)
                }
                push = Task { try await daemon.push(work, app: "shop") }
                try await waitUntil("the \(step) step is held") {
                    daemon.isHolding(step.rawValue)
                }
            }

            if step == .build {
                var info = stat()
                #expect(stat(daemon.data + "/apps/shop/releases/3.scratch", &info) == 0, "the build has its scratch")
                #expect(info.st_mode & 0o777 == 0o700, "only the daemon's user reads the config vars in it")
            }
            await daemon.kill()
            _ = try? await push.value
            let restarted = try await DaemonHarness(restartingIn: daemon)
            try await waitUntil("shop answers through the restarted daemon") {
                (try? HTTPConnection(port: restarted.port).get("/", host: "shop.localhost").status) == 200
            }
            let answer = try HTTPConnection(port: restarted.port).get("/", host: "shop.localhost")
            let list = try await restarted.cli(["releases", "shop"]).output
            let info = try await restarted.cli(["releases:info", "shop", "v3"]).output
            if step.switched {
                #expect(answer.body.hasPrefix("hello from shop release v3"), "\(answer.body)")
                #expect(list.contains("v3     live") && list.contains("v2     retired"), "\(list)")
                #expect(info.contains("interrupted: the Slipway daemon stopped"), "the \(step) step is closed: \(info)")
                try await waitUntil("the replaced v2 instance was stopped") {
                    v2.allSatisfy { !ProcessTable.isRunning($0.pid) }
                }
                _ = try? await slow?.value
            } else {
                #expect(answer.body.hasPrefix("hello from shop release v2"), "\(answer.body)")
                #expect(try await servingInstances(of: restarted) == v2, "v2 was adopted, not restarted")
                #expect(list.contains("v2     live"), "\(list)")
                #expect(
                    list.contains("v3     failed") && list.contains("interrupted: the Slipway daemon stopped"),
                    "\(list)"
                )
                #expect(info.contains("the \(step) step"), "\(info)")
                try await waitUntil("v3's processes were stopped") {
                    !restarted.appProcesses().contains { $0.environment["SLIPWAY_RELEASE"] == "v3" }
                }
                if step == .checkout || step == .build {
                    try await waitUntil("v3's half-built tree was removed") {
                        !FileManager.default.fileExists(atPath: restarted.data + "/apps/shop/releases/3")
                    }
                }
                // The build's scratch folder, with its copy of the config vars, is gone too.
                #expect(!FileManager.default.fileExists(atPath: restarted.data + "/apps/shop/releases/3.scratch"))
            }
            #expect(!list.contains("building") && !list.contains("deploying"), "\(list)")
            let current = try FileManager.default.destinationOfSymbolicLink(
                atPath: restarted.data + "/apps/shop/current"
            )
            #expect(
                current.hasSuffix("/releases/\(step.switched ? 3 : 2)"),
                "current points at the live tree: \(current)"
            )
            await restarted.stop()
        }
    }

    struct ServingInstance: Equatable, CustomStringConvertible {
        var pid: pid_t
        var port: Int
        var description: String { "pid \(pid) on \(port)" }
    }

    /// The web instances `ps` lists as serving, in port order.
    private func servingInstances(of daemon: DaemonHarness) async throws -> [ServingInstance] {
        let json = try await daemon.cli(["ps", "shop", "--json"]).output
        let rows = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] ?? []
        return rows.filter { $0["status"] as? String == "serving" && $0["processType"] as? String == "web" }
            .compactMap { row in
                guard let pid = row["pid"] as? Int, let port = row["port"] as? Int else { return nil }
                return ServingInstance(pid: pid_t(pid), port: port)
            }
            .sorted { $0.port < $1.port }
    }
}
