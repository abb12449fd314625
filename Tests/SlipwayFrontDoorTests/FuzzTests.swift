// Fuzzing the SSH command line, which any key holder sends: it is split into words or refused with one line,
// never run through a shell, never a trap.
import ArgumentParser
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

    @Test("admin command words a key may send: parsed and validated, or a usage error, never a trap")
    func commandWords() {
        var vocabulary: [String] = []
        for command in AdminCommands.commands { vocabulary.append(command.configuration.commandName ?? "help") }
        vocabulary += [
            "shop", "-n", "--json", "--all", "-f", "--type", "web", "worker", "web=3", "web=9223372036854775807",
            "worker=-1", "A=b", "=", "--role", "admin", "deploy", "--app", "-1", "0", "99999999999999999999", "v2",
            "v9223372036854775808", "--confirm", "on", "off", "default", "3600", "3601", "/", "--help", "",
        ]
        var random = SplitMix64(seed: Fuzzing.seed)
        // ArgumentParser is slow to parse in a debug build: a fifth of the inputs keeps the run short.
        for _ in 0..<Fuzzing.iterations / 5 {
            let words = (0..<Int.random(in: 0...6, using: &random)).map { _ in vocabulary.randomElement(using: &random)!
            }
            _ = try? AdminCommands.parseAsRoot(words)
        }
    }
}
