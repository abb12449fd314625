// The commands that decide where and whether an app answers: domains, maintenance, the endpoint prefix, sticky
// sessions and the drain timeout.
import ArgumentParser
import Foundation
import SlipwayBasics
import SlipwayDeployer
import SlipwayProxy
import SlipwayStore

public struct DomainsCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "domains",
        abstract: "List the hostnames an app answers."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Flag(help: "Print JSON.") var json = false

    public init() {}

    public func run(in context: CommandContext) async throws {
        _ = try context.store.app(app)
        let hosts = [context.settings.host(of: app)] + (try context.store.domains(of: app))
        if json {
            context.output.print(try JSON.encode(hosts))
            return
        }
        context.output.print("=== \(app) domains")
        for host in hosts { context.output.print(host) }
    }
}

public struct DomainsAddCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "domains:add",
        abstract: "Make an app answer another hostname (point its DNS at this host)."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "The hostname, e.g. www.example.com.") var domain: Hostname

    public init() {}

    public func run(in context: CommandContext) async throws {
        try context.store.addDomain(domain.rawValue, to: app)
        try await context.deployer.applyRoutes(of: app)
        context.output.print("\(app) now answers at \(domain.rawValue)")
    }
}

public struct DomainsRemoveCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "domains:remove",
        abstract: "Stop an app answering a hostname."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "The hostname.") var domain: Hostname

    public init() {}

    public func run(in context: CommandContext) async throws {
        try context.store.removeDomain(domain.rawValue, from: app)
        try await context.deployer.applyRoutes(of: app)
        context.output.print("\(app) no longer answers at \(domain.rawValue)")
    }
}

/// A DNS name as a Host header carries it: lowercased, labels of letters, digits and dashes.
public struct Hostname: Sendable, ExpressibleByArgument {
    public let rawValue: String

    public init?(argument: String) {
        let name = argument.lowercased()
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        guard name.utf8.count <= 253, labels.count >= 2,
            labels.allSatisfy({ label in
                (1...63).contains(label.count) && label.first != "-" && label.last != "-"
                    && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            })
        else { return nil }
        rawValue = name
    }

    public static var defaultCompletionKind: CompletionKind { .default }
}

public struct MaintenanceOnCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "maintenance:on",
        abstract: "Answer the app's visitors with a maintenance page (503); its instances keep running."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName

    public init() {}

    public func run(in context: CommandContext) async throws {
        try context.store.setMaintenance(true, for: app)
        try await context.deployer.applyRoutes(of: app)
        context.output.print(
            "\(app) is in maintenance: visitors see the maintenance page until `maintenance:off \(app)`"
        )
    }
}

public struct MaintenanceOffCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "maintenance:off",
        abstract: "Serve the app again after maintenance:on."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName

    public init() {}

    public func run(in context: CommandContext) async throws {
        try context.store.setMaintenance(false, for: app)
        try await context.deployer.applyRoutes(of: app)
        context.output.print("\(app) is serving again")
    }
}

public struct EndpointsCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "endpoints",
        abstract: "Show or move the path where Slipway answers the app's version endpoint, events and client.js."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "A path such as /.well-known/slipway/, or `default` (/_slipway/).") var prefix: String?

    public init() {}

    public func validate() throws {
        guard let prefix, prefix != "default" else { return }
        let segments = prefix.split(separator: "/", omittingEmptySubsequences: false)
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
        // Never `/` alone: that would take every route from the app.
        guard prefix.utf8.count <= 100, prefix.hasPrefix("/"), prefix.hasSuffix("/"), segments.count >= 3,
            segments.dropFirst().dropLast().allSatisfy({ segment in
                !segment.isEmpty && segment != "." && segment != ".." && segment.allSatisfy(allowed.contains)
            })
        else {
            throw ValidationError(
                "invalid prefix \"\(prefix)\": give a path that starts and ends with / around one or more names"
                    + " of letters, digits and -._~, such as /.well-known/slipway/, or `default`"
            )
        }
    }

    public func run(in context: CommandContext) async throws {
        if let prefix {
            try context.store.setEndpointPrefix(prefix == "default" ? nil : prefix, for: app)
            try await context.deployer.applyRoutes(of: app)
        }
        let current = try context.store.app(app).endpointPrefix ?? Router.defaultEndpointPrefix
        context.output.print(
            "\(app) answers \(current)version, \(current)events and \(current)client.js itself;"
                + " no request under \(current) reaches the app"
        )
    }
}

public struct ProxyDrainCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "proxy:drain",
        abstract: "Show or set how long an app's old release gets to finish its requests after a switch."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "Seconds from 1 to 3600, or `default` (the daemon's --drain-timeout).") var seconds: String?

    public init() {}

    public func validate() throws {
        guard let seconds, seconds != "default" else { return }
        guard let number = Int(seconds), (1...3600).contains(number) else {
            throw ValidationError("invalid drain timeout \"\(seconds)\": give seconds from 1 to 3600, or `default`")
        }
    }

    public func run(in context: CommandContext) async throws {
        if let seconds { try context.store.setDrainTimeout(Int(seconds), for: app) }
        let record = try context.store.app(app)
        context.output.print(
            "\(app)'s old release gets \(context.settings.drainTimeout(of: record).components.seconds)s to finish its"
                + " requests after a switch" + (record.drainTimeout == nil ? " (the daemon's default)" : "")
                + "; requests still running then are answered 504"
        )
    }
}

public struct ProxyStickyCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "proxy:sticky",
        abstract: "Show or set sticky sessions: a cookie pins each client to one instance of the live release."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "on or off.") var setting: Switch?

    public init() {}

    public func run(in context: CommandContext) async throws {
        if let setting {
            try context.store.setStickySessions(setting == .on, for: app)
            try await context.deployer.applyRoutes(of: app)
        }
        context.output.print(
            try context.store.app(app).stickySessions
                ? "\(app) has sticky sessions: the \(Router.stickyCookieName) cookie pins each client to one instance;"
                    + " after a deploy the pin moves to an instance of the new release"
                : "\(app) has no sticky sessions: each request goes to the instance with the fewest requests under way"
        )
    }
}
