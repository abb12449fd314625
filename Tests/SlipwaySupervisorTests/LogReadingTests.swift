// `logs` reads the tail of a log file bigger than it reads at once: what it shows starts at a whole line, each with
// its time, never the end of a line cut in two (which `logs` showed unstamped, out of time order).
import Foundation
import SlipwayTestSupport
import Testing

@testable import SlipwaySupervisor

struct LogReadingTests {
    @Test func theTailOfABigFileAndASkipAheadStartAtAWholeLine() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let path = folder.path + "/web.1.log"
        // 4.5 MiB of stamped lines (a reader 4 MiB behind skips ahead), none ending where a 1 MiB read from the end
        // begins.
        let line = LogLine(
            time: "2026-12-05T07:42:07Z",
            label: "v3 web.1",
            text: "GET / 200 " + String(repeating: "x", count: 90)
        )
        let count = (9 * LogReading.limit / 2) / (line.kept.utf8.count + 1) + 1
        try String(repeating: line.kept + "\n", count: count).write(toFile: path, atomically: true, encoding: .utf8)
        let size = try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect((size - LogReading.limit) % (line.kept.utf8.count + 1) != 0, "the read starts inside a line")

        let tail = LogReading.tail(of: path, lines: 100_000)
        #expect(!tail.lines.isEmpty && tail.lines.allSatisfy { LogLine(kept: $0) == line }, "\(tail.lines.first ?? "")")
        #expect(tail.end == UInt64(size))

        let followed = LogReading.lines(of: path, from: 10)
        #expect(followed.lines.first?.contains("bytes skipped") == true)
        #expect(
            followed.lines.dropFirst().allSatisfy { LogLine(kept: $0) == line },
            "\(followed.lines.dropFirst().first ?? "")"
        )
        // A read from a line's start keeps that line; one from inside it starts at the next.
        let small = folder.path + "/worker.1.log"
        try "a\nbb\nccc\n".write(toFile: small, atomically: true, encoding: .utf8)
        #expect(LogReading.lines(of: small, from: 2).lines == ["bb", "ccc"])
        #expect(LogReading.lines(of: small, from: 3).lines == ["ccc"])
        #expect(LogReading.lines(of: small, from: 0).lines == ["a", "bb", "ccc"])
    }

    /// `logs -f` across rotations: the lines before each one come from the rotated copy, and the emptied file is
    /// read from its start even when it has grown past where the follower was.
    @Test func aFollowerMissesNoLineAcrossRotations() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let path = folder.path + "/web.1.log"
        var written = 0
        func write(_ count: Int) throws {
            let file = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            file.seekToEndOfFile()
            file.write(Data((written..<written + count).map { "tick \($0)\n" }.joined().utf8))
            try file.close()
            written += count
        }
        try "".write(toFile: path, atomically: true, encoding: .utf8)
        for keep in [3, 1] {
            let limit = LogLimit(maxBytes: 100, keep: keep)
            try write(5)
            var follower = FollowedLog(path: path, from: LogReading.tail(of: path, lines: 1).end)
            var seen: [String] = []
            let first = written
            for round in 0..<6 {
                try write(20)
                seen += follower.read()
                try write(7)
                #expect(try limit.rotate(path))
                // After the rotation the app writes more than there was before it: sizes alone would not tell.
                try write(round.isMultiple(of: 2) ? 40 : 3)
                seen += follower.read()
            }
            #expect(seen == (first..<written).map { "tick \($0)" }, "keeping \(keep)")
        }
    }
}
