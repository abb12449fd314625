// `logs APP [-n N] [--type T] [-f]`: the last lines each instance of a process type wrote, and with
// -f the lines they write from then on, across deploys and restarts (an instance's replacement
// appends to the same file), until the client hangs up.
import ArgumentParser
import Foundation
import SlipwayBasics
import SlipwayDeployer
import SlipwayStore

public struct LogsCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print the last lines an app's processes wrote; -f keeps following them."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Option(name: .shortAndLong, help: "How many lines of each instance.") var number = 100
    @Option(name: .long, help: "The process type.") var type = "web"
    @Flag(name: .shortAndLong, help: "Keep printing new lines until interrupted.") var follow = false

    public init() {}

    public func validate() throws {
        guard number >= 0 else { throw ValidationError("give a number of lines of 0 or more") }
        guard !type.isEmpty, type.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
        else { throw ValidationError("invalid process type \"\(type)\"") }
    }

    public func run(in context: CommandContext) async throws {
        _ = try context.store.app(app)
        let logs = InstanceLogs(directory: context.settings.data.logs(app), type: type)
        var files = logs.files()
        guard !files.isEmpty || follow else { throw LogsError.none(app, type) }
        var offsets: [String: UInt64] = [:]
        for file in files {
            let (lines, end) = InstanceLogs.tail(of: file.path, lines: number)
            for line in lines { context.output.print(file.label + line) }
            offsets[file.path] = end
        }
        while follow {
            try await Task.sleep(for: .milliseconds(250))
            files = logs.files()
            for file in files {
                let (lines, end) = InstanceLogs.lines(of: file.path, from: offsets[file.path] ?? 0)
                for line in lines { context.output.print(file.label + line) }
                offsets[file.path] = end
            }
        }
    }
}

enum LogsError: UserFacingError {
    case none(AppName, String)

    var description: String {
        switch self {
        case .none(let app, let type): "\(app) has no \(type) logs yet; they start with its first deploy"
        }
    }
}

/// The log files of one process type: `<type>.<n>.log`, one per instance slot.
struct InstanceLogs {
    var directory: String
    var type: String

    struct File {
        var path: String
        /// `web.1| `, as the deploy output labels instance lines.
        var label: String
    }

    func files() -> [File] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> (Int, File)? in
            guard name.hasPrefix(type + "."), name.hasSuffix(".log"),
                let slot = Int(name.dropFirst(type.count + 1).dropLast(4))
            else { return nil }
            return (slot, File(path: directory + "/" + name, label: "\(type).\(slot)| "))
        }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// The last `count` complete lines of the file, and the offset after them. Reads at most the last 1 MiB.
    static func tail(of path: String, lines count: Int) -> (lines: [String], end: UInt64) {
        guard let handle = FileHandle(forReadingAtPath: path) else { return ([], 0) }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        let start = size > 1 << 20 ? size - (1 << 20) : 0
        let (lines, end) = read(handle, from: start)
        return (Array(lines.suffix(count)), end)
    }

    /// The complete lines written since `offset`, and the offset after them. A file that shrank
    /// (replaced) is read from its start.
    static func lines(of path: String, from offset: UInt64) -> (lines: [String], end: UInt64) {
        guard let handle = FileHandle(forReadingAtPath: path) else { return ([], offset) }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        return read(handle, from: size < offset ? 0 : offset)
    }

    private static func read(_ handle: FileHandle, from offset: UInt64) -> (lines: [String], end: UInt64) {
        guard (try? handle.seek(toOffset: offset)) != nil, let data = try? handle.readToEnd(),
            let lastNewline = data.lastIndex(of: UInt8(ascii: "\n"))
        else { return ([], offset) }
        let complete = data[data.startIndex..<lastNewline]
        let lines = complete.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        return (lines, offset + UInt64(lastNewline - data.startIndex + 1))
    }
}
