// Specifications for reading the limits an admin types (`limits:set shop web memory=256m cpu=1.5 pids=512`):
// each in range or refused in one line that says what to give, written back as typed, merged key by key.
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite("Process limits")
struct ProcessLimitsTests {
    @Test("limits are read, range-checked and written back the way they were typed")
    func parsedAndWrittenBack() throws {
        let limits = try ProcessLimits(parsing: ["memory=256m", "cpu=1.5", "pids=512"])
        #expect(limits == ProcessLimits(memory: 256 << 20, cpu: 1.5, pids: 512))
        #expect(limits.description == "memory=256m cpu=1.5 pids=512")
        #expect(try ProcessLimits(parsing: ["cpu=2", "memory=1g"]).description == "memory=1g cpu=2")
        #expect(try ProcessLimits(parsing: limits.description.split(separator: " ").map(String.init)) == limits)
    }

    @Test("a type's own limits win key by key over the app's")
    func overriddenKeyByKey() {
        let app = ProcessLimits(memory: 512 << 20, pids: 100)
        #expect(app.overridden(by: ProcessLimits(memory: 128 << 20)) == ProcessLimits(memory: 128 << 20, pids: 100))
    }

    @Test("what cannot be a limit is refused in one line that says what to give")
    func refused() {
        let cases: [([String], String)] = [
            (["memory=1m"], #"invalid limit "memory=1m": give a size from 4m to 1024g, such as 256m"#),
            (["memory=lots"], #"invalid limit "memory=lots": give a size from 4m to 1024g, such as 256m"#),
            (
                ["memory=9999999999999999g"],
                #"invalid limit "memory=9999999999999999g": give a size from 4m to 1024g, such as 256m"#
            ),
            (["cpu=0"], #"invalid limit "cpu=0": give a number of CPUs from 0.01 to 1024, such as 1.5"#),
            (["cpu=nan"], #"invalid limit "cpu=nan": give a number of CPUs from 0.01 to 1024, such as 1.5"#),
            (["cpu=inf"], #"invalid limit "cpu=inf": give a number of CPUs from 0.01 to 1024, such as 1.5"#),
            (["pids=1"], #"invalid limit "pids=1": give a number of processes from 8 to 4194304, such as 512"#),
            (["swap=1g"], #"unknown limit "swap": the limits are memory, cpu and pids"#),
            (["memory"], #"invalid limit "memory": write KEY=VALUE, such as memory=256m cpu=1.5 pids=512"#),
        ]
        for (words, line) in cases {
            #expect(throws: LimitsError.self) { try ProcessLimits(parsing: words) }
            do {
                _ = try ProcessLimits(parsing: words)
            } catch {
                #expect(error.description == line)
                #expect(!error.description.contains("\n"))
            }
        }
    }

    @Test("mutated limits are either refused or read back in range, never trusted as typed")
    func fuzzed() {
        for input in Fuzzing.inputs(from: ["memory=256m", "cpu=1.5", "pids=512", "memory=1g cpu=0.25"]) {
            let words = String(decoding: input, as: UTF8.self).split(separator: " ").map(String.init)
            guard let limits = try? ProcessLimits(parsing: words) else { continue }
            #expect(limits.memory.map { (4 << 20)...(1 << 40) ~= $0 } ?? true, "\(words)")
            #expect(limits.cpu.map { $0.isFinite && 0.01...1024 ~= $0 } ?? true, "\(words)")
            #expect(limits.pids.map { 8...4_194_304 ~= $0 } ?? true, "\(words)")
        }
    }
}
