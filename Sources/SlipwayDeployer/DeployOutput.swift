// DeployOutput: what the pusher sees, line by line, and the copy kept as the release's build log.
import SlipwayBasics

public struct DeployOutput: Sendable {
    private let send: @Sendable (String) -> Void
    private let log = Transcript(keptBytesEachEnd: Transcript.buildLogBytesEachEnd)

    public init(_ send: @escaping @Sendable (String) -> Void) { self.send = send }

    /// A step header, Heroku style.
    public func step(_ text: String) { line("-----> " + text) }

    /// Detail under a step, indented.
    public func detail(_ text: String) { line("       " + text) }

    public func line(_ text: String) {
        log.append(text)
        send(text)
    }

    var sink: @Sendable (String) -> Void { { self.line($0) } }

    /// The lines kept as the release's build log (its first and last ones).
    var transcript: String { log.text }

    /// Every line from now on also goes to the release's log file at `path`.
    func record(to path: String) { log.record(to: path) }

    func closeRecord() { log.close() }
}
