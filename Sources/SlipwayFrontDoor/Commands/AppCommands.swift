// The commands about apps themselves: apps, apps:create, and apps:destroy, which takes an app and everything
// it has away.
import ArgumentParser
import Foundation
import SlipwayBasics
import SlipwayDeployer
import SlipwayStore

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
                    liveRelease: live.map { $0.version.description },
                    maintenance: app.maintenance
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
                    + (app.maintenance ? "  (maintenance on: visitors see the maintenance page)" : "")
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

public struct AppsDestroyCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "apps:destroy",
        abstract: "Stop an app and delete it: its repository, releases, config, logs and domains."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Option(help: "The app's name again, to confirm.") var confirm: String?

    public init() {}

    public func run(in context: CommandContext) async throws {
        _ = try context.store.app(app)
        guard confirm == app.rawValue else { throw DestroyError.notConfirmed(app) }
        try await context.deployer.destroyApp(app)
        context.output.print(
            "Destroyed \(app): its instances are stopped and its repository, releases and logs deleted."
        )
    }
}

enum DestroyError: UserFacingError {
    case notConfirmed(AppName)

    var description: String {
        switch self {
        case .notConfirmed(let app):
            "this deletes \(app) and all it has for good; to go ahead, run `apps:destroy \(app) --confirm \(app)`"
        }
    }
}

struct AppSummary: Codable {
    var name: String
    var deployBranch: String
    var url: String
    var liveRelease: String?
    var maintenance: Bool
}
