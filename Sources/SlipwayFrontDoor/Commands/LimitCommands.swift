// The commands about what an app's instances may use of the host: limits, limits:set and limits:unset. A change
// is a new release of the live build whose instances boot under the new limits (see Deployer.changeLimits).
import ArgumentParser
import Foundation
import SlipwayBasics
import SlipwayDeployer
import SlipwayStore

public struct LimitsCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "limits",
        abstract: "Show the memory, CPU and process limits of an app's instances, by process type."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Flag(help: "Print JSON.") var json = false

    public init() {}

    public func run(in context: CommandContext) async throws {
        let limits = try context.store.app(app).limits
        if json {
            context.output.print(try JSON.encode(limits))
            return
        }
        context.output.print("=== \(app) limits")
        if limits.isEmpty { context.output.print("none: every instance may use what the host has") }
        for (type, set) in limits.sorted(by: { $0.key < $1.key }) {
            context.output.print("\(type == "*" ? "every type" : type): \(set.description)")
        }
        if let reason = context.settings.limitsUnavailable {
            context.output.print("Not applied on this host: \(reason)")
        }
    }
}

public struct LimitsSetCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "limits:set",
        abstract: "Limit an app's instances (all, or one process type's): memory=256m cpu=1.5 pids=512."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "[TYPE] then KEY=VALUE limits (memory, cpu, pids).") var words: [String]

    public init() {}

    public func validate() throws {
        _ = try LimitChange.parse(words, unsetting: false)
    }

    public func run(in context: CommandContext) async throws {
        let (type, values) = try LimitChange.parse(words, unsetting: false)
        let current = try context.store.app(app).limits[type] ?? ProcessLimits()
        let limits = current.overridden(by: try ProcessLimits(parsing: values))
        try await LimitChange(app: app, type: type, limits: limits).run(in: context)
    }
}

public struct LimitsUnsetCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "limits:unset",
        abstract: "Remove limits of an app's instances (all, or one process type's; all keys unless named)."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "[TYPE] then the keys to remove (memory, cpu, pids); none: all of them.") var words: [String] = []

    public init() {}

    public func validate() throws {
        _ = try LimitChange.parse(words, unsetting: true)
    }

    public func run(in context: CommandContext) async throws {
        let (type, keys) = try LimitChange.parse(words, unsetting: true)
        var limits = try context.store.app(app).limits[type] ?? ProcessLimits()
        if keys.isEmpty || keys.contains("memory") { limits.memory = nil }
        if keys.isEmpty || keys.contains("cpu") { limits.cpu = nil }
        if keys.isEmpty || keys.contains("pids") { limits.pids = nil }
        try await LimitChange(app: app, type: type, limits: limits.isEmpty ? nil : limits).run(in: context)
    }
}

/// What limits:set and limits:unset do: a release under the new limits.
struct LimitChange {
    var app: AppName
    var type: String
    var limits: ProcessLimits?

    /// The process type (`*` when none is named) and the words after it: KEY=VALUE to set, or KEYs to unset.
    static func parse(_ words: [String], unsetting: Bool) throws -> (type: String, rest: [String]) {
        var rest = words
        var type = "*"
        if let first = rest.first, !first.contains("="), !ProcessLimits.keys.contains(first) {
            guard ProcessType.isValidName(first) else {
                throw ValidationError(
                    "\"\(first.prefix(64))\" is not a process type; name one of the Procfile's, or none"
                )
            }
            type = first
            rest.removeFirst()
        }
        if unsetting {
            if let bad = rest.first(where: { !ProcessLimits.keys.contains($0) }) {
                throw ValidationError("unknown limit \"\(bad.prefix(32))\": the limits are memory, cpu and pids")
            }
        } else {
            guard !rest.isEmpty else { throw ValidationError("give at least one limit, such as memory=256m") }
            do {
                _ = try ProcessLimits(parsing: rest)
            } catch {
                throw ValidationError(error.description)
            }
        }
        return (type, rest)
    }

    func run(in context: CommandContext) async throws {
        try await context.streamingChange(of: app) { output in
            try await context.deployer.changeLimits(
                app: app,
                type: type,
                to: limits,
                cause: context.caller.name,
                output: output
            )
        }
    }
}
