// CommandDispatcher: the one place admin commands and pushes are carried out, whether they come
// from the local CLI, the post-receive hook, the embedded SSH server or `slipway ssh-command`.
// The command line is parsed with the same ArgumentParser types the CLI uses, so every way in
// behaves the same, and authorized against the caller before anything runs.
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
    public var caller: Caller
    /// The caller's stdin, for commands that read it (`ReadsInput`); empty otherwise.
    public var input: [UInt8]
}

/// An admin command: parsed on both sides of the control socket, run in the daemon.
public protocol AdminCommand: ParsableCommand, Sendable {
    /// Where the CLI finds the daemon; the daemon ignores it.
    var connection: ConnectionOptions { get }
    func run(in context: CommandContext) async throws
}

extension AdminCommand {
    /// Whether the CLI must send its stdin along.
    public var readsInput: Bool { self is any ReadsInput }
}

/// The admin command tree, as the daemon parses it.
public struct AdminCommands: ParsableCommand {
    public static let commands: [any ParsableCommand.Type] = [
        AppsCommand.self, AppsCreateCommand.self, AppsDestroyCommand.self,
        ReleasesCommand.self, ReleasesInfoCommand.self, ReleasesKeepCommand.self, RollbackCommand.self,
        DeployCommand.self, PromoteCommand.self, BuildsCacheClearCommand.self, StorageCommand.self,
        GitAtomicCommand.self, RunCommand.self,
        ConfigCommand.self, ConfigGetCommand.self, ConfigSetCommand.self, ConfigUnsetCommand.self,
        PsCommand.self, ScaleCommand.self, RestartCommand.self, StopCommand.self, OverlapCommand.self, LogsCommand.self,
        LimitsCommand.self, LimitsSetCommand.self, LimitsUnsetCommand.self,
        DomainsCommand.self, DomainsAddCommand.self, DomainsRemoveCommand.self,
        CertsCommand.self, CertsAddCommand.self, CertsRemoveCommand.self, ProxyHTTPSCommand.self,
        MaintenanceOnCommand.self, MaintenanceOffCommand.self, EndpointsCommand.self,
        ProxyDrainCommand.self, ProxyStickyCommand.self,
        KeysCommand.self, KeysAddCommand.self, KeysRemoveCommand.self, KeysAllowCommand.self, KeysDisallowCommand.self,
        KeysAuthorizedKeysCommand.self,
    ]

    public static let configuration = CommandConfiguration(
        commandName: "slipway",
        abstract: "Slipway admin commands (the same locally, over SSH and through ssh-command).",
        subcommands: commands
    )

    public init() {}

    /// A usage mistake in an admin command as one line that says what to do, instead of the whole usage
    /// text; nil for anything else (help asked for, other errors).
    public static func usageMistake(_ error: any Error, in arguments: [String]) -> String? {
        guard exitCode(for: error) == .validationFailure, let name = arguments.first,
            commands.contains(where: { $0.configuration.commandName == name })
        else { return nil }
        return "slipway: \(message(for: error)); see `help \(name)`"
    }
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

    /// A command line, parsed and authorized: a command to run, or the answer to give instead
    /// (help, a usage error, a refusal) with its exit status.
    enum Parsed {
        case command(any AdminCommand)
        case answer(String, status: Int32)
    }

    /// What an admin command line of `caller` becomes, parsed and authorized once: an answer (help, a usage error,
    /// a refusal), a program its client runs with stdin and output of its own (`run`, attached), or a command run
    /// here. Nothing a client sends can stop the daemon.
    func plan(_ words: [String], caller: Caller) async -> SSHPlan {
        switch parse(words, caller: caller) {
        case .answer(let text, let status):
            return .inProcess(readsInput: false) { _, output in await Self.give(text, status: status, to: output) }
        case .command(let command):
            do {
                if let run = command as? RunCommand, let program = try await run.program(deployer) {
                    return .program(program)
                }
            } catch {
                return .refuse(message: "slipway: " + error.userMessage, status: 1)
            }
            return .inProcess(readsInput: command.readsInput) { [self] input, output in
                await run(command, caller: caller, input: input, output: output)
            }
        }
    }

