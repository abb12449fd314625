// CommandDispatcher: the one place admin commands and pushes are carried out, whether they come
// from the local CLI or the post-receive hook (and, later, SSH). The command line is parsed
// with the same ArgumentParser types the CLI uses, so every entry behaves the same.
import ArgumentParser
import Foundation
import Logging
import SlipwayBasics
import SlipwayDeployer
import SlipwayStore

/// What a command may use while it runs.
public struct CommandContext: Sendable {
    public var deployer: Deployer
    public var store: AppDatabase
    public var settings: DeploySettings
    public var output: CommandOutput
}

/// An admin command: parsed on both sides of the control socket, run in the daemon.
public protocol AdminCommand: ParsableCommand {
    /// Where the CLI finds the daemon; the daemon ignores it.
    var connection: ConnectionOptions { get }
    func run(in context: CommandContext) async throws
}

/// The admin command tree, as the daemon parses it.
public struct AdminCommands: ParsableCommand {
    public static let commands: [any ParsableCommand.Type] = [
        AppsCommand.self, AppsCreateCommand.self, ReleasesCommand.self, ReleasesInfoCommand.self,
        RollbackCommand.self, DeployCommand.self, PsCommand.self, ScaleCommand.self, RestartCommand.self,
        LogsCommand.self,
        ConfigCommand.self, ConfigGetCommand.self, ConfigSetCommand.self, ConfigUnsetCommand.self,
    ]

    public static let configuration = CommandConfiguration(commandName: "slipway", subcommands: commands)

    public init() {}
}

public final class CommandDispatcher: Sendable {
    private let deployer: Deployer
    private let store: AppDatabase
    private let settings: DeploySettings
    private let logger: Logger

    public init(deployer: Deployer, store: AppDatabase, settings: DeploySettings, logger: Logger) {
        self.deployer = deployer
        self.store = store
        self.settings = settings
        self.logger = logger
    }

    /// Carries out one request and returns its exit status. Nothing a client sends can stop the daemon.
    func handle(_ request: ControlRequest, output: CommandOutput) async -> Int32 {
        let context = CommandContext(deployer: deployer, store: store, settings: settings, output: output)
        switch request {
        case .command(let arguments):
            return await run(arguments, in: context)
        case .push(let app, let ref, let revision):
            do {
                let name = try AppName(validating: app)
                let deployOutput = DeployOutput { output.print($0) }
                switch try await deployer.receivePush(app: name, ref: ref, revision: revision, output: deployOutput) {
                case .live, .notDeployed: return 0
                case .failed: return 1
                }
            } catch {
                output.error("-----> " + error.userMessage)
                return 1
            }
        }
    }

    private func run(_ arguments: [String], in context: CommandContext) async -> Int32 {
        let parsed: any ParsableCommand
        do {
            parsed = try AdminCommands.parseAsRoot(arguments)
        } catch {
            let message = AdminCommands.fullMessage(for: error)
            let status = AdminCommands.exitCode(for: error).rawValue
            if status == 0 { context.output.print(message) } else { context.output.error(message) }
            return status
        }
        guard let command = parsed as? any AdminCommand else {
            context.output.print(AdminCommands.helpMessage())
            return 0
        }
        do {
            try await command.run(in: context)
            return 0
        } catch {
            context.output.error("slipway: " + error.userMessage)
            logger.info("command failed", metadata: ["command": "\(arguments.first ?? "")", "error": "\(error)"])
            return 1
        }
    }
}
