// Tenants cannot touch the platform or each other: a tenant holding only a deploy key for app alpha pushes code
// whose build, release phase and web process each try what an attacker would (read the database, the host key and
// another app's files and environment; use the control socket or the slipway binary; rewrite another app's hook;
// signal another app's instance). Everything is refused by the sandbox, alpha still deploys and serves, and beta,
// the keys, the hooks and the config are as they were. The daemon runs as an unprivileged user, as under systemd.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct SandboxTests {
    static let attempts = [
        "read-database", "read-host-key", "list-other-app", "read-other-environ", "use-control-socket",
        "find-slipway", "write-other-hook", "signal-other-app", "see-data-directory", "see-daemon",
    ]

    @Test func aTenantsBuildReleasePhaseAndWebProcessReachNothingOfThePlatformOrAnotherApp() async throws {
        try await DaemonHarness.with { daemon, scratch in try await attack(daemon, scratch) }
    }

    @Test(.enabled(if: geteuid() == 0, "only a daemon started as root gives each app a host user of its own"))
    func startedAsRootEachAppRunsAsAnUnprivilegedUserOfItsOwn() async throws {
        var made: [String] = []
        // The host users the daemon made go once it and its apps are stopped.
        func removeMadeUsers() async {
            for name in made { _ = try? await run("userdel", [name]) }
        }
        do {
            try await startedAsRoot { made = $0 }
        } catch {
            await removeMadeUsers()
            throw error
        }
        await removeMadeUsers()
    }

    func startedAsRoot(madeUsers: ([String]) -> Void) async throws {
        try await DaemonHarness.with(asRoot: true) { daemon, scratch in
            try await attack(daemon, scratch)
            var owners: [Int] = []
            for app in ["alpha", "beta"] {
                owners.append(try #require(try await pids(of: app, daemon).first.flatMap(Self.uid(of:))))
            }
            #expect(owners.allSatisfy { $0 != 0 } && Set(owners).count == 2, "instances run as uids \(owners)")
            let made = owners.compactMap { HostUser.withID(uid_t($0))?.name }
            madeUsers(made)
            #expect(made.count == 2 && made.allSatisfy { $0.hasPrefix("slipway-app") }, "\(made)")
            // An instance whose user is gone from the host would end the test here, not crash every test beside it.
            try #require(made.count == 2)
            // The same user across a daemon restart: it is recorded with the app.
            await daemon.stop(leavingApps: true)
            let restarted = try await DaemonHarness(restartingIn: daemon)
            try await run("git", ["commit", "--quiet", "--allow-empty", "-m", "beta v3"], in: scratch + "/beta")
            let push = try await restarted.push(scratch + "/beta", app: "beta")
            #expect(push.output.contains("-----> beta v3 is live"), "\(push.output)")
            #expect(try await pids(of: "beta", restarted).first.flatMap(Self.uid(of:)) == owners[1])
            // A destroyed app's user goes with it.
            #expect(try await restarted.cli(["apps:destroy", "beta", "--confirm", "beta"]).status.succeeded)
            #expect(HostUser.named(made[1]) == nil, "\(made[1]) is still on the host")
        }
    }

    /// The real uid of process `pid`.
    static func uid(of pid: Int) -> Int? {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Uid:") }
        return line?.split(whereSeparator: \.isWhitespace).dropFirst().first.flatMap { Int($0) }
    }

    /// Alpha's owner, holding a deploy key, pushes the attacker; nothing it tries works, and nothing of beta's,
    /// the keys, the hooks or the config changes.
    func attack(_ daemon: DaemonHarness, _ scratch: String) async throws {
        for app in ["alpha", "beta"] { try await daemon.cli(["apps:create", app]) }
        try await daemon.cli(["config:set", "beta", "BETA_SECRET=hunter2"])
        let betaWork = scratch + "/beta"
        try await commitFixture("node-hello", into: betaWork, message: "beta v2")
        #expect(try await daemon.push(betaWork, app: "beta").status.succeeded)
        let betaPID = try #require(try await pids(of: "beta", daemon).first)
        // The attacker knows where the data directory is and which process is beta's.
        try await daemon.cli(["config:set", "alpha", "TARGET_DATA=\(daemon.data)", "TARGET_PID=\(betaPID)"])
        let hook = daemon.data + "/repos/beta.git/hooks/post-receive"
        let hookBefore = try String(contentsOfFile: hook, encoding: .utf8)
        let betaConfigBefore = try await daemon.cli(["config", "beta"]).output

        let mallory = try await SSHKeyPair(in: scratch, name: "mallory")
        try await daemon.cli(
            ["keys:add", "mallory", "--role", "deploy", "--app", "alpha"],
            input: mallory.publicLine()
        )
        let keysBefore = try await daemon.cli(["keys"]).output
        let alphaWork = scratch + "/alpha"
        try await commitFixture("node-hello", "attacker", into: alphaWork, message: "alpha v2")
        var environment = toolEnvironment
        environment["GIT_SSH_COMMAND"] = mallory.gitSSHCommand(port: daemon.sshPort)
        let push = try await run(
            "git",
            ["push", "ssh://git@127.0.0.1:\(daemon.sshPort)/alpha", "main"],
            in: alphaWork,
            environment: environment
        )
        #expect(push.output.contains("-----> alpha v2 is live"), "\(push.output)")
        let web = try String(contentsOfFile: daemon.data + "/apps/alpha/logs/web.1.log", encoding: .utf8)
        for stage in ["build", "release"] {
            for attempt in Self.attempts {
                #expect(push.output.contains("attack \(stage) \(attempt): blocked"), "\(stage) \(attempt)")
            }
        }
        for attempt in Self.attempts {
            #expect(web.contains("attack web \(attempt): blocked"), "web \(attempt): \(web)")
        }
        #expect(!push.output.contains("ALLOWED") && !web.contains("ALLOWED"), "\(push.output)\n\(web)")

        #expect(try HTTPConnection(port: daemon.port).get("/", host: "alpha.localhost").status == 200)
        #expect(try HTTPConnection(port: daemon.port).get("/", host: "beta.localhost").status == 200)
        #expect(try await pids(of: "beta", daemon) == [betaPID], "beta's instance was not touched")
        #expect(try await daemon.cli(["keys"]).output == keysBefore)
        #expect(try String(contentsOfFile: hook, encoding: .utf8) == hookBefore)
        #expect(try await daemon.cli(["config", "beta"]).output == betaConfigBefore)
    }

    func pids(of app: String, _ daemon: DaemonHarness) async throws -> [Int] {
        let json = try await daemon.cli(["ps", app, "--json"]).output
        let instances = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] ?? []
        return instances.compactMap { $0["pid"] as? Int }
    }
}
