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
}
