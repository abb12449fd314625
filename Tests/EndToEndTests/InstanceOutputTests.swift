// An instance's output is its own: labelled with its release everywhere, the booting release's only while it boots
// (not the access log of the release still serving in the same slot), and `logs` shows every process type with
// the time and release of each line, release phases included.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct InstanceOutputTests {
    @Test func outputIsLabelledWithItsReleaseAndLogsMergesEveryTypeInTimeOrder() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            #expect(try await daemon.cli(["config:set", "shop", "ACCESS_LOG=1", "--no-restart"]).status.succeeded)
            try await commitFixture("node-hello", "worker", "release-phase", into: work, message: "v2")
            try "web: npm start\nworker: node worker.js\nrelease: sh migrate.sh\n".write(
                toFile: work + "/Procfile",
                atomically: true,
                encoding: .utf8
            )
            try await run("git", ["commit", "--quiet", "-am", "v2 with a worker and a release phase"], in: work)
            #expect(try await daemon.push(work, app: "shop").output.contains("shop v2 is live"))
            #expect(try await daemon.cli(["ps:scale", "shop", "worker=1"]).status.succeeded)

            // v2 serves a steady stream of requests, each logged, while v3 boots in the same slot's file.
            let loop = RequestLoop(port: daemon.port, host: "shop.localhost", path: "/")
            #expect(await loop.waitUntil { $0.values.reduce(0, +) >= 20 })
            try await run("git", ["commit", "--quiet", "--allow-empty", "-m", "v3"], in: work)
            let push = try await daemon.push(work, app: "shop").output
            #expect(push.contains("v3 web.1| listening on 127.0.0.1:"), "\(push)")
            #expect(!push.contains("v2 web.1|"), "v2's access log is not v3's boot: \(push)")
            #expect(push.contains("migrating the database for v3"))

            // A boot that fails quotes its own last words, not v3's access log beside it.
            try await commitFixture("crash-on-boot", into: work, message: "v4")
            let failed = try await daemon.push(work, app: "shop").output
            let quoted = try #require(failed.components(separatedBy: "last output of web.1:").last, "\(failed)")
            #expect(quoted.contains("Error: DATABASE_URL is not set"), "\(failed)")
            #expect(!quoted.contains("GET /"), "\(quoted)")
            _ = await loop.stop()

            let stamp = #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ v\d+ [a-z]+(\.\d+)?\| "#
            let web = try await daemon.cli(["logs", "shop", "--type", "web", "-n", "20"]).output
            let webLines = web.split(separator: "\n")
            #expect(webLines.count == 20 && webLines.allSatisfy { $0.contains(/^\d{4}-/) }, "\(web)")
            #expect(webLines.allSatisfy { $0.contains(" web.1| ") })
            #expect(web.range(of: stamp, options: .regularExpression) != nil)

            let some = try await daemon.cli(["logs", "shop", "--type", "release,worker", "-n", "500"]).output
            #expect(some.contains(" v3 release| migrating the database for v3"), "\(some)")
            #expect(some.contains(" v3 worker.1| worker v3 started"), "\(some)")
            #expect(!some.contains(" web.1| "))
            let repeated = try await daemon.cli(["logs", "shop", "--type", "release", "--type", "worker"]).output
            #expect(repeated.contains(" v3 release| "), "--type may be repeated too")

            let all = try await daemon.cli(["logs", "shop", "-n", "100000"]).output
            let lines = all.split(separator: "\n").map(String.init)
            let times = lines.map { String($0.prefix(20)) }
            #expect(times == times.sorted(), "in time order")
            let migrated = try #require(lines.firstIndex { $0.hasSuffix("v3 release| migrating the database for v3") })
            let listening = try #require(lines.firstIndex { $0.contains("v3 web.1| listening on") })
            #expect(migrated < listening, "the release phase ran before v3 booted")
            #expect(try await daemon.cli(["logs", "shop", "--type", "nope"]).output.contains("shop has no nope logs"))
        }
    }
}
