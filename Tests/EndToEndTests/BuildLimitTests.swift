// Limits on builds against a real daemon: one build slot makes a second app's push wait with a message,
// and a build that never finishes is stopped at the build timeout, leaving the live release serving and
// neither processes nor a half-built tree behind.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct BuildLimitTests {
    @Test func aBuildWaitsForASlotAndANeverEndingBuildHitsTheTimeout() async throws {
        try await DaemonHarness.with(arguments: ["--max-builds", "1", "--build-timeout", "6"]) { daemon, scratch in
            for app in ["shop", "blog"] { try await daemon.cli(["apps:create", app]) }
            let (work, blogWork) = (scratch + "/shop", scratch + "/blog")
            // Static sites build in a moment: on a loaded machine only the build that never ends meets the timeout.
            try await commitFixture("static-site", into: work, message: "v2")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)
            try await commitFixture("static-site", into: blogWork, message: "v2")

            try await commitFixture("node-hello", "hold-step", into: work, message: "v3, a build that never ends")
            try "build".write(toFile: work + "/HOLD", atomically: true, encoding: .utf8)
            try await run("git", ["add", "HOLD"], in: work)
            try await run("git", ["commit", "--quiet", "-m", "hold the build"], in: work)
            let stuck = Task { try await daemon.push(work, app: "shop") }
            try await waitUntil("shop's build holds the only slot") {
                daemon.isHolding("build")
            }
            let blog = try await daemon.push(blogWork, app: "blog")
            #expect(blog.output.contains("Waiting for a build slot: this server runs at most 1 build(s) at once"))

            let shop = try await stuck.value
            #expect(
                shop.output.contains("the build ran longer than 6s and was stopped; make it faster, or raise the"),
                "\(shop.output)"
            )
            #expect(shop.output.contains("shop v2 is still live"), "\(shop.output)")
            let answer = try HTTPConnection(port: daemon.port).get("/", host: "shop.localhost")
            #expect(answer.status == 200 && answer.headers["slipway-release"] == "v2")
            #expect(!FileManager.default.fileExists(atPath: daemon.data + "/apps/shop/releases/3"))
            #expect(!daemon.appProcesses().contains { $0.environment["SLIPWAY_RELEASE"] == "v3" })
            // The blog's build got the slot once shop's was stopped.
            #expect(blog.output.contains("blog v2 is live"), "\(blog.output)")
        }
    }
}

@Suite struct DiskFullTests {
    @Test(.enabled(if: geteuid() == 0, "mounting a small tmpfs for the data directory needs root"))
    func aBuildThatFillsTheDiskFailsCleanlyAndFreesItsSpace() async throws {
        try await DaemonHarness.with(dataLimit: "96m") { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: work, message: "v2")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)

            try await commitFixture("node-hello", "fill-disk", into: work, message: "v3 writes until the disk is full")
            let full = try await daemon.push(work, app: "shop")
            #expect(full.output.contains("No space left on device"), "\(full.output)")
            #expect(full.output.contains("Deploy of shop v3 failed: "), "\(full.output)")
            #expect(full.output.contains("shop v2 is still live"), "\(full.output)")
            #expect(try HTTPConnection(port: daemon.port).get("/", host: "shop.localhost").body.contains("release v2"))
            #expect(!FileManager.default.fileExists(atPath: daemon.data + "/apps/shop/releases/3"), "its tree is gone")
            let releases = try await daemon.cli(["releases", "shop"]).output
            #expect(releases.contains("v3     failed"), "the failure is recorded: \(releases)")

            // The space came back: the next deploy goes live.
            try await commitFixture("node-hello", into: work, message: "v4")
            #expect(try await daemon.push(work, app: "shop").output.contains("shop v4 is live"))
        }
    }
}
