// Keys, roles and hostile command lines, through `slipway ssh-command` as OpenSSH runs it for an
// authorized_keys line, then through a real sshd with a real git push.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct AccessTests {
    @Test func deployKeysReachOnlyTheirAppsAndHostileCommandLinesAreRefused() async throws {
        try await DaemonHarness.with { daemon, work in
            for app in ["shop", "blog"] { try await daemon.cli(["apps:create", app]) }
            let ci = try await SSHKeyPair(in: work, name: "ci")
            let added = try await daemon.cli(
                ["keys:add", "ci", "--role", "deploy", "--app", "shop"],
                input: ci.publicLine()
            )
            #expect(added.status.succeeded, "\(added.output)")
            let fingerprint = try await run("ssh-keygen", ["-lf", ci.publicKeyPath]).output
            let printed = try #require(added.output.split(separator: " ").last { $0.hasPrefix("SHA256:") })
            #expect(fingerprint.contains(printed.trimmingCharacters(in: .whitespacesAndNewlines)))
            let again = try await daemon.cli(["keys:add", "ci2", "--role", "admin"], input: ci.publicLine())
            #expect(again.status == .exited(1))
            #expect(again.output.contains("this public key is already added as \"ci\""))
            let rsaKey = try await SSHKeyPair(in: work, name: "old", type: "rsa")
            let rsa = try await daemon.cli(["keys:add", "old", "--role", "admin"], input: rsaKey.publicLine())
            #expect(rsa.status == .exited(1) && rsa.output.contains("use an ed25519 key"), "\(rsa.output)")
            #expect(try await daemon.cli(["keys"]).output.contains("deploy: shop"))

            let releases = try await daemon.sshCommand(key: "ci", "releases shop")
            #expect(
                releases.status == .exited(0) && releases.output.contains("=== shop releases"),
                "\(releases.output)"
            )
            #expect(try await daemon.sshCommand(key: "ci", "releases 'shop' -n 1").status == .exited(0))
            // What the README says a deploy key may run on its app: no refusal, whatever the answer.
            for line in ["releases:info shop v1", "ps shop", "logs shop -n 1", "rollback shop"] {
                let answer = try await daemon.sshCommand(key: "ci", line)
                #expect(!answer.output.contains("permission denied"), "\(line): \(answer.output)")
            }
            #expect(try await daemon.sshCommand(key: "ci", "releases:info shop v1").status == .exited(0))
            #expect(try await daemon.sshCommand(key: "ci", "ps shop").status == .exited(0))

            let refusals: [(String, String)] = [
                ("config:set shop A=1", #"permission denied: key "ci" (deploy: shop) may not run config:set on shop"#),
                ("releases blog", #"permission denied: key "ci" (deploy: shop) may not run releases on blog"#),
                ("keys", #"permission denied: key "ci" (deploy: shop) may not run keys"#),
                ("apps:destroy shop --confirm shop", "may not run apps:destroy on shop"),
                ("frobnicate --now", #"unknown command "frobnicate"; run `help` to list the commands"#),
                ("releases shop\nkeys", "newline or control character"),
                ("releases " + String(repeating: "x", count: 5000), "longer than 4096 bytes"),
                ("releases 'shop", "unterminated quote"),
                ("git-receive-pack '../etc'", #""../etc" is not an app repository"#),
                ("git-receive-pack '/srv/x/shop.git'", "is not an app repository"),
                ("git-receive-pack 'blog.git'", "may not run git push on blog"),
                ("git-upload-pack 'shop.git'", "may not run git fetch on shop"),
                ("$(touch /tmp/slipway-pwned)", "unknown command"),
            ]
            for (line, message) in refusals {
                let answer = try await daemon.sshCommand(key: "ci", line)
                #expect(answer.status == .exited(1), "\(line): \(answer.status)")
                #expect(answer.output.contains(message), "\(line): \(answer.output)")
                #expect(answer.output.split(separator: "\n").count == 1, "\(line): \(answer.output)")
            }
            #expect(!FileManager.default.fileExists(atPath: "/tmp/slipway-pwned"))
            // An app the key may not see and an app that does not exist get the same answer: the key learns nothing
            // of which apps the host runs.
            for line in ["git-upload-pack '%'", "git-receive-pack '%'", "releases %", "logs % -n 1", "rollback %"] {
                let existing = try await daemon.sshCommand(key: "ci", line.replacingOccurrences(of: "%", with: "blog"))
                let missing = try await daemon.sshCommand(key: "ci", line.replacingOccurrences(of: "%", with: "gamma"))
                #expect(existing.status == missing.status, "\(line)")
                #expect(
                    existing.output == missing.output.replacingOccurrences(of: "gamma", with: "blog"),
                    "\(line): \(existing.output) / \(missing.output)"
                )
            }
            // No shell ever sees the line: `;` is part of an argument, which is no app name.
            let chained = try await daemon.sshCommand(key: "ci", "releases shop; rm -rf /")
            #expect(chained.status != .exited(0))
            #expect(!chained.output.contains("=== shop releases"))
            let shell = try await daemon.sshCommand(key: "ci", nil)
            #expect(shell.status == .exited(1) && shell.output.contains("not a shell"), "\(shell.output)")

            try await daemon.cli(["keys:remove", "ci"])
            let removed = try await daemon.sshCommand(key: "ci", "releases shop")
            #expect(removed.status == .exited(1) && removed.output.contains("is not known"), "\(removed.output)")
        }
    }

    @Test func throughARealSSHDTheForcedCommandPushesAndRunsCommandsByRole() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            let ci = try await SSHKeyPair(in: work, name: "ci")
            let alice = try await SSHKeyPair(in: work, name: "alice")
            let bob = try await SSHKeyPair(in: work, name: "bob")
            try await daemon.cli(["keys:add", "ci", "--role", "deploy", "--app", "shop"], input: ci.publicLine())
            try await daemon.cli(["keys:add", "alice", "--role", "admin"], input: alice.publicLine())
            let lines = try await daemon.cli(["keys:authorized-keys"]).output
            #expect(lines.contains("ssh-command --data '\(daemon.data)' --key ci\",restrict ssh-ed25519 "))
            let sshd = try await OpenSSHServer(authorizedKeys: lines)
            do {
                let host = "\(sshd.user)@127.0.0.1"
                let releases = try await ci.ssh(host, port: sshd.port, "releases shop")
                #expect(
                    releases.status == .exited(0) && releases.output.contains("=== shop releases"),
                    "\(releases.output)"
                )
                let denied = try await ci.ssh(host, port: sshd.port, "config:set shop A=1")
                #expect(denied.status == .exited(1))
                #expect(
                    denied.output.contains(
                        #"permission denied: key "ci" (deploy: shop) may not run config:set on shop"#
                    )
                )
                let chained = try await ci.ssh(host, port: sshd.port, "releases shop; touch \(work)/pwned")
                #expect(chained.status != .exited(0))
                #expect(!FileManager.default.fileExists(atPath: work + "/pwned"))

                // An admin adds a key over SSH: the public key travels on stdin.
                let added = try await alice.ssh(
                    host,
                    port: sshd.port,
                    "keys:add bob --role deploy --app shop",
                    input: try bob.publicLine()
                )
                #expect(
                    added.status == .exited(0) && added.output.contains("Added key bob (deploy: shop)"),
                    "\(added.output)"
                )

                let tree = work + "/app"
                try await commitFixture("static-site", into: tree, message: "Site")
                var environment = toolEnvironment
                environment["GIT_SSH_COMMAND"] = ci.gitSSHCommand(port: sshd.port)
                let push = try await run(
                    "git",
                    ["push", "ssh://\(host):\(sshd.port)/shop", "main"],
                    in: tree,
                    environment: environment
                )
                #expect(push.status.succeeded, "\(push.output)")
                #expect(push.output.contains("remote: -----> shop v2 is live"), "\(push.output)")
                #expect(try await daemon.cli(["releases", "shop"]).output.contains("(by ci)"))
            } catch {
                await sshd.stop()
                throw error
            }
            await sshd.stop()
        }
    }
}
