// End to end: a real daemon in a temporary directory, real pushes with the real git client,
// real instances, and HTTP through the real proxy on loopback.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct PushToLiveTests {
    @Test func firstPushGoesLiveAndASecondPushSwitchesWithoutAFailedRequest() async throws {
        try await DaemonHarness.with { daemon, workPath in
            let created = try await daemon.cli(["apps:create", "shop"])
            #expect(created.status.succeeded)
            #expect(created.output.contains("git remote add slipway \(daemon.data)/repos/shop.git"))

            try await commitFixture("node-hello", into: workPath, message: "First version")
            let first = try await daemon.push(workPath, app: "shop")
            #expect(first.status.succeeded, "\(first.output)")
            #expect(first.output.contains("remote: -----> Node.js app detected"))
            #expect(first.output.contains("remote: -----> Installing dependencies with npm ci"))
            let verdict = try #require(first.output.split(separator: "\n").last { $0.contains("-----> ") })
            #expect(verdict.contains("-----> shop v2 is live at http://shop.localhost:\(daemon.port) (build "))
            #expect(verdict.contains(", boot ") && verdict.contains(", health ") && verdict.contains("ms)"))

            let client = HTTPConnection(port: daemon.port)
            let answer = try client.get("/", host: "shop.localhost")
            #expect(answer.status == 200)
            #expect(answer.body.hasPrefix("hello from shop release v2"))
            #expect(try client.get("/env/HTTP_FORWARDED_COUNT", host: "shop.localhost").body.contains("1"))

            // A request loop on two keep-alive connections runs across the whole second deploy.
            let loop = RequestLoop(port: daemon.port, host: "shop.localhost", path: "/", keep: 26)
            #expect(await loop.waitUntil { $0["hello from shop release v2"] != nil })
            try "second\n".write(toFile: workPath + "/VERSION", atomically: true, encoding: .utf8)
            try await run("git", ["add", "VERSION"], in: workPath)
            try await run("git", ["commit", "--quiet", "-m", "Second version"], in: workPath)
            let second = try await daemon.push(workPath, app: "shop")
            #expect(second.output.contains("-----> shop v3 is live"), "\(second.output)")
            #expect(await loop.waitUntil { $0["hello from shop release v3"] != nil })
            let seen = await loop.stop()
            #expect(seen.keys.allSatisfy { $0.hasPrefix("hello from shop release v") }, "\(seen)")
            #expect(seen["hello from shop release v2"] ?? 0 > 0)
            #expect(seen["hello from shop release v3"] ?? 0 > 0)

            // The old release is drained, its instance stopped, and the history says so.
            try await waitUntil("v2's drain is recorded") {
                try await daemon.cli(["releases:info", "shop", "v3"]).output.contains("instances stopped")
            }
            let releases = try await daemon.cli(["releases", "shop", "--json"])
            let list = try JSONSerialization.jsonObject(with: Data(releases.output.utf8)) as? [[String: Any]] ?? []
            #expect(list.map { $0["version"] as? String } == ["v3", "v2", "v1"])
            #expect(list.map { $0["status"] as? String } == ["live", "retired", "initial"])
            let durations = list.first?["durations"] as? [String: String] ?? [:]
            #expect(Set(durations.keys).isSuperset(of: ["checkout", "build", "boot", "health", "switch", "drain"]))

            let info = try await daemon.cli(["releases:info", "shop", "v3"])
            #expect(info.output.contains("Description: Deploy"))
            #expect(info.output.contains("Second version"))
            #expect(info.output.contains("=== Build log"))
            #expect(info.output.contains("-----> Node.js app detected"))
            for step in ["checkout", "build", "boot", "health", "switch", "drain"] {
                #expect(
                    info.output.contains("\n\(step.padding(toLength: 9, withPad: " ", startingAt: 0)) succeeded"),
                    "\(step)"
                )
            }
            let apps = try await daemon.cli(["apps"])
            #expect(apps.output.contains("shop") && apps.output.contains("v3 live"))

            // The version endpoint names the live release and answers 304 to a matching ETag.
            let version = try client.get("/_slipway/version", host: "shop.localhost")
            #expect(version.status == 200)
            let json = try JSONSerialization.jsonObject(with: Data(version.body.utf8)) as? [String: Any] ?? [:]
            #expect(json["app"] as? String == "shop")
            #expect(json["release"] as? Int == 3)
            #expect(json["version"] as? String == "v3")
            #expect((json["commit"] as? String)?.count == 40)
            #expect(json["deployedAt"] is String)
            let etag = try #require(version.headers["etag"])
            #expect(
                try client.get("/_slipway/version", host: "shop.localhost", headers: ["If-None-Match": etag]).status
                    == 304
            )

            let current = try FileManager.default.destinationOfSymbolicLink(atPath: daemon.data + "/apps/shop/current")
            #expect(current.hasSuffix("releases/3"))
        }
    }

    @Test func otherAppKindsDeployAndSlowStartersAreWaitedFor() async throws {
        try await DaemonHarness.with { daemon, workPath in
            let cases: [(fixture: String, detected: String, body: String)] = [
                ("python-hello", "Python app detected", "hello from python-hello"),
                ("static-site", "app detected", "Welcome to the static fixture"),
                ("slow-boot", "Procfile app detected", "hello from"),
            ]
            for (fixture, detected, body) in cases {
                try await daemon.cli(["apps:create", fixture])
                let tree = workPath + "/" + fixture
                try await commitFixture(fixture, into: tree, message: "Deploy \(fixture)")
                let push = try await daemon.push(tree, app: fixture)
                #expect(push.output.contains(detected), "\(push.output)")
                #expect(push.output.contains("-----> \(fixture) v2 is live"), "\(push.output)")
                let answer = try HTTPConnection(port: daemon.port).get("/", host: "\(fixture).localhost")
                #expect(answer.status == 200)
                #expect(answer.body.contains(body), "\(fixture): \(answer.body)")
            }
            let slow = try await daemon.cli(["releases:info", "slow-boot", "v2"]).output
            #expect(slow.contains("web.1| warming up"))
        }
    }

    @Test func pushesToOtherBranchesAreStoredButNotDeployed() async throws {
        try await DaemonHarness.with { daemon, workPath in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: workPath, message: "feature work")
            try await run("git", ["checkout", "--quiet", "-b", "feature"], in: workPath)
            let push = try await daemon.push(workPath, app: "shop", branch: "feature")
            #expect(push.status.succeeded)
            #expect(push.output.contains("Stored feature; only main is deployed"))
            #expect(
                try await run("git", ["--git-dir", daemon.data + "/repos/shop.git", "rev-parse", "feature"]).status
                    .succeeded
            )
            #expect(try HTTPConnection(port: daemon.port).get("/", host: "shop.localhost").status == 503)
        }
    }

    @Test func aPushDuringAnotherDeployOfTheSameAppWaitsItsTurn() async throws {
        try await DaemonHarness.with { daemon, workPath in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("slow-boot", into: workPath, message: "slow one")
            let first = Task { try await daemon.push(workPath, app: "shop") }
            try await waitUntil("the first deploy is under way") {
                let list = try await daemon.cli(["releases", "shop"]).output
                return list.contains("v2     building") || list.contains("v2     deploying")
            }
            // A second pusher, from a clone that already has the first commit.
            let clone = workPath + "/../clone-\(daemon.port)"
            try await run("git", ["clone", "--quiet", workPath, clone])
            try await run("git", ["commit", "--quiet", "--allow-empty", "-m", "second"], in: clone)
            let second = try await daemon.push(clone, app: "shop")
            let firstOutput = try await first.value.output
            #expect(firstOutput.contains("-----> shop v2 is live"), "\(firstOutput)")
            #expect(
                second.output.contains("Another deploy of shop is running; waiting for it to finish"),
                "\(second.output)"
            )
            #expect(second.output.contains("-----> shop v3 is live"), "\(second.output)")
            try? FileManager.default.removeItem(atPath: clone)
        }
    }

    @Test func aWebSocketPassesThroughAndIsClosedWhenItsReleaseIsRetired() async throws {
        try await DaemonHarness.with { daemon, workPath in
            try await daemon.cli(["apps:create", "chat"])
            try await commitFixture("node-hello", into: workPath, message: "v2")
            _ = try await daemon.push(workPath, app: "chat")
            let socket = try WebSocketClient(port: daemon.port, host: "chat.localhost", path: "/ws")
            try socket.sendText("hello through slipway")
            let echo = try #require(try socket.receive())
            #expect(echo.opcode == 1 && String(decoding: echo.payload, as: UTF8.self) == "hello through slipway")

            try await run("git", ["commit", "--quiet", "--allow-empty", "-m", "v3"], in: workPath)
            let push = try await daemon.push(workPath, app: "chat")
            #expect(push.output.contains("chat v3 is live"))
            // The retired release's WebSocket ends (a close frame from the app, or the connection cut),
            // so the browser reconnects to v3.
            var ended = false
            while !ended, let frame = try socket.receive() { ended = frame.opcode == 8 }
            let fresh = try WebSocketClient(port: daemon.port, host: "chat.localhost", path: "/ws")
            try fresh.sendText("again")
            #expect(try fresh.receive().map { String(decoding: $0.payload, as: UTF8.self) } == "again")
        }
    }

    @Test func rollbackBootsAnEarlierBuildWithItsConfigWithoutRebuilding() async throws {
        try await DaemonHarness.with { daemon, workPath in
            try await daemon.cli(["apps:create", "shop"])
            try await daemon.cli(["config:set", "shop", "GREETING=first"])
            try await commitFixture("node-hello", into: workPath, message: "v2")
            _ = try await daemon.push(workPath, app: "shop")
            let v2Commit = try await run("git", ["rev-parse", "--short=7", "HEAD"], in: workPath).output
            try await daemon.cli(["config:set", "shop", "GREETING=second", "--no-restart"])
            try await run("git", ["commit", "--quiet", "--allow-empty", "-m", "v3"], in: workPath)
            _ = try await daemon.push(workPath, app: "shop")
            let client = HTTPConnection(port: daemon.port)
            #expect(try client.get("/env/GREETING", host: "shop.localhost").body == "second")

            let rollback = try await daemon.cli(["rollback", "shop"])
            #expect(rollback.status.succeeded, "\(rollback.output)")
            #expect(rollback.output.contains("-----> Rolling shop back to v2 as v4"), "\(rollback.output)")
            #expect(rollback.output.contains("-----> shop v4 is live"))
            #expect(!rollback.output.contains("app detected"), "no build ran")
            #expect(try client.get("/", host: "shop.localhost").body.contains("release v4 commit \(v2Commit)"))
            #expect(try client.get("/env/GREETING", host: "shop.localhost").body == "first")
            #expect(try await daemon.cli(["config:get", "shop", "GREETING"]).output == "first")

            let info = try await daemon.cli(["releases:info", "shop", "v4"]).output
            #expect(info.contains("Description: Rollback to v2"))
            #expect(info.contains("Build:       v2's tree"))
            #expect(info.contains("Config:      GREETING\n"), "keys only, never values")
            #expect(!info.contains("\nbuild "), "a rollback records no build step")

            let refused = try await daemon.cli(["rollback", "shop", "v1"])
            #expect(refused.status == .exited(1))
            #expect(
                refused.output.contains(
                    "cannot roll shop back to v1: it never went live (initial); releases you can roll back to: v3, v2"
                )
            )
        }
    }

    @Test func onlyTheNewestTreesAreKeptAndRollbackToAPrunedOneSaysWhatCanBe() async throws {
        try await DaemonHarness.with(arguments: ["--keep-releases", "2"]) { daemon, workPath in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("healthcheck-app", into: workPath, message: "v2")
            for number in 2...4 {
                if number > 2 {
                    try await run("git", ["commit", "--quiet", "--allow-empty", "-m", "v\(number)"], in: workPath)
                }
                let push = try await daemon.push(workPath, app: "shop")
                #expect(push.output.contains("shop v\(number) is live"), "\(push.output)")
            }
            let releases = daemon.data + "/apps/shop/releases"
            try await waitUntil("v2's tree is removed after v4's drain") {
                !FileManager.default.fileExists(atPath: releases + "/2")
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: releases).sorted() == ["3", "4"])
            #expect(
                try await daemon.cli(["releases:info", "shop", "v4"]).output.contains("removed the built trees of v2")
            )
            let refused = try await daemon.cli(["rollback", "shop", "v2"])
            #expect(refused.status == .exited(1))
            #expect(
                refused.output.contains(
                    "cannot roll shop back to v2: its built tree has been deleted; releases you can roll back to: v3"
                ),
                "\(refused.output)"
            )
            #expect(try await daemon.cli(["releases", "shop"]).output.contains("v2     retired"), "history stays")

            // `releases -n` shows the newest, `--all` every one; `deploy APP REF` builds a commit already pushed.
            let newest = try await daemon.cli(["releases", "shop", "-n", "1"]).output
            #expect(newest.contains("v4") && !newest.contains("v3 "), "\(newest)")
            let every = try await daemon.cli(["releases", "shop", "-n", "1", "--all"]).output
            #expect(["v1", "v2", "v3", "v4"].allSatisfy { every.contains($0 + " ") }, "\(every)")
            let v3Commit = try await run("git", ["rev-parse", "HEAD~1"], in: workPath).output
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let deployed = try await daemon.cli(["deploy", "shop", v3Commit])
            #expect(deployed.status == .exited(0) && deployed.output.contains("shop v5 is live"), "\(deployed.output)")
            let v5 = try await daemon.cli(["releases:info", "shop", "v5"]).output
            #expect(v5.contains("Commit:      \(v3Commit)"), "\(v5)")
        }
    }

    @Test func scalingWebBootsAHealthyNewSetBeforeTheOldOneDrains() async throws {
        try await DaemonHarness.with { daemon, workPath in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: workPath, message: "v2")
            _ = try await daemon.push(workPath, app: "shop")

            let loop = RequestLoop(port: daemon.port, host: "shop.localhost", path: "/env/DYNO")
            let up = try await daemon.cli(["ps:scale", "shop", "web=3"])
            #expect(await loop.waitUntil { $0.keys.count >= 3 })
            let seen = await loop.stop()
            #expect(up.status.succeeded, "\(up.output)")
            #expect(up.output.contains("web.3 is healthy"))
            #expect(up.output.contains("-----> shop v2 runs 3 web instance(s)"))
            #expect(Set(seen.keys).isSubset(of: ["web.1", "web.2", "web.3"]), "no failed request: \(seen)")
            #expect(seen.keys.count == 3, "requests reach every instance: \(seen)")
            try await waitUntil("the old set is stopped") {
                try await daemon.cli(["ps", "shop", "--json"]).output.components(separatedBy: "\"pid\"").count == 4
            }

            // A deploy keeps the scale.
            try await run("git", ["commit", "--quiet", "--allow-empty", "-m", "v3"], in: workPath)
            let push = try await daemon.push(workPath, app: "shop")
            #expect(push.output.contains("Booting shop v3: web.1-3"), "\(push.output)")

            let before = try await daemon.cli(["ps", "shop", "--json"]).output
            let restart = try await daemon.cli(["ps:restart", "shop"])
            #expect(restart.output.contains("Restarting shop v3: 3 new web instance(s) replace the running ones"))
            try await waitUntil("the restarted set alone runs") {
                let after = try await daemon.cli(["ps", "shop", "--json"]).output
                return after.components(separatedBy: "\"pid\"").count == 4 && after != before
            }

            let down = try await daemon.cli(["ps:scale", "shop", "web=1"])
            #expect(down.status.succeeded)
            try await waitUntil("only one instance runs") {
                try await daemon.cli(["ps", "shop", "--json"]).output.components(separatedBy: "\"pid\"").count == 2
            }
            let invalid = try await daemon.cli(["ps:scale", "shop", "worker=2"])
            #expect(invalid.status == .exited(1))
            #expect(
                invalid.output.contains("shop v3 has no worker process type; its Procfile declares no worker types")
            )
        }
    }

    @Test func workersRunAsScaledAndTheOldOnesStopBeforeTheNewOnesStartUnlessToldToOverlap() async throws {
        try await DaemonHarness.with { daemon, workPath in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", "worker", into: workPath, message: "v2")
            let first = try await daemon.push(workPath, app: "shop")
            #expect(first.output.contains("worker: not started (scale 0; run `slipway ps:scale shop worker=1`"))

            let scaled = try await daemon.cli(["ps:scale", "shop", "worker=1"])
            #expect(scaled.status.succeeded, "\(scaled.output)")
            #expect(scaled.output.contains("-----> Starting worker.1 of v2 (node worker.js)"))
            try await run("git", ["commit", "--quiet", "--allow-empty", "-m", "v3"], in: workPath)
            let push = try await daemon.push(workPath, app: "shop")
            let stop = try #require(push.output.range(of: "-----> Stopping worker.1 of v2"), "\(push.output)")
            let start = try #require(push.output.range(of: "-----> Starting worker.1 of v3"))
            let verdict = try #require(push.output.range(of: "-----> shop v3 is live"))
            #expect(stop.lowerBound < start.lowerBound && start.lowerBound < verdict.lowerBound)

            // The worker's own log agrees: v2's worker had ended before v3's began.
            try await waitUntil("v3's worker writes") {
                try await daemon.cli(["logs", "shop", "--type", "worker"]).output.contains("worker v3 started")
            }
            let log = try await daemon.cli(["logs", "shop", "--type", "worker"]).output
            let ended = try #require(log.range(of: "worker v2 stopping"))
            let began = try #require(log.range(of: "worker v3 started"))
            #expect(ended.lowerBound < began.lowerBound, "\(log)")
            let ps = try await daemon.cli(["ps", "shop"]).output
            #expect(ps.contains("worker.1  v3  serving"), "\(ps)")

            // Told to overlap, the new worker starts first.
            #expect(try await daemon.cli(["ps:overlap", "shop", "on"]).status.succeeded)
            try await run("git", ["commit", "--quiet", "--allow-empty", "-m", "v4"], in: workPath)
            let overlapping = try await daemon.push(workPath, app: "shop").output
            let started = try #require(overlapping.range(of: "-----> Starting worker.1 of v4"), "\(overlapping)")
            let stopped = try #require(overlapping.range(of: "-----> Stopping worker.1 of v3"))
            #expect(started.lowerBound < stopped.lowerBound)
        }
    }

    @Test func aConfigChangeIsAReleaseOfTheLiveBuildSwitchedToWithoutAFailedRequest() async throws {
        try await DaemonHarness.with { daemon, workPath in
            try await daemon.cli(["apps:create", "shop"])
            let early = try await daemon.cli(["config:set", "shop", "GREETING=hello world", "MODE=test"])
            #expect(early.status.succeeded)
            #expect(early.output.contains("it has no live release, so this applies from its first deploy"))
            #expect(try await daemon.cli(["config", "shop"]).output.contains("GREETING: ********"))
            #expect(try await daemon.cli(["config:get", "shop", "GREETING"]).output == "hello world")
            let invalid = try await daemon.cli(["config:set", "shop", "1BAD=x"])
            #expect(invalid.status != .exited(0))
            try await commitFixture("node-hello", into: workPath, message: "with config")
            _ = try await daemon.push(workPath, app: "shop")
            let client = HTTPConnection(port: daemon.port)
            #expect(try client.get("/env/GREETING", host: "shop.localhost").body == "hello world")
            #expect(try client.get("/env/SLIPWAY_RELEASE", host: "shop.localhost").body == "v2")

            let loop = RequestLoop(port: daemon.port, host: "shop.localhost", path: "/env/GREETING")
            let change = try await daemon.cli(["config:set", "shop", "GREETING=changed"])
            #expect(await loop.waitUntil { $0["changed"] != nil }, "the loop meets the new release")
            let seen = await loop.stop()
            #expect(change.output.contains("-----> shop v3 is live"), "\(change.output)")
            #expect(!change.output.contains("app detected"), "no build ran")
            #expect(Set(seen.keys) == ["hello world", "changed"], "\(seen)")
            #expect(try await daemon.cli(["releases:info", "shop", "v3"]).output.contains("Description: Set GREETING"))

            let recorded = try await daemon.cli(["config:unset", "shop", "MODE", "--no-restart"])
            #expect(recorded.output.contains("not restarted: this applies from the next deploy"))
            #expect(try client.get("/env/MODE", host: "shop.localhost").body == "test")
            #expect(try await daemon.cli(["releases", "shop"]).output.contains("v4") == false)
        }
    }
}

/// Polls `condition` for up to `timeout`, and records an issue naming `what` if it never held.
func waitUntil(
    _ what: String,
    timeout: Duration = .seconds(30),
    _ condition: () async throws -> Bool
) async throws {
    if try await !eventually(timeout: timeout, condition) { Issue.record("timed out waiting until \(what)") }
}
