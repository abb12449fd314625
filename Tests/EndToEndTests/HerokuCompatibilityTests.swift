// Apps written for Heroku or Dokku, unmodified: HOME is the release tree, files kept in SLIPWAY_STORAGE outlive
// deploys and rollbacks.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct HerokuCompatibilityTests {
    /// What the keeps-files fixture answers.
    struct KeepsFiles: Decodable {
        var release: String
        var home: String
        var cwd: String
        var toolsFound: Bool
        var storage: String
        var migrations: [String]
        var visits: Int
    }

    static func keepsFiles(_ port: Int) throws -> KeepsFiles {
        let answer = try HTTPConnection(port: port).get("/visit", host: "shop.localhost")
        return try JSONDecoder().decode(KeepsFiles.self, from: Data(answer.body.utf8))
    }

    @Test func homeIsTheReleaseTreeAndStorageOutlivesDeploysAndRollbacks() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("keeps-files", into: work, message: "v2")
            let first = try await daemon.push(work, app: "shop")
            #expect(first.output.contains("migrated for v2"), "\(first.output)")
            let storage = daemon.data + "/apps/shop/storage"
            let v2 = try Self.keepsFiles(daemon.port)
            #expect(v2.home == daemon.data + "/apps/shop/releases/2", "HOME is the release tree: \(v2)")
            #expect(v2.cwd == v2.home)
            #expect(v2.toolsFound, ".profile.d found the tree's tools through $HOME")
            #expect(v2.storage == storage)
            #expect(v2.migrations == ["v2 HOME=\(v2.home)"], "the release phase has the same HOME and storage")
            #expect(v2.visits == 1)

            try await commitFixture("keeps-files", into: work, message: "v3")
            #expect(try await daemon.push(work, app: "shop").output.contains("shop v3 is live"))
            let v3 = try Self.keepsFiles(daemon.port)
            #expect(v3.release == "v3" && v3.visits == 2, "the new release counts on: \(v3)")
            #expect(v3.migrations.count == 2)

            #expect(try await daemon.cli(["rollback", "shop", "v2"]).status.succeeded)
            let v4 = try Self.keepsFiles(daemon.port)
            #expect(v4.release == "v4" && v4.visits == 3, "a rollback keeps what was stored since: \(v4)")

            #expect(try await daemon.cli(["ps:restart", "shop"]).status.succeeded)
            #expect(try Self.keepsFiles(daemon.port).visits == 4, "a restart too")

            // The link to / the release phase left is counted as a link, not followed.
            let shown = try await daemon.cli(["storage", "shop"]).output
            #expect(shown.contains("Path:  \(storage)"), "\(shown)")
            #expect(shown.contains("in 2 files"), "migrations.log and visits: \(shown)")
            let json = try await daemon.cli(["storage", "shop", "--json"]).output
            let usage = try JSONDecoder().decode(DiskUsage.self, from: Data(json.utf8))
            #expect(usage.files == 2 && usage.bytes > 0 && usage.bytes < 1000, "\(json)")
            #expect(try await daemon.cli(["storage", "nosuchapp"]).status.succeeded == false)
        }
    }
}

extension HerokuCompatibilityTests {
    @Test func appJSONEnvSetsDefaultsAndSecretsOnTheFirstDeployAndNeverChangesThemAfter() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", "app-json-env", into: work, message: "v2")
            let first = try await daemon.push(work, app: "shop")
            #expect(
                first.output.contains(
                    "app.json requires DATABASE_URL (Where the orders are kept), not set yet; set it with config:set"
                ),
                "\(first.output)"
            )
            #expect(try await daemon.cli(["config", "shop"]).output.contains("SECRET_KEY_BASE") == false)

            #expect(
                try await daemon.cli(["config:set", "shop", "DATABASE_URL=sqlite://orders", "--no-restart"]).status
                    .succeeded
            )
            let second = try await daemon.push(work, app: "shop")
            #expect(
                second.output.contains(
                    "Setting config from app.json: GREETING (default), SECRET_KEY_BASE (generated secret), "
                        + "WEB_CONCURRENCY (default)"
                ),
                "\(second.output)"
            )
            #expect(second.output.contains("shop v3 is live"), "\(second.output)")
            func env(_ name: String) throws -> HTTPAnswer {
                try HTTPConnection(port: daemon.port).get("/env/" + name, host: "shop.localhost")
            }
            let secret = try env("SECRET_KEY_BASE").body
            #expect(secret.count == 64 && secret.allSatisfy(\.isHexDigit), "\(secret)")
            #expect(!second.output.contains(secret), "a generated secret is never printed")
            #expect(try env("GREETING").body == "hi")
            #expect(try env("DATABASE_URL").body == "sqlite://orders")
            #expect(try env("SENTRY_DSN").status == 404)

            // Set values are never changed, and what an admin unsets stays unset.
            #expect(try await daemon.cli(["config:set", "shop", "GREETING=hello"]).status.succeeded)
            #expect(try await daemon.cli(["config:unset", "shop", "WEB_CONCURRENCY"]).status.succeeded)
            try await commitFixture("node-hello", "app-json-env", into: work, message: "v6")
            #expect(try await daemon.push(work, app: "shop").output.contains("shop v6 is live"))
            #expect(try env("SECRET_KEY_BASE").body == secret)
            #expect(try env("GREETING").body == "hello")
            #expect(try env("WEB_CONCURRENCY").status == 404)
        }
    }
}

extension HerokuCompatibilityTests {
    @Test func everyBuildpackOfDotBuildpacksRunsInOrderWithWhatTheOnesBeforeExported() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: work, message: "v1")
            let packs = packageRoot + "/Tests/Fixtures/buildpacks"
            try "# the tool first, as with heroku-buildpack-apt\n\(packs)/tools\n\n\(packs)/greeter\n".write(
                toFile: work + "/.buildpacks",
                atomically: true,
                encoding: .utf8
            )
            try await run("git", ["add", ".buildpacks"], in: work)
            try await run("git", ["commit", "--quiet", "-m", "two buildpacks"], in: work)
            let push = try await daemon.push(work, app: "shop")
            let tree = daemon.data + "/apps/shop/releases/2"
            for line in [
                "-----> Buildpack 1 of 2: Tools", "Installing greet into .tools (HOME is \(tree))",
                "-----> Buildpack 2 of 2: Greeter", "greet says: hello from greet", "TOOLS_VERSION is 1.2",
                "Default types for buildpack -> web", "-----> shop v2 is live",
            ] {
                #expect(push.output.contains(line), "\(line):\n\(push.output)")
            }
            let path = try HTTPConnection(port: daemon.port).get("/env/PATH", host: "shop.localhost").body
            #expect(path.hasPrefix(tree + "/.tools/bin:"), "the tools pack's .profile.d found $HOME: \(path)")
            let info = try await daemon.cli(["releases:info", "shop", "v2"]).output
            #expect(info.contains("Buildpack:   Tools, Greeter"), "\(info)")
        }
    }
}
