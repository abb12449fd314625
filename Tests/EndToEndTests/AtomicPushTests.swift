// Atomic pushes (`git:atomic on`, Heroku's and Dokku's behaviour): the deploy runs while git receives the push (its
// proc-receive hook); a failed deploy rejects the push with its reason, so `git push` exits non-zero and the branch
// never moves; a good one moves it only once the release is live.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct AtomicPushTests {
    @Test func aFailedDeployRejectsThePushAndAGoodOneMovesTheBranchOnceLive() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            let atomic = try await daemon.cli(["git:atomic", "shop", "on"]).output
            #expect(
                atomic.contains("shop has atomic pushes: a push to main deploys before it is accepted"),
                "\(atomic)"
            )
            let repository = daemon.data + "/repos/shop.git"
            func branch() async throws -> String {
                try await run("git", ["--git-dir", repository, "rev-parse", "-q", "--verify", "main"]).output
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            func head() async throws -> String {
                try await run("git", ["rev-parse", "HEAD"], in: work).output.trimmingCharacters(
                    in: .whitespacesAndNewlines
                )
            }

            try await commitFixture("node-hello", into: work, message: "v2")
            let good = try await daemon.push(work, app: "shop")
            #expect(good.status.succeeded, "\(good.output)")
            #expect(good.output.contains("Deploying before the push is accepted (git:atomic on)"), "\(good.output)")
            #expect(
                good.output.components(separatedBy: "-----> shop v2 is live").count == 2,
                "deployed once: \(good.output)"
            )
            let live = try await head()
            #expect(try await branch() == live)

            try await commitFixture("build-fails", into: work, message: "v3")
            let rejected = try await daemon.push(work, app: "shop")
            #expect(!rejected.status.succeeded, "git push exits non-zero: \(rejected.output)")
            #expect(rejected.output.contains("Deploy of shop v3 failed: the build failed"), "\(rejected.output)")
            #expect(rejected.output.contains("The push is rejected: main stays where it was"))
            #expect(
                rejected.output.contains(
                    "! [remote rejected] main -> main (deploy failed: the build failed: the Node.js buildpack's compile"
                ),
                "\(rejected.output)"
            )
            #expect(try await branch() == live, "the branch never moved")

            // Pushing the same commit again deploys it again: nothing was accepted.
            let again = try await daemon.push(work, app: "shop")
            #expect(again.output.contains("Deploy of shop v4 failed"), "\(again.output)")
            let page = try HTTPConnection(port: daemon.port).get("/", host: "shop.localhost")
            #expect(page.body.hasPrefix("hello from shop release v2"))

            // Another branch is stored as ever, without a deploy.
            let other = try await daemon.push(work, app: "shop", branch: "main:feature")
            #expect(other.status.succeeded && other.output.contains("Stored feature"), "\(other.output)")

            #expect(
                try await daemon.cli(["git:atomic", "shop", "off"]).output.contains("deploys after a push is accepted")
            )
            let after = try await daemon.push(work, app: "shop")
            #expect(after.status.succeeded, "accepted, then the deploy fails: \(after.output)")
            #expect(after.output.contains("main is back at \(live.prefix(7))"), "\(after.output)")
        }
    }
}
