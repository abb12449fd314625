// LogLine: one line of an app's log files as it is kept: `2026-12-05T07:42:07Z v5 web.1| text`, the time (UTC), the
// release and process that wrote it, and what it wrote. An instance writes its log itself (it outlives the
// daemon), so its output goes through a small stamping filter in its own sandbox; the daemon writes a release
// phase's lines in the same form.
import Foundation
import SlipwayBasics

public struct LogLine: Sendable, Equatable {
    /// `2026-12-05T07:42:07Z`.
    public var time: String
    /// `v5 web.1`.
    public var label: String
    public var text: String

    /// The label of a process of a release: `v5 web.1`, `v5 release`.
    public static func label(release: ReleaseVersion, process: String) -> String { "\(release) \(process)" }

    /// `v5 web.1| text`: how a line is shown without its time (the deploy output).
    public var labelled: String { label + "| " + text }

    /// The line as kept in a log file.
    public var kept: String { time + " " + labelled }

    /// A kept line; nil for one that is not (written before lines were stamped, or a reader's note).
    public init?(kept line: String) {
        guard let space = line.firstIndex(of: " "), let bar = line.range(of: "| ", range: space..<line.endIndex)
        else { return nil }
        let time = line[..<space]
        guard time.count == 20, time.hasSuffix("Z") else { return nil }
        self.init(
            time: String(time),
            label: String(line[line.index(after: space)..<bar.lowerBound]),
            text: String(line[bar.upperBound...])
        )
    }

    public init(time: String, label: String, text: String) {
        self.time = time
        self.label = label
        self.text = text
    }

    public init(now label: String, text: String) {
        self.init(time: Date().formatted(.iso8601), label: label, text: text)
    }

    /// The shell lines that send the rest of a script's output (stdout and stderr) through the stamping filter, with
    /// the label in `$0`. The filter ignores SIGTERM, so it keeps stamping what the app says while it stops and
    /// ends when the app's output does. Debian's awk, mawk, reads a pipe in whole blocks unless told to be
    /// interactive, which would hold a line back until 4 KiB more came.
    static let stampingRedirect = #"""
        slipway_awk=(awk); command -v mawk >/dev/null && slipway_awk=(mawk -W interactive)
        exec > >(trap '' TERM; TZ=UTC exec "${slipway_awk[@]}" -v label="$0|" '{ print strftime("%Y-%m-%dT%H:%M:%SZ"), label, $0; fflush() }') 2>&1
        unset slipway_awk
        """#
}
