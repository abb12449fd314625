// Specifications for a command's output on its way to a client: a client that reads slowly does not make the
// daemon hold all that a command prints.
import Foundation
import Synchronization
import Testing

@testable import SlipwayFrontDoor

@Suite struct CommandOutputTests {
    @Test("lines beyond 4 MiB waiting for a slow client are left out but the newest, and the client is told how many")
    func aSlowClientGetsANoteInsteadOfEverything() async throws {
        let received = Received()
        let (opened, open) = AsyncStream.makeStream(of: Void.self)
        let session = SessionOutput { bytes, _ in
            // The client reads nothing until every line has been printed.
            for await _ in opened { break }
            received.bytes.withLock { $0 += bytes }
        }
        let output = CommandOutput(session)
        let line = String(repeating: "y", count: 1000)
        for _ in 0..<10_000 { output.print(line) }
        output.print("the verdict")
        open.yield()
        open.finish()
        await output.close()
        let text = String(decoding: received.bytes.withLock { $0 }, as: UTF8.self)
        #expect(text.utf8.count < CommandOutput.maximumQueuedBytes + CommandOutput.maximumHeldBytes + 4096)
        #expect(text.contains("lines left out here: they came faster than this connection took them]\n"))
        #expect(text.hasPrefix(line + "\n"))
        // The last lines, where a deploy says whether it went live, always arrive.
        #expect(text.hasSuffix(line + "\nthe verdict\n"))
    }

    final class Received: Sendable {
        let bytes = Mutex<[UInt8]>([])
    }
}
