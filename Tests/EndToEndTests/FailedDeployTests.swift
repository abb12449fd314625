// Every failure a pusher can cause: one clear line, the release recorded as failed with its
// reason, and the previous release still answering through the proxy.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct FailedDeployTests {
    @Test func eachBrokenPushFailsClearlyAndThePreviousReleaseKeepsServing() async throws {
        try await DaemonHarness.with { daemon, workPath in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: workPath, message: "Good version")
            let good = try await daemon.push(workPath, app: "shop")
            #expect(good.output.contains("-----> shop v2 is live"), "\(good.output)")

            let cases: [(fixture: String, says: [String])] = [
                ("no-buildpack", ["no buildpack detected this app (tried nodejs, python, static, procfile)"]),
                (
                    "build-fails",
                    ["syntax error in app.css", "the build failed: the Node.js buildpack's compile exited with status"]
                ),
                ("no-web", ["no web process type: the Procfile and buildpack define worker"]),
                (
                    "never-healthy",
                    [
                        "web.1 never passed the health check \"root\" (5 tries); last check: GET / answered 500",
                        "web.1| starting, but the database is unreachable",
                    ]
                ),
                ("crash-on-boot", ["web.1 exited with status 1 during boot", "Error: DATABASE_URL is not set"]),
            ]
            var number = 2
            for (fixture, says) in cases {
                number += 1
                try await commitFixture(fixture, into: workPath, message: "Broken: \(fixture)")
                let push = try await daemon.push(workPath, app: "shop")
                #expect(push.output.contains("-----> Deploy of shop v\(number) failed: "), "\(fixture): \(push.output)")
                for text in says {
                    #expect(push.output.contains(text), "\(fixture) should say \(text):\n\(push.output)")
                }
                #expect(
                    push.output.contains("shop v2 is still live at http://shop.localhost:\(daemon.port)"),
                    "\(fixture)"
                )

                let answer = try HTTPConnection(port: daemon.port).get("/", host: "shop.localhost")
                #expect(answer.status == 200 && answer.body.hasPrefix("hello from shop release v2"), "after \(fixture)")
                let info = try await daemon.cli(["releases:info", "shop", "v\(number)"]).output
                #expect(info.contains("Status:      failed"), "\(fixture): \(info)")
                #expect(info.contains("Failure:     "), "\(fixture)")
            }
            let list = try await daemon.cli(["releases", "shop"]).output
            #expect(list.contains("v2     live"), "\(list)")
        }
    }

    @Test func aFailedPushMovesTheBranchBackSoThatPushingTheSameCommitDeploysAgain() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            let repository = daemon.data + "/repos/shop.git"
            func branch() async throws -> String {
                let answer = try await run("git", ["--git-dir", repository, "rev-parse", "-q", "--verify", "main"])
                return answer.output.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            func head() async throws -> String {
                try await run("git", ["rev-parse", "HEAD"], in: work).output.trimmingCharacters(
                    in: .whitespacesAndNewlines
                )
            }

            // Nothing live yet: the branch goes away again.
            try await commitFixture("build-fails", into: work, message: "v2")
            let first = try await daemon.push(work, app: "shop")
            #expect(first.output.contains("main is removed again: shop has nothing live"), "\(first.output)")
            #expect(first.output.contains("pushing \(try await head().prefix(7)) again deploys it again"))
            #expect(try await branch().isEmpty)
            let again = try await daemon.push(work, app: "shop")
            #expect(again.output.contains("Deploy of shop v3 failed"), "the same commit deploys again: \(again.output)")

            // Something live: the branch goes back to its commit.
            try await commitFixture("node-hello", into: work, message: "v4")
            let good = try await head()
            #expect(try await daemon.push(work, app: "shop").output.contains("-----> shop v4 is live"))
            try await commitFixture("build-fails", into: work, message: "v5")
            let failed = try await daemon.push(work, app: "shop")
            #expect(failed.output.contains("main is back at \(good.prefix(7)), shop's live v4"), "\(failed.output)")
            #expect(try await branch() == good)
            #expect(try await daemon.push(work, app: "shop").output.contains("Deploy of shop v6 failed"))
        }
    }

    @Test func aFailedBuildLeavesTheCacheAsItWasAndBuildsCacheClearEmptiesIt() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: work, message: "v2")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)
            let cache = daemon.data + "/apps/shop/cache"
            func contents() -> [String] {
                (FileManager.default.enumerator(atPath: cache)?.allObjects as? [String] ?? []).sorted()
            }
            let kept = contents()
            #expect(!kept.isEmpty, "a build kept a cache")

            // npm writes its logs into the cache it is given, whatever happens next.
            try await commitFixture("build-fails", into: work, message: "v3")
            #expect(try await daemon.push(work, app: "shop").output.contains("Deploy of shop v3 failed"))
            #expect(contents() == kept, "the failed build's cache was not kept")

            let cleared = try await daemon.cli(["builds:cache:clear", "shop"])
            #expect(cleared.output.contains("Emptied shop's build cache; its next build starts from nothing"))
            #expect(!FileManager.default.fileExists(atPath: cache))
            #expect(
                try await daemon.cli(["builds:cache:clear", "shop"]).output.contains("shop has no build cache yet")
            )
            try await commitFixture("node-hello", into: work, message: "v4")
            #expect(try await daemon.push(work, app: "shop").output.contains("-----> shop v4 is live"))
        }
    }

    @Test func theReleasePhaseRunsBeforeBootAndAFailingOneKeepsTheLiveRelease() async throws {
        try await DaemonHarness.with { daemon, workPath in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", "release-phase", into: workPath, message: "with migrations")
            let push = try await daemon.push(workPath, app: "shop")
            #expect(push.output.contains("-----> Running the release phase: sh migrate.sh"), "\(push.output)")
            #expect(push.output.contains("migrating the database for v2"))
            #expect(push.output.contains("-----> shop v2 is live"))
            let phase = try #require(push.output.range(of: "migrating the database"))
            let boot = try #require(push.output.range(of: "-----> Booting shop v2"))
            #expect(phase.lowerBound < boot.lowerBound, "the release phase runs before any instance boots")

            let failing = try await daemon.cli(["config:set", "shop", "MIGRATION_EXIT=3"])
            #expect(failing.status == .exited(1))
            #expect(
                failing.output.contains("the release phase (sh migrate.sh) exited with status 3"),
                "\(failing.output)"
            )
            #expect(failing.output.contains("shop v2 is still live"))
            #expect(!failing.output.contains("Booting shop v3"))
            let answer = try HTTPConnection(port: daemon.port).get("/", host: "shop.localhost")
            #expect(answer.body.hasPrefix("hello from shop release v2"))
            // The failed release's config never became the app's.
            #expect(try await daemon.cli(["config:get", "shop", "MIGRATION_EXIT"]).status == .exited(1))
            let info = try await daemon.cli(["releases:info", "shop", "v3"]).output
            #expect(info.contains("Status:      failed"))
            #expect(info.contains("release   failed"))
        }
    }

    @Test func badCommandsGetOneClearLineAndANonZeroExit() async throws {
        try await DaemonHarness.with { daemon, _ in
            let invalid = try await daemon.cli(["apps:create", "Bad_Name"])
            #expect(invalid.status != .exited(0))
            #expect(invalid.output.contains("invalid app name \"Bad_Name\": use 1-30 lowercase letters"))

            let unknown = try await daemon.cli(["releases", "nope"])
            #expect(unknown.status == .exited(1))
            #expect(unknown.output.contains("no app named nope"))

            try await daemon.cli(["apps:create", "shop"])
            let twice = try await daemon.cli(["apps:create", "shop"])
            #expect(twice.status == .exited(1))
            #expect(twice.output.contains("app shop already exists"))

            let noRelease = try await daemon.cli(["releases:info", "shop", "v7"])
            #expect(noRelease.output.contains("shop has no release v7"))

            let nonsense = try await daemon.cli(["deploy-everything"])
            #expect(nonsense.status != .exited(0))

            // A second daemon on the same data directory, or on a port in use, says why in one line.
            // `timeout` bounds the test should either ever start serving.
            let sameData = try await run(
                daemon.cliCommand(["serve", "--data", daemon.data, "--http", "127.0.0.1:\(freePort())"]).bounded(20)
            )
            #expect(sameData.status == .exited(1))
            #expect(
                sameData.output
                    == "slipway: another slipway daemon is already using \(daemon.data); stop it first or pass another --data"
            )
            let other = try TemporaryDirectory("other")
            defer { other.remove() }
            try daemon.user.own(other.path)
            let samePort = try await run(
                daemon.cliCommand(["serve", "--data", other.path + "/data", "--http", "127.0.0.1:\(daemon.port)"])
                    .bounded(20)
            )
            #expect(samePort.status == .exited(1))
            #expect(
                samePort.output.hasPrefix(
                    "slipway: cannot listen on 127.0.0.1:\(daemon.port) (address already in use)"
                ),
                "\(samePort.output)"
            )
            // A duration past what a timer can hold is refused before anything starts, not a trap later.
            let huge = try await run(
                daemon.cliCommand(["serve", "--data", other.path + "/data", "--drain-timeout", "9223372036854775807"])
                    .bounded(20)
            )
            #expect(huge.status == .exited(64), "\(huge.output)")
            #expect(
                huge.output.contains(
                    "invalid 9223372036854775807 for SLIPWAY_DRAIN_TIMEOUT: give a whole number from 0"
                ),
                "\(huge.output)"
            )
            // ACME settings that cannot work are refused before anything starts, each in one line.
            let acme: [([String], String)] = [
                (["--acme-email", "ops"], "invalid --acme-email \"ops\": give an address such as ops@example.com"),
                (["--acme-email", "a@b\nX"], "invalid --acme-email"),
                (["--acme-email", "ops@example.com", "--https", "off"], "--acme-email needs the HTTPS listener"),
                (
                    ["--acme-email", "ops@example.com", "--acme-directory", "http://ca.example/dir"],
                    "invalid --acme-directory \"http://ca.example/dir\": give the CA's https:// directory URL"
                ),
                (
                    ["--acme-email", "ops@example.com", "--acme-challenge", "dns-01"],
                    "invalid --acme-challenge \"dns-01\": give http-01 or tls-alpn-01"
                ),
                (
                    ["--acme-email", "ops@example.com", "--acme-ca-bundle", "/nonexistent/roots.pem"],
                    "cannot read --acme-ca-bundle /nonexistent/roots.pem: give a PEM file of the CA's roots"
                ),
            ]
            for (flags, says) in acme {
                let refused = try await run(
                    daemon.cliCommand(["serve", "--data", other.path + "/data"] + flags).bounded(20)
                )
                #expect(refused.status == .exited(64), "\(flags): \(refused.output)")
                #expect(refused.output.contains(says), "\(flags): \(refused.output)")
            }
            // Stopping twice is harmless: the harness stops it again on the way out.
            await daemon.stop()

            let stopped = try await daemon.cli(["apps"])
            #expect(stopped.status != .exited(0))
            #expect(stopped.output.contains("the Slipway daemon is not running"))
            #expect(stopped.output.contains("start it with `slipway serve`"))
        }
    }
}
