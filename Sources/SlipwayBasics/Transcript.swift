// Transcript: the lines a child process printed, as Slipway keeps them (a deploy's build log, a tool's output). A
// build or release phase may print without end (300 MB, or one endless line), so memory holds only the first and
// last lines, with a line between saying what was left out; with a file to record to, every line also goes there
// (itself capped), and the note says where the rest is.
import Foundation
import Synchronization

public final class Transcript: Sendable {
    /// A deploy's build log: what is kept of each end of it in memory, and so in the store.
    public static let buildLogBytesEachEnd = 512 * 1024
    /// A release's log file stops growing here.
    public static let fileLimit = 64 << 20

    private struct State {
        var head: [String] = []
        var headBytes = 0
        var tail: NewestLines<String>
        var file: FileHandle?
        var path: String?
        var fileBytes = 0
    }

    private let state: Mutex<State>
    private let keptBytesEachEnd: Int

    public init(keptBytesEachEnd: Int = 64 * 1024) {
        self.keptBytesEachEnd = keptBytesEachEnd
        state = Mutex(State(tail: NewestLines(limit: keptBytesEachEnd) { $0.utf8.count + 1 }))
    }

    public func append(_ line: String) {
        state.withLock { state in
            Self.write(line, to: &state)
            let size = line.utf8.count + 1
            if state.tail.isEmpty && state.headBytes + size <= keptBytesEachEnd {
                state.head.append(line)
                state.headBytes += size
            } else {
                state.tail.append(line)
            }
        }
    }

    /// From now on every line also goes to the file at `path` (made 0600), starting with those kept so far.
    public func record(to path: String) {
        try? FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent,
            withIntermediateDirectories: true
        )
        guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]),
            let file = FileHandle(forWritingAtPath: path)
        else { return }
        state.withLock { state in
            state.file = file
            state.path = path
            for line in state.head + state.tail.kept { Self.write(line, to: &state) }
        }
    }

    /// The first and last lines, with a line between them saying what was left out.
    public var text: String {
        state.withLock { state in
            var lines = state.head
            if state.tail.droppedLines > 0 {
                let whole = state.path.map { "; the whole output is in \($0)" } ?? ""
                lines.append(
                    "[… \(state.tail.droppedLines) lines (\(state.tail.droppedBytes) bytes) left out here\(whole)]"
                )
            }
            return (lines + state.tail.kept).joined(separator: "\n")
        }
    }

    public func close() {
        state.withLock { state in
            try? state.file?.close()
            state.file = nil
        }
    }

    private static func write(_ line: String, to state: inout State) {
        guard let file = state.file else { return }
        let bytes = Data((line + "\n").utf8)
        guard state.fileBytes + bytes.count <= fileLimit else {
            try? file.write(contentsOf: Data("[… the rest of the output is left out: this file is full]\n".utf8))
            try? file.close()
            state.file = nil
            return
        }
        state.fileBytes += bytes.count
        try? file.write(contentsOf: bytes)
    }
}
