// `slipway ssh-command --key NAME`: the forced command of an authorized_keys line, for hosts that
// keep OpenSSH. sshd has already proved the key; this hands `SSH_ORIGINAL_COMMAND` to the daemon,
// which decides exactly as the embedded SSH server would, and either relays the command's output
// or becomes git-receive-pack / git-upload-pack for the app's repository.
import ArgumentParser
import Foundation
import SlipwayBasics
import SlipwayFrontDoor

struct SSHCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssh-command",
        abstract: "Run the command of an SSH login through OpenSSH (the command= of `keys:authorized-keys` lines)."
    )

    @OptionGroup var connection: ConnectionOptions
    @Option(help: "The name of the key sshd let in.") var key: KeyName

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let commandLine = environment["SSH_ORIGINAL_COMMAND"] else { throw SSHCommandError.noCommand }
        let status = try ControlClient.send(
            .ssh(
                commandLine: commandLine,
                key: key.rawValue,
                environment: environment.filter { $0.key == "GIT_PROTOCOL" }
            ),
            socketPath: DataLocation.resolve(flag: connection.data).controlSocket
        )
        if status != 0 { throw ExitCode(status) }
    }
}

enum SSHCommandError: UserFacingError {
    case noCommand

    var description: String {
        switch self {
        case .noCommand: "this key runs Slipway commands only, not a shell; try `ssh git@HOST help`"
        }
    }
}
