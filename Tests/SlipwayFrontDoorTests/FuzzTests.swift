// Fuzzing the SSH command line, which any key holder sends: it is split into words or refused with one line,
// never run through a shell, never a trap.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@testable import SlipwayFrontDoor

@Suite struct FrontDoorFuzzTests {
    @Test("command lines: split into words or refused with one line")
    func commandLines() {
        let seeds = [
            "git-receive-pack '/shop.git'", "releases shop -n 5 --json", #"config:set shop "A=b c" 'D=e\'f'"#,
            "keys:add bob --role deploy --app shop", "logs shop -f --type worker",
        ]
        for input in Fuzzing.inputs(from: seeds) {
            let line = String(decoding: input, as: UTF8.self)
            do {
                let words = try CommandLineWords.split(line)
                #expect(words.allSatisfy { !$0.contains("\n") })
                #expect(words.map(\.utf8.count).reduce(0, +) <= line.utf8.count)
            } catch {
                #expect(!error.userMessage.contains("\n"), "\(error)")
            }
        }
    }
}
