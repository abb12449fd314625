// Limits against a real daemon: where the host's control groups cannot be written (an unprivileged daemon on
// cgroup v1, as here), limits:set says so in one line; a daemon started as root holds an instance to its memory
// limit for real: over it, the kernel kills it, ps says so, it is restarted, and another app never notices.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct LimitsTests {
    @Test func limitsThatCannotBeAppliedAreRefusedInOneLineAndBadOnesTooWhereverTheyRun() async throws {
        try await DaemonHarness.with { daemon, _ in
            try await daemon.cli(["apps:create", "shop"])
            let bad = try await daemon.cli(["limits:set", "shop", "memory=1m"])
            #expect(bad.status == .exited(64), "\(bad.output)")
            #expect(
                bad.output.trimmingCharacters(in: .newlines)
                    == "slipway: invalid limit \"memory=1m\": give a size from 4m to 1024g, such as 256m;"
                    + " see `help limits:set`"
            )
            let refused = try await daemon.cli(["limits:set", "shop", "web", "memory=256m"])
            #expect(refused.status == .exited(1), "\(refused.output)")
            #expect(refused.output.hasPrefix("slipway: cannot limit apps on this host: cgroup v"), "\(refused.output)")
            #expect(refused.output.split(separator: "\n").count == 1, "\(refused.output)")
            let shown = try await daemon.cli(["limits", "shop"]).output
            #expect(shown.contains("none: every instance may use what the host has"), "\(shown)")
            #expect(shown.contains("Not applied on this host: cgroup v"), "\(shown)")
        }
    }

    @Test(.enabled(if: geteuid() == 0, "only root can write this host's cgroup v1 hierarchies"))
    func anInstanceOverItsMemoryLimitIsKilledReportedAndRestartedWhileAnotherAppAnswers() async throws {
        // The daemon's own folder of groups is left when it stops, empty: the test removes it.
        defer {
            for hierarchy in ["memory", "cpu", "pids"] {
                let scopes = "/sys/fs/cgroup/\(hierarchy)/slipway"
                for scope in (try? FileManager.default.contentsOfDirectory(atPath: scopes)) ?? [] {
                    rmdir(scopes + "/" + scope)
                }
            }
        }
        try await DaemonHarness.with(asRoot: true) { daemon, work in
            for app in ["shop", "blog"] {
                try await daemon.cli(["apps:create", app])
                try await commitFixture("node-hello", into: work + "/" + app, message: "v2")
                #expect(try await daemon.push(work + "/" + app, app: app).status.succeeded)
            }
            let set = try await daemon.cli(["limits:set", "shop", "web", "memory=96m", "cpu=0.5", "pids=64"])
            #expect(set.output.contains("-----> shop v3 is live"), "\(set.output)")
            #expect(try await daemon.cli(["limits", "shop"]).output.contains("web: memory=96m cpu=0.5 pids=64"))
            #expect(
                try await daemon.cli(["releases:info", "shop", "v3"]).output.contains(
                    "Set limits of web: memory=96m cpu=0.5 pids=64"
                )
            )
            // What the kernel was told, in the instance's own groups.
            for (hierarchy, file, value) in [
                ("memory", "memory.limit_in_bytes", "\(96 << 20)"), ("cpu", "cpu.cfs_quota_us", "50000"),
                ("pids", "pids.max", "64"),
            ] {
                let scopes = "/sys/fs/cgroup/\(hierarchy)/slipway"
                let written = ((try? FileManager.default.contentsOfDirectory(atPath: scopes)) ?? []).compactMap {
                    try? String(contentsOfFile: "\(scopes)/\($0)/shop.web.1/\(file)", encoding: .utf8)
                }
                #expect(written.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } == [value], "\(file)")
            }

            let client = HTTPConnection(port: daemon.port)
            #expect(try client.get("/hog?mb=16", host: "shop.localhost").body.hasPrefix("holding 16 MiB"))
            _ = try? HTTPConnection(port: daemon.port).get("/hog?mb=400", host: "shop.localhost")
            try await waitUntil("ps tells of the kill") {
                try await daemon.cli(["ps", "shop"]).output.contains(
                    "restarted: web.1 after it was killed: out of memory (limit 96m)"
                )
            }
            #expect(try HTTPConnection(port: daemon.port).get("/", host: "blog.localhost").status == 200)
            #expect(
                try await daemon.cli(["releases:info", "shop", "v3"]).output.contains(
                    "last: it was killed: out of memory (limit 96m)"
                )
            )
            try await waitUntil("shop answers again") {
                (try? HTTPConnection(port: daemon.port).get("/", host: "shop.localhost").status) == 200
            }
            // The host users and groups the daemon made for the apps go with them.
            for app in ["shop", "blog"] {
                #expect(try await daemon.cli(["apps:destroy", app, "--confirm", app]).status.succeeded)
            }
        }
    }
}
