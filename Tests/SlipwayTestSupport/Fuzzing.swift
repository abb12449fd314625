// Fuzzing: inputs for the parsers of what tenants and strangers send (app.json, Procfile, .buildpacks, command
// lines, HTTP), made by mutating well-formed seeds with a seeded generator, so a failure can be replayed. A test
// runs `Fuzzing.iterations` of them (a short run in CI); `scripts/fuzz` runs many more.
import Foundation
import SlipwayBasics

public enum Fuzzing {
    /// SLIPWAY_FUZZ_ITERATIONS, else a run short enough for every test run.
    public static var iterations: Int {
        ProcessInfo.processInfo.environment["SLIPWAY_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 3000
    }

    /// SLIPWAY_FUZZ_SEED, else a fixed one: the same inputs every run unless asked otherwise.
    public static var seed: UInt64 {
        ProcessInfo.processInfo.environment["SLIPWAY_FUZZ_SEED"].flatMap(UInt64.init) ?? 0x5EED_F00D
    }

    /// Values that have broken parsers before: numbers at and past every integer and floating limit, signs,
    /// exponents, quotes and brackets left open, line ends of every kind, control bytes, long runs.
    public static let interesting: [String] = [
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "18446744073709551616", "-1", "0",
        "1e308", "1e309", "-0", "0.5", "NaN", "true", "null", "\"", "'", "\\", "{", "}", "[", "]", ":", ",", "#",
        "\r\n", "\n", "\r", "\0", "\u{7f}", "\u{1b}", "é", "\u{feff}", "$(x)", "`x`", ";", "|", "..", "/",
        String(repeating: "9", count: 400), String(repeating: "[", count: 2000), String(repeating: "a", count: 70_000),
    ]

    /// `iterations` mutations of `seeds`: each keeps, drops, repeats, splices or overwrites pieces of a seed.
    public static func inputs(from seeds: [String], extra: [String] = []) -> [[UInt8]] {
        var random = SplitMix64(seed: seed)
        let tokens = interesting + extra
        return (0..<iterations).map { _ in
            var bytes = Array(seeds.randomElement(using: &random)!.utf8)
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let at = bytes.isEmpty ? 0 : Int.random(in: 0...bytes.count, using: &random)
                switch Int.random(in: 0..<5, using: &random) {
                case 0: bytes.insert(contentsOf: tokens.randomElement(using: &random)!.utf8, at: at)
                case 1:
                    if at < bytes.count {
                        bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...8, using: &random)))
                    }
                case 2: if at < bytes.count { bytes[at] = UInt8.random(in: 0...255, using: &random) }
                case 3: bytes.insert(contentsOf: Array(seeds.randomElement(using: &random)!.utf8), at: at)
                default: bytes = Array(bytes[..<at]) + Array(bytes[at...]).reversed()
                }
            }
            return bytes
        }
    }
}