    /// From the proc-receive and post-receive hooks: deploys `revision` when `ref` is the app's deploy branch, at the
    /// `stage` its atomic setting says. A failure exits 1; a push still being received is rejected, and `reject` gets
    /// the reason the pusher sees.
    func receivePush(
        app: String,
        ref: String,
        revision: String,
        key: String?,
        stage: PushStage,
        output session: SessionOutput,
        reject: @Sendable (String) async -> Void = { _ in }
    ) async
        -> Int32
    {
        let output = CommandOutput(session)
        var rejection: String?
        do {
            let name = try AppName(validating: app)
            let outcome = try await deployer.receivePush(
                app: name,
                ref: ref,
                revision: revision,
                cause: key ?? Caller.local.name,
                stage: stage,
                output: DeployOutput { output.print($0) }
            )
            if outcome == .failed { rejection = "deploy failed: " + failureReason(of: name, commit: revision) }
        } catch {
            output.error("-----> " + error.userMessage)
            rejection = error.userMessage
        }
        await output.close()
        guard let rejection else { return 0 }
        if case .receiving = stage { await reject(rejection) }
        return 1
    }

    /// Why the newest deploy of `commit` failed, in one line, for a rejected push.
    private func failureReason(of app: AppName, commit: String) -> String {
        guard let newest = try? store.history(of: app, limit: 1).first?.release, newest.commitID == commit,
            let reason = newest.failureReason
        else { return "see the deploy's output above" }
        // git shows one line of at most a few hundred bytes as the reason.
        let line = reason.split(separator: "\n").first.map(String.init) ?? reason
        return line.count > 300 ? String(line.prefix(300)) + "…" : line
    }

    func parse(_ arguments: [String], caller: Caller) -> Parsed {
        if let first = arguments.first, !first.hasPrefix("-"), first != "help",
            !AdminCommands.commands.contains(where: { $0.configuration.commandName == first })
        {
            return .answer("slipway: unknown command \"\(first)\"; run `help` to list the commands", status: 1)
        }
        let parsed: any ParsableCommand
        do {
            parsed = try AdminCommands.parseAsRoot(arguments)
        } catch {
            let message = AdminCommands.usageMistake(error, in: arguments) ?? AdminCommands.fullMessage(for: error)
            return .answer(message, status: AdminCommands.exitCode(for: error).rawValue)
        }
        guard let command = parsed as? any AdminCommand else { return .answer(AdminCommands.helpMessage(), status: 0) }
        do {
            try caller.authorize(command)
        } catch {
            return .answer("slipway: " + error.userMessage, status: 1)
        }
        return .command(command)
    }

    /// Runs a parsed, authorized command; returns once all it printed has been handed to `session`.
    func run(
        _ command: any AdminCommand,
        caller: Caller,
        input: [UInt8],
        output session: SessionOutput
    ) async
        -> Int32
    {
        let output = CommandOutput(session)
        let status = await run(command, caller: caller, input: input, output: output)
        await output.close()
        return status
    }

    private func run(
        _ command: any AdminCommand,
        caller: Caller,
        input: [UInt8],
        output: CommandOutput
    ) async
        -> Int32
    {
        let context = CommandContext(
            deployer: deployer,
            store: store,
            settings: settings,
            output: output,
            caller: caller,
            input: input
        )
        do {
            try await command.run(in: context)
            return 0
        } catch is CancellationError {
            return 130
        } catch {
            output.error("slipway: " + error.userMessage)
            logger.info(
                "command failed",
                metadata: [
                    "command": "\(type(of: command).configuration.commandName ?? "")", "caller": "\(caller.name)",
                    "error": "\(error)",
                ]
            )
            return 1
        }
    }

    /// Prints an answer on stdout when it is not an error, else on stderr; returns its status.
    static func give(_ text: String, status: Int32, to output: SessionOutput) async -> Int32 {
        await output.write(text + "\n", to: status == 0 ? .standardOutput : .standardError)
        return status
    }
}
