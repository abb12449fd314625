// Specifications for the transcript of a child's output: a build or release phase that prints without end costs
// the daemon a bounded amount of memory and store, and the release's log file keeps the rest.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite struct TranscriptTests {
    @Test("the build log keeps the first and last 512 KiB, says how much was left out, and where the whole is")
    func keepsBothEndsAndSaysWhatWasLeftOut() throws {
        let folder = try TemporaryDirectory("transcript")
        defer { folder.remove() }
        let transcript = Transcript(keptBytesEachEnd: Transcript.buildLogBytesEachEnd)
        transcript.append("before the file")
        transcript.record(to: folder.path + "/logs/7.log")
        let line = String(repeating: "x", count: 99)
        for index in 0..<40_000 { transcript.append("\(index) \(line)") }
        transcript.close()

        let text = transcript.text
        #expect(text.utf8.count <= 2 * Transcript.buildLogBytesEachEnd + 200)
        #expect(text.hasPrefix("before the file\n0 x"))
        #expect(text.hasSuffix("39999 " + line))
        let note = try #require(text.split(separator: "\n").first { $0.hasPrefix("[… ") })
        #expect(note.hasSuffix("left out here; the whole output is in \(folder.path)/logs/7.log]"))

        let file = try String(contentsOfFile: folder.path + "/logs/7.log", encoding: .utf8)
        #expect(file.split(separator: "\n").count == 40_001)
        #expect(file.hasPrefix("before the file\n0 x"))
        #expect(
            try FileManager.default.attributesOfItem(atPath: folder.path + "/logs/7.log")[.posixPermissions] as? Int
                == 0o600
        )
    }

    @Test func aShortOutputIsKeptWhole() {
        let transcript = Transcript()
        for index in 0..<3 { transcript.append("line \(index)") }
        #expect(transcript.text == "line 0\nline 1\nline 2")
    }
}
