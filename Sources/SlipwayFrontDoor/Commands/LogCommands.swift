// `logs APP [-n N] [--type T…] [-f]`: the last lines an app's processes wrote (its instances and release
// phases), each with its time, release and process, merged in time order; with -f the lines they write from then
// on, across deploys and restarts (an instance's replacement appends to the same file), until the client hangs up.
import ArgumentParser
import Foundation
import SlipwayBasics
import SlipwayDeployer
import SlipwayStore
import SlipwaySupervisor

public struct LogsCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print the last lines an app's processes wrote, oldest first; -f keeps following them."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Option(name: .shortAndLong, help: "How many lines.") var number = 100
    @Option(
        name: .long,
        help:
            "Only these process types (web, worker, release for the release phase…); repeat it or separate with commas."
    )
    var type: [String] = []
    @Flag(name: .shortAndLong, help: "Keep printing new lines until interrupted.") var follow = false

    public init() {}

    /// The types asked for, each a process type name.
    var types: [String] { type.flatMap { $0.split(separator: ",").map(String.init) } }

    public func validate() throws {
        guard number >= 0 else { throw ValidationError("give a number of lines of 0 or more") }
        for name in types
        where name.isEmpty || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
        {
            throw ValidationError("invalid process type \"\(name)\"")
        }
    }

    public func run(in context: CommandContext) async throws {
        _ = try context.store.app(app)
        let logs = InstanceLogs(directory: context.settings.data.logs(app), types: Set(types))
        var files = logs.files()
        guard !files.isEmpty || follow else { throw LogsError.none(app, types) }
        var followed: [String: FollowedLog] = [:]
        var lines: [[InstanceLogs.Line]] = []
        for file in files {
            let (read, end) = LogReading.tail(of: file.path, lines: number)
            lines.append(file.lines(read))
            followed[file.path] = FollowedLog(path: file.path, from: end)
        }
        for line in InstanceLogs.inTimeOrder(lines).suffix(number) { context.output.print(line.shown) }
        while follow {
            try await Task.sleep(for: .milliseconds(250))
            files = logs.files()
            lines = []
            for file in files {
                var log = followed[file.path] ?? FollowedLog(path: file.path, from: 0)
                lines.append(file.lines(log.read()))
                followed[file.path] = log
            }
            for line in InstanceLogs.inTimeOrder(lines) { context.output.print(line.shown) }
        }
    }
}

enum LogsError: UserFacingError {
    case none(AppName, [String])

    var description: String {
        switch self {
        case .none(let app, let types):
            "\(app) has no \(types.isEmpty ? "" : types.joined(separator: " or ") + " ")logs yet; they start with its "
                + "first deploy"
        }
    }
}

/// The log files of an app's process types: `<type>.<n>.log`, one per instance slot (`release.1.log` for the
/// release phase).
struct InstanceLogs {
    var directory: String
    /// Empty: every type.
    var types: Set<String>

    struct File {
        var path: String
        /// `web.1`, for a line kept before lines were stamped.
        var process: String

        /// Each line with the time it was written; a line kept before lines were stamped takes the time of the
        /// line before it, so it keeps its place.
        func lines(_ texts: [String]) -> [Line] {
            var time = ""
            return texts.map { text in
                let kept = LogLine(kept: text)
                time = kept?.time ?? time
                return Line(time: time, shown: kept?.kept ?? "\(process)| \(text)")
            }
        }
    }

    struct Line {
        var time: String
        var shown: String
    }

    func files() -> [File] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> File? in
            let parts = name.split(separator: ".")
            guard parts.count == 3, parts[2] == "log", let slot = Int(parts[1]),
                types.isEmpty || types.contains(String(parts[0]))
            else { return nil }
            return File(path: directory + "/" + name, process: "\(parts[0]).\(slot)")
        }.sorted { $0.process < $1.process }
    }

    /// The lines of several files in the order they were written (ISO 8601 in UTC sorts as text), each file's own
    /// order kept.
    static func inTimeOrder(_ files: [[Line]]) -> [Line] {
        files.joined().enumerated().sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }
            .map(\.element)
    }
}
