// The command about how pushes deploy: git:atomic, Heroku's and Dokku's behaviour, where the deploy runs while the
// push is received and a failed deploy rejects it.
import ArgumentParser
import SlipwayBasics
import SlipwayDeployer
import SlipwayStore

public struct GitAtomicCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "git:atomic",
        abstract: "Show or set atomic pushes: deploy while the push is received, and reject it if the deploy fails."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "on or off.") var setting: Switch?

    public init() {}

    public func run(in context: CommandContext) async throws {
        if let setting { try await context.deployer.setAtomicPushes(setting == .on, for: app) }
        let branch = try context.store.app(app).deployBranch
        context.output.print(
            try context.store.app(app).atomicPushes
                ? "\(app) has atomic pushes: a push to \(branch) deploys before it is accepted; a failed deploy "
                    + "rejects it (git push exits non-zero) and \(branch) moves only once the release is live"
                : "\(app) deploys after a push is accepted: a failed deploy moves \(branch) back to the live "
                    + "release's commit (git:atomic on rejects the push instead)"
        )
    }
}
