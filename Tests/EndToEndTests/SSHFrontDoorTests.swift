// The embedded SSH server of a real daemon, with the real OpenSSH client and real git: pushes
// that deploy, admin commands, roles, unknown keys and hostile command lines.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct SSHFrontDoorTests {
    @Test func pushesAndCommandsOverTheEmbeddedServerFollowEachKeysRole() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await daemon.cli(["apps:create", "blog"])
            let ci = try await SSHKeyPair(in: work, name: "ci")
            let alice = try await SSHKeyPair(in: work, name: "alice")
            let stranger = try await SSHKeyPair(in: work, name: "stranger")
            try await daemon.cli(["keys:add", "ci", "--role", "deploy", "--app", "shop"], input: ci.publicLine())
            try await daemon.cli(["keys:add", "alice", "--role", "admin"], input: alice.publicLine())
            let port = daemon.sshPort

            // The host key clients see is the one kept in the data directory.
            let scanned = try await run("ssh-keyscan", ["-p", "\(port)", "-t", "ed25519", "127.0.0.1"]).output
            let hostKey = try String(contentsOfFile: daemon.data + "/ssh_host_ed25519_key.pub", encoding: .utf8)
            let hostKeyFields = hostKey.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(scanned.contains(hostKeyFields), "\(scanned) vs \(hostKey)")

            let refused = try await stranger.ssh("git@127.0.0.1", port: port, "apps")
            #expect(refused.status == .exited(255) && refused.output.contains("Permission denied (publickey)"))
            let wrongUser = try await alice.ssh("root@127.0.0.1", port: port, "apps")
            #expect(wrongUser.status == .exited(255))

            let help = try await alice.ssh("git@127.0.0.1", port: port, "help")
            #expect(help.status == .exited(0) && help.output.contains("releases:info"), "\(help.output)")
            let set = try await alice.ssh("git@127.0.0.1", port: port, "config:set blog 'GREETING=hello world'")
            #expect(set.status == .exited(0), "\(set.output)")
            let get = try await alice.ssh("git@127.0.0.1", port: port, "config:get blog GREETING")
            #expect(get.output == "hello world", "\(get.output)")

            let denied = try await ci.ssh("git@127.0.0.1", port: port, "config:get blog GREETING")
            #expect(denied.status == .exited(1))
            #expect(
                denied.output == "slipway: permission denied: key \"ci\" (deploy: shop) may not run config:get on blog"
            )
            for line in ["releases shop; rm -rf /", "releases shop\nkeys", "git-receive-pack '../../etc'", "bash"] {
                let answer = try await ci.ssh("git@127.0.0.1", port: port, line)
                #expect(answer.status != .exited(0), "\(line): \(answer.output)")
                #expect(!answer.output.contains("=== shop releases"))
            }
            let long = try await ci.ssh("git@127.0.0.1", port: port, "releases " + String(repeating: "a", count: 9000))
            #expect(long.status == .exited(1) && long.output.contains("too long"), "\(long.output)")

            // git@HOST:APP remotes with the port in ~/.ssh/config style.
            let config = work + "/ssh_config"
            try """
            Host slipway-test
              HostName 127.0.0.1
              Port \(port)
              User git
              IdentityFile \(ci.privateKeyPath)
              IdentitiesOnly yes
              BatchMode yes
              StrictHostKeyChecking no
              UserKnownHostsFile /dev/null
              LogLevel ERROR

            """.write(toFile: config, atomically: true, encoding: .utf8)
            let tree = work + "/app"
            try await commitFixture("node-hello", into: tree, message: "Over SSH")
            var environment = toolEnvironment
            environment["GIT_SSH_COMMAND"] = "ssh -F \(config)"
            let push = try await run("git", ["push", "slipway-test:shop", "main"], in: tree, environment: environment)
            #expect(push.status.succeeded, "\(push.output)")
            #expect(push.output.contains("remote: -----> Node.js app detected"))
            #expect(push.output.contains("remote: -----> shop v2 is live"), "\(push.output)")
            #expect(try HTTPConnection(port: daemon.port).get("/", host: "shop.localhost").status == 200)
            let history = try await ci.ssh("git@127.0.0.1", port: port, "releases shop --json")
            #expect(history.status == .exited(0) && history.output.contains("\"cause\" : \"ci\""), "\(history.output)")
            let toBlog = try await run(
                "git",
                ["push", "slipway-test:blog", "main"],
                in: tree,
                environment: environment
            )
            #expect(toBlog.status != .exited(0))
            #expect(toBlog.output.contains("may not run git push on blog"), "\(toBlog.output)")

            // Admins may fetch an app's repository; deploy keys may not.
            environment["GIT_SSH_COMMAND"] = alice.gitSSHCommand(port: port)
            let clone = try await run(
                "git",
                ["clone", "--quiet", "ssh://git@127.0.0.1:\(port)/shop.git", work + "/clone"],
                environment: environment
            )
            #expect(clone.status.succeeded, "\(clone.output)")
            #expect(FileManager.default.fileExists(atPath: work + "/clone/server.js"))
            environment["GIT_SSH_COMMAND"] = ci.gitSSHCommand(port: port)
            let fetch = try await run(
                "git",
                ["ls-remote", "ssh://git@127.0.0.1:\(port)/shop"],
                environment: environment
            )
            #expect(fetch.status != .exited(0) && fetch.output.contains("may not run git fetch on shop"))
        }
    }

    @Test func withSSHOffNothingListensForSSHAndTheRestServes() async throws {
        try await DaemonHarness.with(arguments: ["--ssh", "off"]) { daemon, _ in
            #expect(try await daemon.cli(["apps:create", "shop"]).status.succeeded)
            let scan = try await run("ssh-keyscan", ["-T", "2", "-p", "\(daemon.sshPort)", "127.0.0.1"])
            #expect(scan.output.isEmpty || !scan.output.contains("ssh-ed25519"), "\(scan.output)")
            let log = try String(contentsOfFile: daemon.log, encoding: .utf8)
            #expect(!log.contains("listening for SSH"), "\(log)")
        }
    }
}
