// The commands about an app's builds: builds:cache:clear empties what its builds keep for the next one.
import ArgumentParser
import SlipwayBasics
import SlipwayDeployer

public struct BuildsCacheClearCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "builds:cache:clear",
        abstract: "Empty the app's build cache: its next build starts from nothing."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName

    public init() {}

    public func run(in context: CommandContext) async throws {
        try await context.deployer.clearBuildCache(of: app, output: DeployOutput { context.output.print($0) })
    }
}
