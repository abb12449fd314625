// The admin commands: apps, apps:create, releases, releases:info. Each parses its arguments
// (on the CLI and again in the daemon) and runs in the daemon against the deployer and store.
import ArgumentParser
import Foundation
import SlipwayBasics
import SlipwayDeployer
import SlipwayStore

/// Options every client command accepts; the daemon ignores them.
public struct ConnectionOptions: ParsableArguments, Sendable {
    @Option(name: .long, help: "The data directory of the daemon to talk to (default: $SLIPWAY_DATA or ~/.slipway).")
    public var data: String?

    public init() {}
}

extension AppName: ExpressibleByArgument {
    public init?(argument: String) { try? self.init(validating: argument) }
}

extension ReleaseVersion: ExpressibleByArgument {
    public init?(argument: String) { try? self.init(parsing: argument) }
}

public struct AppsCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "apps",
        abstract: "List the apps and their live releases."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Flag(help: "Print JSON.") var json = false

    public init() {}

    public func run(in context: CommandContext) async throws {
        let apps = try context.store.apps()
        let rows = try apps.map { app in
            (app, try context.store.liveRelease(of: app.appName))
        }
        if json {
            let list = rows.map { app, live in
                AppSummary(
                    name: app.name,
                    deployBranch: app.deployBranch,
                    url: context.settings.url(of: app.appName),
                    liveRelease: live.map { $0.version.description }
                )
            }
            context.output.print(try JSON.encode(list))
            return
        }
        guard !apps.isEmpty else {
            context.output.print("No apps yet. Create one with `slipway apps:create NAME`.")
            return
        }
        for (app, live) in rows {
            context.output.print(
                app.name.padding(toLength: max(12, app.name.count + 2), withPad: " ", startingAt: 0)
                    + (live.map { "\($0.version) live" } ?? "no live release").padding(
                        toLength: 18,
                        withPad: " ",
                        startingAt: 0
                    )
                    + context.settings.url(of: app.appName)
            )
        }
    }
}

public struct AppsCreateCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "apps:create",
        abstract: "Create an app and its git repository."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app name: 1-30 lowercase letters, digits and dashes, starting with a letter.")
    var name: String

    public init() {}

    public func validate() throws {
        do { _ = try AppName(validating: name) } catch { throw ValidationError(error.description) }
    }

    public func run(in context: CommandContext) async throws {
        let app = try AppName(validating: name)
        _ = try await context.deployer.createApp(app)
        let remote = context.settings.data.repository(app)
        context.output.print("Created \(app). Deploy it with git:")
        context.output.print("  git remote add slipway \(remote)")
        context.output.print("  git push slipway main")
        context.output.print("It will be served at \(context.settings.url(of: app))")
    }
}

public struct ReleasesCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "releases",
        abstract: "List an app's releases, newest first."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Option(name: .shortAndLong, help: "How many releases to show.") var number = 20
    @Flag(help: "Show every release.") var all = false
    @Flag(help: "Print JSON.") var json = false

    public init() {}

    public func run(in context: CommandContext) async throws {
        let history = try context.store.history(of: app, limit: all ? nil : number)
        if json {
            context.output.print(try JSON.encode(history.map(ReleaseSummary.init)))
            return
        }
        context.output.print(
            "=== \(app) releases" + (all || history.count < number ? "" : " (newest \(number); --all for every one)")
        )
        for entry in history {
            let release = entry.release
            let commit = release.commitID.map { String($0.prefix(7)) } ?? "-      "
            let durations = DeployStep.allCases.compactMap { step in
                entry.duration(of: step).map { "\(step.rawValue) \(Format.duration($0))" }
            }.joined(separator: " ")
            context.output.print(
                [
                    release.version.description.padding(toLength: 5, withPad: " ", startingAt: 0),
                    release.status.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0),
                    commit, Format.timestamp(release.createdAt), durations, release.description,
                    "(by \(release.cause))",
                ].filter { !$0.isEmpty }.joined(separator: "  ")
            )
            if let reason = release.failureReason { context.output.print("       failed: \(reason)") }
            if release.status == .live {
                for loop in try context.store.crashLoops(of: app, release: release.version) {
                    context.output.print("       crash-looping: \(loop)")
                }
            }
        }
    }
}

