// The commands about an app's config vars: config, config:get, config:set and config:unset, each set or unset
// a release of the live build unless told otherwise.
import ArgumentParser
import Foundation
import SlipwayBasics
import SlipwayDeployer
import SlipwayStore

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
        try await context.streamingChange(of: app) { output in
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
