// The SSH side of tests: key pairs made by the real ssh-keygen, the real OpenSSH client and
// git over it, and `slipway ssh-command` run the way sshd runs a forced command.
import Foundation
import SlipwayBasics

#if canImport(Glibc)
import Glibc
#endif

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

    /// The `ssh` options git and tests use: this key only, no prompts, no known_hosts file.
    public func sshOptions(port: Int) -> [String] {
        [
            "-p", "\(port)", "-i", privateKeyPath, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
        ]
    }

    /// For GIT_SSH_COMMAND.
    public func gitSSHCommand(port: Int) -> String { (["ssh"] + sshOptions(port: port)).joined(separator: " ") }

    /// Runs `commandLine` at `destination` with the real ssh client and this key, with `input` on stdin.
    public func ssh(
        _ destination: String,
        port: Int,
        _ commandLine: String,
        input: String = ""
    ) async throws -> (status: ExitStatus, output: String) {
        try await run("ssh", sshOptions(port: port) + [destination, commandLine], input: input)
    }
}

public enum SSHTestError: Error {
    case keygen(String)
    case sshdDidNotStart(String)
}

/// Runs `executable` with `input` as its stdin (through a file and bash's redirection).
public func run(
    _ executable: String,
    _ arguments: [String],
    input: String,
    environment: [String: String] = toolEnvironment
) async throws -> (status: ExitStatus, output: String) {
    try await run(Command(executable, arguments, environment: environment), input: input)
}

/// Runs `command` with `input` as its stdin (through a file and bash's redirection).
public func run(_ command: Command, input: String) async throws -> (status: ExitStatus, output: String) {
    let file = try TemporaryDirectory("stdin")
    defer { file.remove() }
    try input.write(toFile: file.path + "/input", atomically: true, encoding: .utf8)
    var environment = command.environment
    environment["SLIPWAY_TEST_INPUT"] = file.path + "/input"
    return try await run(
        "bash",
        ["-c", #"exec "$0" "$@" < "$SLIPWAY_TEST_INPUT""#, command.executable] + command.arguments,
        environment: environment
    )
}

extension DaemonHarness {
    /// The CLI with `input` on its stdin, as the daemon's user.
    @discardableResult
    public func cli(_ arguments: [String], input: String) async throws -> (status: ExitStatus, output: String) {
        try await run(cliCommand(arguments), input: input)
    }

    /// `slipway ssh-command --key KEY` as sshd runs it for an authorized_keys line (as the daemon's user), with
    /// `commandLine` in SSH_ORIGINAL_COMMAND (nil: a login without a command).
    public func sshCommand(key: String, _ commandLine: String?) async throws -> (status: ExitStatus, output: String) {
        var command = cliCommand(["ssh-command", "--data", data, "--key", key])
        command.environment["SSH_ORIGINAL_COMMAND"] = commandLine
        return try await run(command)
    }
}

/// A real OpenSSH sshd on a loopback port, letting in the lines of `authorizedKeys` for the test daemons' user
/// (see ServiceUser). Stopped by the test with `stop()`, by its process id.
public final class OpenSSHServer: Sendable {
    public let port: Int
    public let process: ChildProcess
    public let user: String
    private let directory: TemporaryDirectory

    public init(authorizedKeys: String) async throws {
        directory = try TemporaryDirectory("sshd")
        port = freePort()
        if let name = ServiceUser.current.name {
            user = name
        } else {
            user = try await run("id", ["-un"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let path = directory.path
        try await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path + "/host_key"])
        try authorizedKeys.write(toFile: path + "/authorized_keys", atomically: true, encoding: .utf8)
        try """
        Port \(port)
        ListenAddress 127.0.0.1
        HostKey \(path)/host_key
        AuthorizedKeysFile \(path)/authorized_keys
        PidFile \(path)/sshd.pid
        UsePAM no
        StrictModes no
        PasswordAuthentication no
        KbdInteractiveAuthentication no

        """.write(toFile: path + "/sshd_config", atomically: true, encoding: .utf8)
        // sshd started as root wants its privilege separation directory.
        try? FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        process = try Spawner.start(
            Command("/usr/sbin/sshd", ["-D", "-e", "-f", path + "/sshd_config"], environment: toolEnvironment),
            logFile: path + "/sshd.log"
        )
        for _ in 0..<100 {
            if let fd = try? connectToLoopback(port: port, receiveTimeout: 1) {
                close(fd)
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let log = (try? String(contentsOfFile: path + "/sshd.log", encoding: .utf8)) ?? ""
        await stop()
        throw SSHTestError.sshdDidNotStart(log)
    }

    public func stop() async {
        _ = await process.stop(grace: .seconds(5))
        directory.remove()
    }
}
