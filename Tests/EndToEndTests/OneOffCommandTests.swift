// One-off commands (`slipway run`, as `heroku run`): in the live release's tree and environment, stdin in and
// output out, exiting with the command's status; over the CLI and over SSH, where a deploy key needs an admin's
// `keys:allow`; detached, in the background with the output in the app's logs, listed by `ps` while it runs and
// stopped by `ps:stop`, by this daemon or the next.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct OneOffCommandTests {
    /// Says where it runs and with what, echoes its stdin, leaves a file in storage, and exits 3.
    static let probe =
        #"sh -c 'echo "home=$HOME release=$SLIPWAY_RELEASE greeting=$GREETING dyno=$DYNO"; "#
        + #"read line; echo "got: $line"; echo kept > "$SLIPWAY_STORAGE/from-run"; echo oops >&2; exit 3'"#

    @Test func runGoesThroughTheCLIAndSSHWithStdinOutputAndExitStatus() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            #expect(
                try await daemon.cli(["run", "shop", "--", "true"]).output.contains("shop has no live release to run")
            )
            try await daemon.cli(["config:set", "shop", "GREETING=hi", "--no-restart"])
            try await commitFixture("node-hello", into: work, message: "v2")
            #expect(try await daemon.push(work, app: "shop").output.contains("shop v2 is live"))
            let tree = daemon.data + "/apps/shop/releases/2"

            let local = try await daemon.cli(["run", "shop", "--", Self.probe], input: "hello from stdin\n")
            #expect(local.status == .exited(3), "the command's status: \(local)")
            #expect(local.output.contains("home=\(tree) release=v2 greeting=hi dyno=run.1"), "\(local.output)")
            #expect(local.output.contains("got: hello from stdin"))
            #expect(local.output.contains("oops"))
            #expect(FileManager.default.fileExists(atPath: daemon.data + "/apps/shop/storage/from-run"))
            // Several words are exactly those arguments; one word is a shell command line.
            let words = try await daemon.cli(["run", "shop", "--", "printf", "%s|", "a b", "it's"])
            #expect(words.output == "a b|it's|", "\(words.output)")
            #expect(try await daemon.cli(["run", "shop", "--", "echo one two | wc -w"]).output.contains("2"))
            let usage = try await daemon.cli(["run", "shop"])
            #expect(!usage.status.succeeded && usage.output.contains("give the command to run after --"))
            // An escape sequence would act on the terminal of the admin who lists it (`ps`): refused.
            let escape = try await daemon.cli(["run", "shop", "--", "echo \u{1b}[2J"])
            #expect(!escape.status.succeeded && escape.output.contains("without control characters"), "\(escape)")

            // Over SSH: an admin may; a deploy key only once an admin allowed it.
            let ci = try await SSHKeyPair(in: work, name: "ci")
            let alice = try await SSHKeyPair(in: work, name: "alice")
            try await daemon.cli(["keys:add", "ci", "--role", "deploy", "--app", "shop"], input: ci.publicLine())
            try await daemon.cli(["keys:add", "alice", "--role", "admin"], input: alice.publicLine())
            let port = daemon.sshPort
            let remote = try await alice.ssh(
                "git@127.0.0.1",
                port: port,
                "run shop -- " + Self.probe,
                input: "over ssh\n"
            )
            #expect(remote.status == .exited(3), "\(remote)")
            #expect(remote.output.contains("home=\(tree) release=v2") && remote.output.contains("got: over ssh"))

            let denied = try await ci.ssh("git@127.0.0.1", port: port, "run shop -- true")
            #expect(denied.status == .exited(1))
            #expect(denied.output.contains("may not run run on shop; an admin can allow it with `keys:allow ci run`"))
            #expect(try await daemon.cli(["keys:allow", "ci", "run"]).output.contains("Key ci may now run commands"))
            #expect(try await daemon.cli(["keys"]).output.contains("deploy: shop; allowed: run"))
            let allowed = try await ci.ssh("git@127.0.0.1", port: port, "run shop -- echo ok from ci")
            #expect(allowed.status == .exited(0) && allowed.output.contains("ok from ci"), "\(allowed)")
            try await daemon.cli(["keys:disallow", "ci", "run"])
            #expect(try await ci.ssh("git@127.0.0.1", port: port, "run shop -- true").status == .exited(1))
        }
    }

    @Test func aDetachedCommandRunsInTheBackgroundWithItsOutputInTheLogs() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: work, message: "v2")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)
            let started = try await daemon.cli(
                ["run", "shop", "--detach", "--", "sh", "-c", "sleep 2; echo detached in $SLIPWAY_RELEASE"]
            )
            #expect(started.status.succeeded, "\(started.output)")
            #expect(started.output.contains("in the background as v2 run.1"), "\(started.output)")
            #expect(!started.output.contains("detached in v2"), "it did not wait for the command")
            let pid = try #require(started.output.firstMatch(of: /\(pid (\d+)\)/).map { String($0.1) })
            // `ps` lists it while it runs, as Heroku lists a one-off dyno, beside the web instance.
            let listed = try await daemon.cli(["ps", "shop"]).output
            #expect(listed.contains("run.\(pid)  v2  running  pid \(pid)  since "), "\(listed)")
            #expect(listed.contains("`'sh' '-c' 'sleep 2; echo detached in $SLIPWAY_RELEASE'`"), "\(listed)")
            #expect(listed.contains("web.1  v2  serving"), "\(listed)")
            let json = try await daemon.cli(["ps", "shop", "--json"]).output
            let entries = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] ?? []
            let run = entries.first { $0["name"] as? String == "run.\(pid)" }
            #expect(run?["processType"] as? String == "run" && run?["release"] as? String == "v2", "\(json)")
            try await waitUntil("its line reaches the logs") {
                try await daemon.cli(["logs", "shop", "--type", "run"]).output.contains("v2 run.1| detached in v2")
            }
            try await waitUntil("it leaves ps once it ended") {
                !(try await daemon.cli(["ps", "shop"]).output.contains("run.\(pid)"))
            }

            // One that would run for a minute is stopped by its name in ps, and is gone from ps at once.
            let long = try await daemon.cli(["run", "shop", "--detach", "--", "sleep 60"]).output
            let longPID = try #require(long.firstMatch(of: /\(pid (\d+)\)/).map { String($0.1) })
            let stopped = try await daemon.cli(["ps:stop", "shop", "run.\(longPID)"])
            #expect(
                stopped.status.succeeded && stopped.output.contains("Stopped run.\(longPID) (`sleep 60`)"),
                "\(stopped)"
            )
            #expect(!(try await daemon.cli(["ps", "shop"]).output.contains("run.\(longPID)")))
            #expect(kill(pid_t(longPID)!, 0) != 0, "the process is gone")
            #expect(
                try await Self.running("sleep 60", under: daemon.data).isEmpty,
                "and the command inside its sandbox with it"
            )
            let again = try await daemon.cli(["ps:stop", "shop", "run.\(longPID)"])
            #expect(again.status == .exited(1) && again.output.contains("shop has no one-off command run.\(longPID)"))
            for name in ["web.1", "run.", "run.-1", "run.99999999999999", "run.1x"] {
                let refused = try await daemon.cli(["ps:stop", "shop", name])
                #expect(!refused.status.succeeded && refused.output.contains("such as run.4242"), "\(name): \(refused)")
            }

            // It outlives the daemon, and the next daemon still lists it and can stop it.
            let kept = try await daemon.cli(["run", "shop", "--detach", "--", "sleep 60"]).output
            let keptPID = try #require(kept.firstMatch(of: /\(pid (\d+)\)/).map { String($0.1) })
            await daemon.stop(leavingApps: true)
            let restarted = try await DaemonHarness(restartingIn: daemon)
            #expect(kill(pid_t(keptPID)!, 0) == 0, "a daemon restart does not stop it")
            let listedLater = try await restarted.cli(["ps", "shop"]).output
            #expect(
                listedLater.contains("run.\(keptPID)  v2  running") && listedLater.contains("`sleep 60`"),
                "\(listedLater)"
            )
            let stoppedLater = try await restarted.cli(["ps:stop", "shop", "run.\(keptPID)"])
            #expect(stoppedLater.output.contains("Stopped run.\(keptPID) (`sleep 60`)"), "\(stoppedLater)")
            try await waitUntil("the process is gone") { kill(pid_t(keptPID)!, 0) != 0 }
            // The signals reach the command inside the sandbox, not only the sandbox's outer process (which left
            // the command running, orphaned, before).
            try await waitUntil("the command inside its sandbox is gone too") {
                try await Self.running("sleep 60", under: restarted.data).isEmpty
            }
            #expect(!(try await restarted.cli(["ps", "shop"]).output.contains("run.\(keptPID)")))
        }
    }

    /// The processes whose command line names the data directory `data` and then `text`: a sandbox's, which names
    /// the folders it binds (the sandbox does not pass the daemon's environment on, so `appProcesses` cannot tell).
    static func running(_ text: String, under data: String) async throws -> [String] {
        let pattern =
            NSRegularExpression.escapedPattern(for: data) + ".*" + NSRegularExpression.escapedPattern(for: text)
        return try await run("pgrep", ["-f", "--", pattern]).output.split(separator: "\n").map(String.init)
    }
}
