// `logs APP [-n N] [--type T] [-f]`: the last lines each instance of a process type wrote, and with
// -f the lines they write from then on, across deploys and restarts (an instance's replacement
// appends to the same file), until the client hangs up.
import ArgumentParser
import Foundation
import SlipwayBasics
import SlipwayDeployer
import SlipwayStore
import SlipwaySupervisor

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
            let (lines, end) = LogReading.tail(of: file.path, lines: number)
            for line in lines { context.output.print(file.label + line) }
            offsets[file.path] = end
        }
        while follow {
            try await Task.sleep(for: .milliseconds(250))
            files = logs.files()
            for file in files {
                let (lines, end) = LogReading.lines(of: file.path, from: offsets[file.path] ?? 0)
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
}
