// The commands about an app's running processes: ps, ps:scale, ps:overlap, ps:restart and ps:stop.
import ArgumentParser
import Foundation
import SlipwayBasics
import SlipwayDeployer
import SlipwayStore

public struct PsCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ps",
        abstract: "List an app's running instances, and its one-off commands running in the background."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Flag(help: "Print JSON.") var json = false

    public init() {}

    public func run(in context: CommandContext) async throws {
        _ = try context.store.app(app)
        let instances = try context.store.runningInstances(of: app)
        let runs = await context.deployer.detachedRuns(of: app)
        if json {
            context.output.print(
                try JSON.encode(instances.map(InstanceSummary.init) + runs.map(InstanceSummary.init))
            )
            return
        }
        context.output.print("=== \(app) instances")
        if instances.isEmpty && runs.isEmpty { context.output.print("(none running)") }
        for instance in instances {
            context.output.print(
                "\(instance.processType).\(instance.processIndex)  v\(instance.releaseNumber)  \(instance.status.rawValue)  "
                    + "pid \(instance.pid)" + (instance.port.map { "  port \($0)" } ?? "")
                    + "  since \(Format.timestamp(instance.startedAt))"
            )
        }
        for run in runs {
            context.output.print(
                "run.\(run.pid)  \(run.release)  running  pid \(run.pid)  since \(Format.timestamp(run.startedAt))  "
                    + "`\(run.commandLine)`"
            )
        }
        if let live = try context.store.liveRelease(of: app) {
            for crashes in try context.store.crashLoops(of: app, release: live.version, exits: 1) {
                if crashes.exits >= CrashLoop.exits {
                    context.output.print("crash-looping: \(crashes)")
                } else {
                    context.output.print(
                        "restarted: \(crashes.process) "
                            + (crashes.lastExit.map { "after it \($0)" } ?? "after a crash")
                    )
                }
            }
        }
    }
}

struct InstanceSummary: Codable {
    /// `web.1`, as DYNO names it.
    var name: String
    var processType: String
    var release: String
    var status: String
    var pid: Int32
    var port: Int?
    var startedAt: Date
    /// A one-off command's command line.
    var command: String?

    init(_ record: InstanceRecord) {
        name = "\(record.processType).\(record.processIndex)"
        processType = record.processType
        release = "v\(record.releaseNumber)"
        status = record.status.rawValue
        pid = record.pid
        port = record.port
        startedAt = record.startedAt
    }

    init(_ run: OneOffRun) {
        name = "run.\(run.pid)"
        processType = "run"
        release = "\(run.release)"
        status = "running"
        pid = run.pid
        startedAt = run.startedAt
        command = run.commandLine
    }
}

public struct ScaleCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ps:scale",
        abstract: "Set how many instances of each process type run (web: a new healthy set before the old one drains)."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "TYPE=COUNT pairs, e.g. web=3 worker=1.") var formation: [String]

    public init() {}

    /// The pairs as asked, in order.
    private var counts: [(type: String, count: Int)] {
        formation.compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let count = Int(parts[1]) else { return nil }
            return (parts[0], count)
        }
    }

    public func validate() throws {
        guard !formation.isEmpty, counts.count == formation.count,
            counts.allSatisfy({
                $0.type.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
            })
        else { throw ValidationError("give TYPE=COUNT pairs, for example web=3 worker=1") }
        for (type, count) in counts {
            let range = type == "web" ? 1...32 : 0...32
            guard range.contains(count) else {
                throw ValidationError(
                    "\(type)=\(count) is out of range: \(type) runs \(range.lowerBound) to 32 instances"
                )
            }
        }
    }

    public func run(in context: CommandContext) async throws {
        for (type, count) in counts {
            try await context.streamingChange(of: app) { output in
                type == "web"
                    ? try await context.deployer.scale(app: app, web: count, output: output)
                    : try await context.deployer.scale(app: app, worker: type, count: count, output: output)
            }
        }
    }
}

public struct OverlapCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ps:overlap",
        abstract: "on: a new release's workers start before the old ones stop; off (default): old ones stop first."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "on or off.") var setting: Switch

    public init() {}

    public func run(in context: CommandContext) async throws {
        try context.store.setWorkersOverlap(setting == .on, for: app)
        context.output.print(
            setting == .on
                ? "\(app)'s new workers start before the old ones stop, from the next release on"
                : "\(app)'s old workers stop before the new ones start, from the next release on"
        )
    }
}

public struct StopCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ps:stop",
        abstract: "Stop a one-off command running in the background, named as ps lists it (run.<pid>)."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "The one-off command, as ps lists it: run.<pid>.") var name: String

    public init() {}

    var pid: Int32? {
        guard name.hasPrefix("run."), name.utf8.count <= 14 else { return nil }
        return Int32(name.dropFirst(4)).flatMap { $0 > 0 ? $0 : nil }
    }

    public func validate() throws {
        guard pid != nil else {
            throw ValidationError(
                "invalid one-off command \"\(name.prefix(40))\": give it as `slipway ps` lists it, such as run.4242"
            )
        }
    }

    public func run(in context: CommandContext) async throws {
        _ = try context.store.app(app)
        context.output.print(try await context.deployer.stopDetached(app: app, pid: pid ?? 0))
    }
}

public struct RestartCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ps:restart",
        abstract: "Replace an app's web instances with fresh ones, healthy before the old ones drain."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName

    public init() {}

    public func run(in context: CommandContext) async throws {
        try await context.streamingChange(of: app) { output in
            try await context.deployer.scale(app: app, web: nil, output: output)
        }
    }
}
