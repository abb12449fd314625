// The settings of `slipway serve` are written once: the README's table of defaults says what the code does.
import Foundation
import SlipwayDaemon
import SlipwayTestSupport
import Testing

@Suite struct SettingsTests {
    @Test func theREADMETableOfDefaultsIsTheSettingsTable() throws {
        let readme = try String(contentsOfFile: packageRoot + "/README.md", encoding: .utf8)
        let lines = readme.components(separatedBy: "\n")
        let header = try #require(lines.firstIndex(of: "| setting | default | flag | variable |"))
        let rows = Array(lines[(header + 2)...].prefix { $0.hasPrefix("|") })
        let expected = Settings.all.map(\.readmeRow)
        #expect(rows == expected, "the README's rows should be:\n\(expected.joined(separator: "\n"))")
    }

    @Test func everySettingHasItsOwnFlagAndVariable() {
        #expect(Set(Settings.all.map(\.flag)).count == Settings.all.count)
        #expect(Settings.all.allSatisfy { $0.variable.hasPrefix("SLIPWAY_") && !$0.variable.contains("-") })
        #expect(Settings.drainTimeout.variable == "SLIPWAY_DRAIN_TIMEOUT")
    }
}
