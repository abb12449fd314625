// Procfile: the app's process types, `type: command` per line, as Heroku reads them.
import Foundation
import SlipwayBasics

public enum Procfile {
    /// Parses Procfile text. Blank lines and `#` comments are skipped; a malformed line is an error.
    public static func parse(_ text: String) throws(BuildError) -> [String: String] {
        var types: [String: String] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else { throw .malformedProcfile(line: index + 1) }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces)
            let command = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            guard ProcessType.isValidName(name), !command.isEmpty else { throw .malformedProcfile(line: index + 1) }
            types[name] = command
        }
        return types
    }
}
