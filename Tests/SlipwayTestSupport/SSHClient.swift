// The SSH side of tests: key pairs made by the real ssh-keygen, the real OpenSSH client and
// git over it, and `slipway ssh-command` run the way sshd runs a forced command.
import Foundation
import SlipwayBasics

/// A key pair in a test folder (ed25519 unless told).
public struct SSHKeyPair: Sendable {
    public let privateKeyPath: String
    public var publicKeyPath: String { privateKeyPath + ".pub" }

    public init(in directory: String, name: String, type: String = "ed25519") async throws {
        privateKeyPath = directory + "/" + name
        let made = try await run("ssh-keygen", ["-q", "-t", type, "-N", "", "-C", name, "-f", privateKeyPath])
        guard made.status.succeeded else { throw SSHTestError.keygen(made.output) }
    }

    public func publicLine() throws -> String { try String(contentsOfFile: publicKeyPath, encoding: .utf8) }

    /// The `ssh` command line git and tests use: this key only, no prompts, no known_hosts file.
    public func sshCommand(port: Int) -> [String] {
        [
            "ssh", "-p", "\(port)", "-i", privateKeyPath, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
        ]
    }
}

public enum SSHTestError: Error {
    case keygen(String)
}

/// Runs `executable` with `input` as its stdin (through a file and bash's redirection).
public func run(
    _ executable: String,
    _ arguments: [String],
    input: String,
    environment: [String: String] = toolEnvironment
) async throws -> (status: ExitStatus, output: String) {
    let file = try TemporaryDirectory("stdin")
    defer { file.remove() }
    try input.write(toFile: file.path + "/input", atomically: true, encoding: .utf8)
    var environment = environment
    environment["SLIPWAY_TEST_INPUT"] = file.path + "/input"
    return try await run(
        "bash",
        ["-c", #"exec "$0" "$@" < "$SLIPWAY_TEST_INPUT""#, executable] + arguments,
        environment: environment
    )
}

extension DaemonHarness {
    /// The CLI with `input` on its stdin.
    @discardableResult
    public func cli(_ arguments: [String], input: String) async throws -> (status: ExitStatus, output: String) {
        var environment = toolEnvironment
        environment["SLIPWAY_DATA"] = data
        return try await run(Self.binary, arguments, input: input, environment: environment)
    }

    /// `slipway ssh-command --key KEY` as sshd runs it for an authorized_keys line, with
    /// `commandLine` in SSH_ORIGINAL_COMMAND (nil: a login without a command).
    public func sshCommand(key: String, _ commandLine: String?) async throws -> (status: ExitStatus, output: String) {
        var environment = toolEnvironment
        environment["SSH_ORIGINAL_COMMAND"] = commandLine
        return try await run(Self.binary, ["ssh-command", "--data", data, "--key", key], environment: environment)
    }
}
