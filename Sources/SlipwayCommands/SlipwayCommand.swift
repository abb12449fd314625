// SlipwayCommands: the `slipway` command line. `serve`, `hook` and `serve-static` run here;
// every admin command is parsed here (for help and early errors) and then sent to the daemon
// over the control socket, which parses it again with the same types and runs it.
import ArgumentParser
import Foundation
import SlipwayBasics
import SlipwayFrontDoor

public struct SlipwayCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "slipway",
        abstract: "Push-to-deploy for your own Linux host.",
        discussion: "Start the daemon with `slipway serve`; the other commands talk to it.",
        subcommands: [ServeCommand.self, HookCommand.self, SSHCommand.self, ServeStaticCommand.self]
            + AdminCommands.commands
    )

    public init() {}

    /// Local commands run in this process; admin commands go to the daemon.
    public static func main() async {
        // Whatever umask it was started with, what Slipway writes (the data directory, repositories pushed through
        // OpenSSH's forced command, logs) is its user's alone.
        umask(PrivateModes.umask)
        var arguments = Array(CommandLine.arguments.dropFirst())
        // Called `serve-static` (how a sandbox shows this binary to the static buildpack), it is that and only that.
        if (CommandLine.arguments.first as NSString?)?.lastPathComponent == ServeStaticCommand.configuration.commandName
        {
            arguments.insert(ServeStaticCommand.configuration.commandName!, at: 0)
        }
        do {
            var command = try parseAsRoot(arguments)
            if let admin = command as? any AdminCommand {
                let socket = DataLocation.resolve(flag: admin.connection.data).controlSocket
                var input: Data?
                if admin.readsInput {
                    guard isatty(STDIN_FILENO) == 0 else { throw InputError.terminal }
                    input = try ControlClient.readStandardInput()
                }
                Foundation.exit(
                    try ControlClient.send(.command(arguments: arguments, input: input), socketPath: socket)
                )
            }
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if let line = AdminCommands.usageMistake(error, in: arguments) {
                FileHandle.standardError.write(Data((line + "\n").utf8))
                Foundation.exit(AdminCommands.exitCode(for: error).rawValue)
            }
            exit(withError: error)
        }
    }
}

/// Where the data directory is: `--data`, else `$SLIPWAY_DATA`, else `~/.slipway`.
enum DataLocation {
    static func resolve(flag: String?) -> DataDirectory {
        if let flag { return DataDirectory(root: absolute(flag)) }
        if let variable = ProcessInfo.processInfo.environment["SLIPWAY_DATA"], !variable.isEmpty {
            return DataDirectory(root: absolute(variable))
        }
        return DataDirectory(root: FileManager.default.homeDirectoryForCurrentUser.path + "/.slipway")
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }
}

enum InputError: UserFacingError {
    case terminal

    var description: String {
        switch self {
        case .terminal: "this command reads a public key from stdin; pipe it in, e.g. `< ~/.ssh/id_ed25519.pub`"
        }
    }
}
