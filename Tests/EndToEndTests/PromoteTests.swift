// promote: the build live on one app, deployed to another with that app's config; recorded on
// both sides. Also per-app retention.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct PromoteTests {
    @Test func promoteServesTheSameBuildWithTheTargetsConfig() async throws {
        try await DaemonHarness.with { daemon, work in
            for app in ["staging", "production"] { try await daemon.cli(["apps:create", app]) }
            try await daemon.cli(["config:set", "staging", "GREETING=staging"])
            try await daemon.cli(["config:set", "production", "GREETING=production"])
            try await commitFixture("node-hello", into: work, message: "Candidate")
            #expect(try await daemon.push(work, app: "staging").status.succeeded)
            let client = HTTPConnection(port: daemon.port)
            let staged = try client.get("/", host: "staging.localhost").body
            let commit = try #require(staged.split(separator: " ").last).trimmingCharacters(in: .whitespacesAndNewlines)

            let promoted = try await daemon.cli(["promote", "staging", "production"])
            #expect(promoted.status.succeeded, "\(promoted.output)")
            #expect(
                promoted.output.contains("Promoting staging v2 to production v2: the same build, production's config")
            )
            #expect(!promoted.output.contains("Node.js app detected"), "no build runs: \(promoted.output)")
            #expect(promoted.output.contains("production v2 is live"))

            let served = try client.get("/", host: "production.localhost").body
            #expect(served.hasPrefix("hello from production release v2 commit \(commit)"), "\(served)")
            #expect(try client.get("/env/GREETING", host: "production.localhost").body == "production")
            #expect(try client.get("/env/GREETING", host: "staging.localhost").body == "staging")
            #expect(
                try await daemon.cli(["releases:info", "staging", "v2"]).output.contains("Promoted to: production v2")
            )
            #expect(
                try await daemon.cli(["releases:info", "production", "v2"]).output.contains("Promoted from: staging v2")
            )

            let itself = try await daemon.cli(["promote", "staging", "staging"])
            #expect(itself.status == .exited(1) && itself.output.contains("cannot promote staging to itself"))
            try await daemon.cli(["apps:create", "empty"])
            let nothing = try await daemon.cli(["promote", "empty", "production"])
            #expect(nothing.status == .exited(1) && nothing.output.contains("empty has no live release"))
            #expect(try client.get("/", host: "production.localhost").status == 200)
        }
    }

    @Test func anAppKeepsAsManyBuiltTreesAsItIsTold() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            #expect(try await daemon.cli(["releases:keep", "shop", "2"]).status.succeeded)
            #expect(try await daemon.cli(["releases:keep", "shop", "0"]).status != .exited(0))
            for round in 1...3 {
                try await commitFixture("static-site", into: work, message: "Round \(round)")
                try "\(round)\n".write(toFile: work + "/ROUND", atomically: true, encoding: .utf8)
                try await run("git", ["add", "ROUND"], in: work)
                try await run("git", ["commit", "--quiet", "-m", "Round \(round)"], in: work)
                #expect(try await daemon.push(work, app: "shop").status.succeeded)
            }
            try await waitUntil("only two trees are left") {
                let trees = try FileManager.default.contentsOfDirectory(atPath: daemon.data + "/apps/shop/releases")
                return Set(trees) == ["3", "4"]
            }
            let refused = try await daemon.cli(["rollback", "shop", "v2"])
            #expect(refused.output.contains("its built tree has been deleted; releases you can roll back to: v3"))
        }
    }
}
