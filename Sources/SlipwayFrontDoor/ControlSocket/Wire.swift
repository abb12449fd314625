// The control socket's wire format: one JSON request line from the client, then JSON reply
// lines (output as it happens, then the exit status) from the daemon.
import Foundation
import SlipwayBasics

public enum ControlRequest: Codable, Sendable, Equatable {
    /// An admin command line of the host's own user, exactly as typed after `slipway`, with the
    /// stdin it read when the command takes input.
    case command(arguments: [String], input: Data?)
    /// From the post-receive hook: `ref` of `app` now points at `revision`. `key` names the SSH
    /// key that pushed (nil for a push on the host itself).
    case push(app: String, ref: String, revision: String, key: String?)
    /// From the proc-receive hook of an app with atomic pushes: git received `revision` for `ref`, which points at
    /// `previous` (nil: a new branch), and leaves it to the daemon to deploy it and move the branch.
    case pushing(app: String, ref: String, previous: String?, revision: String, key: String?)
    /// From `slipway ssh-command`: an SSH command line of the key `key`, arriving through OpenSSH.
    case ssh(commandLine: String, key: String, environment: [String: String])
}

public enum ControlReply: Codable, Sendable, Equatable {
    case stdout(String)
    case stderr(String)
    case exit(Int32)
    /// Become this program, keeping your stdin, stdout and stderr: to `slipway ssh-command` (git-receive-pack,
    /// git-upload-pack, `run`), and to the CLI for `run`.
    case exec(executable: String, arguments: [String], environment: [String: String], workingDirectory: String?)
    /// To `slipway ssh-command` only: send your stdin, read to its end, as one `ControlInput` line.
    case sendInput
    /// To the proc-receive hook: the push is rejected, for this reason (one line), which git shows the pusher.
    case rejection(String)
}

extension ControlReply {
    static func exec(_ command: Command) -> ControlReply {
        .exec(
            executable: command.executable,
            arguments: command.arguments,
            environment: command.environment,
            workingDirectory: command.workingDirectory
        )
    }
}

/// The stdin a command asked for with `sendInput`.
public struct ControlInput: Codable, Sendable {
    public var data: Data

    public init(data: Data) { self.data = data }
}

/// The most stdin a command reads (a public key is well under 1 KiB).
public let maximumCommandInput = 64 * 1024

enum Wire {
    static func encode<T: Encodable>(_ value: T) -> Data {
        var data = (try? JSONEncoder().encode(value)) ?? Data()
        data.append(UInt8(ascii: "\n"))
        return data
    }

    static func decode<T: Decodable>(_ type: T.Type, from line: some Sequence<UInt8>) throws -> T {
        try JSONDecoder().decode(type, from: Data(line))
    }
}
