// Pushes a tenant with only a deploy key could make to hurt the host: numbers that overflow, files of a gigabyte
// or leading out of the app, output without end. Each is refused or bounded with one clear line, and the daemon
// and the live release keep serving.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct HostileInputTests {
    @Test func hostilePushedFilesAreRefusedWithOneLineAndTheLiveReleaseKeepsServing() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("static-site", into: work, message: "Good version")
            #expect(try await daemon.push(work, app: "shop").output.contains("-----> shop v2 is live"))

            let hostile: [(files: [String: String], link: (String, String)?, says: String)] = [
                (
                    // This one line took the daemon, and every app's proxy, down.
                    ["app.json": #"{"healthchecks":{"web":[{"path":"/","initialDelay":9223372036854775807}]}}"#],
                    nil,
                    #"app.json is invalid: healthchecks.web "check 1": "initialDelay" is 9223372036854775807; "#
                        + "it must be a whole number of seconds from 0 to 600"
                ),
                (
                    ["app.json": "{\"x\": \"" + String(repeating: "a", count: 2 << 20) + "\"}"],
                    nil,
                    "app.json is 2097161 bytes, more than the 1048576 allowed; make it smaller and push again"
                ),
                (
                    // `pub` leads to the data directory: its host key and database would be the site.
                    ["static.json": #"{"root": "pub/."}"#],
                    ("pub", "../../../.."),
                    #"the document root "pub/." leads outside the app through a symbolic link"#
                ),
            ]
            for (number, attack) in hostile.enumerated() {
                try await commitFixture("static-site", into: work, message: "Hostile \(number)")
                for (name, text) in attack.files {
                    try text.write(toFile: work + "/" + name, atomically: true, encoding: .utf8)
                }
                if let (name, target) = attack.link {
                    try FileManager.default.createSymbolicLink(atPath: work + "/" + name, withDestinationPath: target)
                }
                try await run("git", ["add", "--all"], in: work)
                try await run("git", ["commit", "--quiet", "-m", "Hostile \(number)"], in: work)
                let push = try await daemon.push(work, app: "shop")
                #expect(push.output.contains(attack.says), "\(push.output)")
                #expect(push.output.contains("shop v2 is still live"), "\(push.output)")
                #expect(daemon.process.exitStatus == nil, "the daemon died")
                let answer = try HTTPConnection(port: daemon.port).get("/", host: "shop.localhost")
                #expect(answer.status == 200 && answer.headers["slipway-release"] == "v2")
            }
            let served = try HTTPConnection(port: daemon.port).get("/slipway.sqlite", host: "shop.localhost")
            #expect(served.status == 404)
        }
    }

    @Test func aReleasePhasePrintingWithoutEndIsKeptToItsEndsAndTheRestGoesToTheReleaseLog() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("static-site", into: work, message: "Noisy")
            // 20 MB of lines, then one 3 MB line without an end of line, then a last word.
            let script = """
                i=0; while [ $i -lt 200000 ]; do echo "migration line $i of a noisy release phase padded out to one hundred bytes.........."; i=$((i+1)); done
                head -c 3000000 /dev/zero | tr '\\0' z; echo; echo "release phase done"
                """
            try script.write(toFile: work + "/noisy.sh", atomically: true, encoding: .utf8)
            try "web: serve-static --port $PORT public\nrelease: sh noisy.sh\n".write(
                toFile: work + "/Procfile",
                atomically: true,
                encoding: .utf8
            )
            try await run("git", ["add", "--all"], in: work)
            try await run("git", ["commit", "--quiet", "-m", "Noisy release phase"], in: work)
            let push = try await daemon.push(work, app: "shop")
            #expect(push.output.contains("-----> shop v2 is live"), "\(push.output.suffix(2000))")
            let info = try await daemon.cli(["releases:info", "shop", "v2"]).output
            #expect(info.utf8.count < 1_200_000)
            #expect(info.contains("migration line 0 of"))
            #expect(info.contains("release phase done"))
            #expect(info.contains("left out here; the whole output is in \(daemon.data)/apps/shop/release-logs/2.log]"))
            let log = try String(contentsOfFile: daemon.data + "/apps/shop/release-logs/2.log", encoding: .utf8)
            #expect(log.contains("migration line 199999 of"))
            #expect(log.contains(" more bytes of this line left out]"))
        }
    }
}