public struct ReleasesInfoCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "releases:info",
        abstract: "Show one release: its commit, each deploy step and the build log."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "The release, as v3 or 3.") var release: ReleaseVersion
    @Flag(help: "Print JSON.") var json = false

    public init() {}

    public func run(in context: CommandContext) async throws {
        let entry = try context.store.release(release, of: app)
        if json {
            context.output.print(try JSON.encode(ReleaseDetail(entry)))
            return
        }
        let record = entry.release
        context.output.print("=== \(app) \(record.version)")
        context.output.print("Status:      \(record.status.rawValue)")
        if let reason = record.failureReason { context.output.print("Failure:     \(reason)") }
        context.output.print("Description: \(record.description)")
        context.output.print("Cause:       \(record.cause)")
        let promotions = try context.store.promotions(of: record)
        if let from = promotions.from { context.output.print("Promoted from: \(from)") }
        if !promotions.to.isEmpty { context.output.print("Promoted to: \(promotions.to.joined(separator: ", "))") }
        if let commit = record.commitID { context.output.print("Commit:      \(commit)") }
        if let author = record.commitAuthor { context.output.print("Author:      \(author)") }
        if let buildpack = record.buildpack { context.output.print("Buildpack:   \(buildpack)") }
        for (type, command) in record.processTypeCommands.sorted(by: { $0.key < $1.key }) {
            context.output.print("Process:     \(type): \(command)")
        }
        if let tree = record.tree, tree != record.version { context.output.print("Build:       \(tree)'s tree") }
        let keys = record.configValues.keys.sorted()
        context.output.print("Config:      " + (keys.isEmpty ? "(none)" : keys.joined(separator: ", ")))
        context.output.print("Created:     \(Format.timestamp(record.createdAt))")
        if !entry.events.isEmpty {
            context.output.print("")
            context.output.print("=== Deploy steps")
            for event in entry.events {
                let end = event.finishedAt.map(Format.timestamp) ?? "(running)"
                let took = event.duration.map { " (\(Format.duration($0)))" } ?? ""
                context.output.print(
                    "\(event.step.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) "
                        + "\(event.outcome.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) "
                        + "\(Format.timestamp(event.startedAt)) -> \(end)\(took)"
                        + (event.detail.map { "  \($0)" } ?? "")
                )
            }
        }
        if !record.buildLog.isEmpty {
            context.output.print("")
            context.output.print("=== Build log")
            for line in record.buildLog.split(separator: "\n", omittingEmptySubsequences: false) {
                context.output.print(String(line))
            }
        }
    }
}

// MARK: JSON shapes

struct AppSummary: Codable {
    var name: String
    var deployBranch: String
    var url: String
    var liveRelease: String?
}

struct ReleaseSummary: Codable {
    var version: String
    var status: String
    var description: String
    /// The SSH key that made it, or `local`.
    var cause: String
    var commit: String?
    var createdAt: Date
    var finishedAt: Date?
    var failureReason: String?
    /// Step name -> duration, e.g. "build": "4.1s".
    var durations: [String: String]

    init(_ entry: ReleaseHistoryEntry) {
        let release = entry.release
        version = release.version.description
        status = release.status.rawValue
        description = release.description
        cause = release.cause
        commit = release.commitID
        createdAt = release.createdAt
        finishedAt = release.finishedAt
        failureReason = release.failureReason
        var durations: [String: String] = [:]
        for step in DeployStep.allCases {
            if let duration = entry.duration(of: step) { durations[step.rawValue] = Format.duration(duration) }
        }
        self.durations = durations
    }
}

struct ReleaseDetail: Codable {
    struct Step: Codable {
        var step: String
        var outcome: String
        var startedAt: Date
        var finishedAt: Date?
        var detail: String?
    }

    var release: ReleaseSummary
    var author: String?
    var buildpack: String?
    var processTypes: [String: String]
    var steps: [Step]
    var buildLog: String

    init(_ entry: ReleaseHistoryEntry) {
        release = ReleaseSummary(entry)
        author = entry.release.commitAuthor
        buildpack = entry.release.buildpack
        processTypes = entry.release.processTypeCommands
        steps = entry.events.map {
            Step(
                step: $0.step.rawValue,
                outcome: $0.outcome.rawValue,
                startedAt: $0.startedAt,
                finishedAt: $0.finishedAt,
                detail: $0.detail
            )
        }
        buildLog = entry.release.buildLog
    }
}

