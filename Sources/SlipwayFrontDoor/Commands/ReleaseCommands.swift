// The commands about releases: their history (releases, releases:info, and their JSON) and the ways one goes
// live without a push (deploy, rollback, promote), with how many built trees an app keeps.
import ArgumentParser
import Foundation
import SlipwayBasics
import SlipwayDeployer
import SlipwayStore

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
        let keys = record.config.keys.sorted()
        context.output.print("Config:      " + (keys.isEmpty ? "(none)" : keys.joined(separator: ", ")))
        context.output.print("Created:     \(Format.timestamp(record.createdAt))")
        for crashes in try context.store.crashLoops(of: app, release: record.version, exits: 1) {
            context.output.print(
                "Crashed:     \(crashes.process), \(crashes.exits) time(s) in the last \(Int(CrashLoop.window / 60)) minutes"
                    + (crashes.lastExit.map { "; last: it \($0)" } ?? "")
            )
        }
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
        try await context.streamingChange(of: app) { output in
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
        try await context.streamingChange(of: target) { output in
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
        try await context.streamingChange(of: app) { output in
            try await context.deployer.deploy(app: app, revision: revision, cause: context.caller.name, output: output)
        }
    }
}

extension CommandContext {
    /// Runs a deploy, rollback, config change or scale with its output streamed to the client, as
    /// a push shows it; a failure makes the command exit non-zero.
    func streamingChange(of app: AppName, _ change: (DeployOutput) async throws -> DeployOutcome) async throws {
        guard try await change(DeployOutput { output.print($0) }) != .failed else {
            throw DeployFailed(live: try? store.liveRelease(of: app)?.version)
        }
    }
}

/// The deploy output already said why; the command only has to exit non-zero.
struct DeployFailed: UserFacingError {
    /// What serves on, if anything does.
    var live: ReleaseVersion?

    var description: String { "it failed (see above)" + (live.map { "; \($0) keeps serving" } ?? "") }
}
