// The shipped packs honour what an app asks of its runtime: the python pack the version in .python-version or
// runtime.txt (or one line saying which versions this server has) and Django's collectstatic, the nodejs pack
// engines.node (a warning when the server's node differs).
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct RuntimeVersionTests {
    @Test func aDjangoAppGetsThePythonItAsksForAndItsStaticFilesCollected() async throws {
        // The Debian python every host here has, which the app's sandbox sees too.
        let version = try await run("/usr/bin/python3", ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
            .output.trimmingCharacters(in: .whitespacesAndNewlines)
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            func commit(pythonVersion: String, _ message: String) async throws {
                try await commitFixture("django-app", into: work, message: message)
                try (pythonVersion + "\n").write(toFile: work + "/.python-version", atomically: true, encoding: .utf8)
                try await run("git", ["add", ".python-version"], in: work)
                try await run("git", ["commit", "--quiet", "--amend", "--no-edit"], in: work)
            }
            try await commit(pythonVersion: version, "v2")
            let push = try await daemon.push(work, app: "shop")
            for line in [
                "-----> Using Python \(version).", "(as .python-version asks)",
                "-----> Running python manage.py collectstatic --noinput", "static file",
                "Running the release phase: python manage.py migrate --noinput", "-----> shop v2 is live",
            ] {
                #expect(push.output.contains(line), "\(line):\n\(push.output)")
            }
            let tree = daemon.data + "/apps/shop/releases/2"
            #expect(FileManager.default.fileExists(atPath: tree + "/staticfiles/css/site.css"), "collected")
            #expect(FileManager.default.fileExists(atPath: daemon.data + "/apps/shop/storage/db.sqlite3"), "migrated")
            let page = try HTTPConnection(port: daemon.port).get("/", host: "shop.localhost")
            #expect(page.body == "hello from django on python \(version), v2\n", "\(page)")

            try await commit(pythonVersion: "3.99", "asks for a python this server lacks")
            let missing = try await daemon.push(work, app: "shop").output
            #expect(missing.contains(".python-version asks for Python 3.99; this server has "), "\(missing)")
            #expect(missing.contains(version + "."), "names the versions found: \(missing)")
            #expect(missing.contains("Deploy of shop v3 failed"))

            #expect(
                try await daemon.cli(["config:set", "shop", "DISABLE_COLLECTSTATIC=1", "--no-restart"]).status.succeeded
            )
            try await commit(pythonVersion: version, "v4")
            let skipped = try await daemon.push(work, app: "shop").output
            #expect(skipped.contains("Skipping Django's collectstatic (DISABLE_COLLECTSTATIC=1)"), "\(skipped)")
            #expect(skipped.contains("-----> shop v4 is live"), "\(skipped)")
            #expect(!FileManager.default.fileExists(atPath: daemon.data + "/apps/shop/releases/4/staticfiles"))
        }
    }

    @Test func runtimeTxtIsReadWhenThereIsNoPythonVersionFile() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("python-hello", into: work, message: "v2")
            try "python-3.99.1\n".write(toFile: work + "/runtime.txt", atomically: true, encoding: .utf8)
            try await run("git", ["add", "runtime.txt"], in: work)
            try await run("git", ["commit", "--quiet", "-m", "runtime.txt"], in: work)
            let push = try await daemon.push(work, app: "shop").output
            #expect(push.contains("runtime.txt asks for Python 3.99.1; this server has "), "\(push)")
        }
    }

    @Test func aNodeOtherThanEnginesNodeIsWarnedAboutInOneLine() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: work, message: "v2")
            let package = work + "/package.json"
            let text = try String(contentsOfFile: package, encoding: .utf8)
            try text.replacingOccurrences(
                of: "\"private\": true,",
                with: "\"private\": true,\n  \"engines\": { \"node\": \"99.x\" },"
            )
            .write(toFile: package, atomically: true, encoding: .utf8)
            try await run("git", ["commit", "--quiet", "-am", "engines"], in: work)
            let push = try await daemon.push(work, app: "shop").output
            let warnings = push.split(separator: "\n").filter {
                $0.contains("Warning: package.json asks for node \"99.x\"")
            }
            #expect(warnings.count == 1, "\(push)")
            #expect(warnings.first?.contains("this server has v") == true)
            #expect(push.contains("-----> shop v2 is live"), "a warning, not a failure")
        }
    }
}
