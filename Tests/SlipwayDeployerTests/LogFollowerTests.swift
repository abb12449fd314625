// LogFollower shows a booting instance's lines as they come, and counts a batch that repeats the one before
// instead of showing it again.
import Foundation
import SlipwaySupervisor
import SlipwayTestSupport
import Synchronization
import Testing

@testable import SlipwayDeployer

struct LogFollowerTests {
    @Test func aRepeatedBatchIsCountedAndTheCountSaidWhenSomethingElseComes() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let path = folder.path + "/web.1.log"
        try "earlier boot\n".write(toFile: path, atomically: true, encoding: .utf8)
        let follower = LogFollower(path: path, label: "v5 web.1")
        let shown = Mutex<[String]>([])
        let output = DeployOutput { line in shown.withLock { $0.append(line) } }
        func write(_ lines: [String]) throws {
            let file = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            file.seekToEndOfFile()
            // v4's instance in the same slot writes to the same file meanwhile.
            let kept = lines.flatMap { line in
                [LogLine(now: "v5 web.1", text: line).kept, LogLine(now: "v4 web.1", text: "GET /").kept]
            }
            file.write(Data(kept.map { $0 + "\n" }.joined().utf8))
            try file.close()
        }
        let traceback = ["Traceback:", "  line 12", "Error: down"]
        for _ in 0..<4 {
            try write(traceback)
            follower.flush(into: output)
        }
        try write(["recovered"])
        follower.flush(into: output)
        try write(["recovered"])
        follower.finish(into: output)
        let lines = shown.withLock { $0 }.map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(
            lines == traceback.map { "v5 web.1| " + $0 } + [
                "v5 web.1| … the same 3 lines 3 more times", "v5 web.1| recovered",
                "v5 web.1| … the same line once more",
            ]
        )
    }
}