enum JSON {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

enum Format {
    static func timestamp(_ date: Date) -> String {
        date.formatted(
            .iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false)
                .timeSeparator(.colon)
        )
    }

    static func duration(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return seconds < 1 ? String(format: "%.0fms", seconds * 1000) : String(format: "%.1fs", seconds)
    }
}

// MARK: Config

public struct ConfigCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "List an app's config vars (values masked unless --show)."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Flag(help: "Show the values.") var show = false
    @Flag(help: "Print JSON.") var json = false

    public init() {}

    public func run(in context: CommandContext) async throws {
        let values = try context.store.config(of: app)
        let shown = show ? values : values.mapValues { _ in "********" }
        if json {
            context.output.print(try JSON.encode(shown))
            return
        }
        context.output.print("=== \(app) config vars")
        let width = (shown.keys.map(\.count).max() ?? 0) + 1
        for (key, value) in shown.sorted(by: { $0.key < $1.key }) {
            context.output.print((key + ":").padding(toLength: width + 1, withPad: " ", startingAt: 0) + value)
        }
    }
}

public struct ConfigGetCommand: AdminCommand {
    public static let configuration = CommandConfiguration(commandName: "config:get", abstract: "Print one config var.")
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "The name of the var.") var key: String

    public init() {}

    public func run(in context: CommandContext) async throws {
        guard let value = try context.store.config(of: app)[key] else {
            throw ConfigError.notSet(key, app)
        }
        context.output.print(value)
    }
}

public struct ConfigSetCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "config:set",
        abstract: "Set config vars: a new release of the live build with them, switched to without downtime."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "KEY=VALUE pairs.") var assignments: [String]
    @Flag(help: "Only record the change; it applies from the next deploy.") var noRestart = false

    public init() {}

    /// `KEY=VALUE` with a valid KEY, split; nil otherwise.
    private static func split(_ assignment: String) -> (key: String, value: String)? {
        guard let equals = assignment.firstIndex(of: "="), String(assignment[..<equals]).isEnvironmentVariableName
        else { return nil }
        return (String(assignment[..<equals]), String(assignment[assignment.index(after: equals)...]))
    }

    public func validate() throws {
        guard !assignments.isEmpty else { throw ValidationError("give at least one KEY=VALUE") }
        if let bad = assignments.first(where: { Self.split($0) == nil }) {
            throw ValidationError("\"\(bad)\" is not KEY=VALUE with KEY made of letters, digits and underscores")
        }
    }

    public func run(in context: CommandContext) async throws {
        let values = Dictionary(assignments.compactMap(Self.split), uniquingKeysWith: { _, last in last })
        try await ConfigChange(app: app, set: values, unset: [], noRestart: noRestart).run(in: context)
    }
}

public struct ConfigUnsetCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "config:unset",
        abstract: "Remove config vars: a new release of the live build without them, switched to without downtime."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "The names of the vars.") var keys: [String]
    @Flag(help: "Only record the change; it applies from the next deploy.") var noRestart = false

    public init() {}

    public func validate() throws {
        guard !keys.isEmpty else { throw ValidationError("give at least one KEY") }
    }

    public func run(in context: CommandContext) async throws {
        try await ConfigChange(app: app, set: [:], unset: keys, noRestart: noRestart).run(in: context)
    }
}

/// What config:set and config:unset do: a config release, or with --no-restart only a record.
struct ConfigChange {
    var app: AppName
    var set: [String: String]
    var unset: [String]
    var noRestart: Bool

    func run(in context: CommandContext) async throws {
        guard !noRestart else {
            try context.store.setConfig(set, of: app)
            try context.store.unsetConfig(unset, of: app)
            context.output.print(
                "Changed \((set.keys.sorted() + unset).joined(separator: ", ")) on \(app); "
                    + "not restarted: this applies from the next deploy"
            )
            return
        }
        try await context.streamingChange { output in
            try await context.deployer.changeConfig(
                app: app,
                set: set,
                unset: unset,
                cause: context.caller.name,
                output: output
            )
        }
    }
}

enum ConfigError: UserFacingError {
    case notSet(String, AppName)

    var description: String {
        switch self {
        case .notSet(let key, let app): "\(key) is not set on \(app); run `slipway config \(app)` to list the vars"
        }
    }
}

// MARK: Deploys without a push

public struct RollbackCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Make an earlier release live again: its build and its config, health-checked, no rebuild."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "The release to roll back to (default: the one before the live release).") var release:
        ReleaseVersion?
    @Flag(help: "Do not run the Procfile's release: command before booting.") var skipReleasePhase = false

    public init() {}

    public func run(in context: CommandContext) async throws {
        try await context.streamingChange { output in
            try await context.deployer.rollback(
                app: app,
                to: release,
                skipReleasePhase: skipReleasePhase,
                cause: context.caller.name,
                output: output
            )
        }
    }
}

public struct PromoteCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "promote",
        abstract: "Deploy the exact build live on one app to another, with the target's own config."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app whose live build to promote (e.g. staging).") var source: AppName
    @Argument(help: "The app to deploy it to (e.g. production).") var target: AppName

    public init() {}

    public func run(in context: CommandContext) async throws {
        try await context.streamingChange { output in
            try await context.deployer.promote(from: source, to: target, cause: context.caller.name, output: output)
        }
    }
}

public struct ReleasesKeepCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "releases:keep",
        abstract: "How many built trees the app keeps for rollbacks (default: the daemon's --keep-releases)."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "A number from 1, or `default`.") var count: String

    public init() {}

    public func validate() throws {
        guard count == "default" || (Int(count) ?? 0) >= 1 else {
            throw ValidationError("give a number of releases from 1, or `default`")
        }
    }

    public func run(in context: CommandContext) async throws {
        let kept = Int(count)
        try context.store.setKeepReleases(kept, for: app)
        context.output.print(
            "\(app) keeps \(kept ?? context.settings.keepReleases) built release(s) from its next deploy on"
        )
    }
}

public struct DeployCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Build and deploy a branch, tag or commit already in the app's repository."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "What to deploy (default: the deploy branch).") var ref: String?

    public init() {}

    public func run(in context: CommandContext) async throws {
        let revision = try ref ?? "refs/heads/" + context.store.app(app).deployBranch
        try await context.streamingChange { output in
            try await context.deployer.deploy(app: app, revision: revision, cause: context.caller.name, output: output)
        }
    }
}

extension CommandContext {
    /// Runs a deploy, rollback, config change or scale with its output streamed to the client, as
    /// a push shows it; a failure makes the command exit non-zero.
    func streamingChange(_ change: (DeployOutput) async throws -> DeployOutcome) async throws {
        guard try await change(DeployOutput { output.print($0) }) != .failed else { throw DeployFailed() }
    }
}

/// The deploy output already said why; the command only has to exit non-zero.
struct DeployFailed: UserFacingError {
    var description: String { "it failed (see above); what was serving keeps serving" }
}

// MARK: Processes

public struct PsCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ps",
        abstract: "List an app's running instances."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Flag(help: "Print JSON.") var json = false

    public init() {}

    public func run(in context: CommandContext) async throws {
        _ = try context.store.app(app)
        let instances = try context.store.runningInstances(of: app)
        if json {
            context.output.print(try JSON.encode(instances.map(InstanceSummary.init)))
            return
        }
        context.output.print("=== \(app) instances")
        if instances.isEmpty { context.output.print("(none running)") }
        for instance in instances {
            context.output.print(
                "\(instance.processType).\(instance.processIndex)  v\(instance.releaseNumber)  \(instance.status.rawValue)  "
                    + "pid \(instance.pid)" + (instance.port.map { "  port \($0)" } ?? "")
                    + "  since \(Format.timestamp(instance.startedAt))"
            )
        }
        if let live = try context.store.liveRelease(of: app) {
            for loop in try context.store.crashLoops(of: app, release: live.version) {
                context.output.print("crash-looping: \(loop)")
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

    init(_ record: InstanceRecord) {
        name = "\(record.processType).\(record.processIndex)"
        processType = record.processType
        release = "v\(record.releaseNumber)"
        status = record.status.rawValue
        pid = record.pid
        port = record.port
        startedAt = record.startedAt
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
            try await context.streamingChange { output in
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
    @Argument(help: "on or off.") var setting: Setting

    enum Setting: String, ExpressibleByArgument, CaseIterable { case on, off }

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

public struct RestartCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ps:restart",
        abstract: "Replace an app's web instances with fresh ones, healthy before the old ones drain."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName

    public init() {}

    public func run(in context: CommandContext) async throws {
        try await context.streamingChange { output in
            try await context.deployer.scale(app: app, web: nil, output: output)
        }
    }
}
