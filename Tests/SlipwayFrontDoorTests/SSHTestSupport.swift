// Test support for the SSH server: a gate with fixed answers, a running server on a loopback port
// with a client key it knows, and real `ssh`, `ssh-keygen` and `git` processes bounded in time.
import Foundation
import Logging
import SlipwayBasics
import SlipwayFrontDoor

#if canImport(Glibc)
import Glibc
#endif

/// Knows some keys and answers a few fixed command lines; git's commands run on repositories under `root`.
struct TestGate: SSHGate {
    let knownKeys: Set<String>
    let root: String

    func keyName(for publicKey: String, user: String) async -> String? {
        knownKeys.contains(publicKey) && user == "git" ? "tester" : nil
    }

    func plan(for commandLine: String, keyName: String, environment: [String: String]) async -> SSHPlan {
        let path = "/usr/bin:/bin"
        switch commandLine {
        case "hello":
            return .inProcess(readsInput: false) { _, output in
                await output.write("hello\n", to: .standardOutput)
                await output.write("warn\n", to: .standardError)
                return 3
            }
        case "cat-input":
            return .inProcess(readsInput: true) { input, output in
                await output.write(
                    "got \(input.count) bytes: " + String(decoding: input, as: UTF8.self),
                    to: .standardOutput
                )
                return 0
            }
        case "until-cancelled":
            // Like a deploy run over SSH: it goes on until the server shuts down, then says so.
            return .inProcess(readsInput: false) { [root] _, output in
                _ = FileManager.default.createFile(atPath: root + "/until-cancelled.started", contents: nil)
                while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(20)) }
                await output.write("interrupted: the server is stopping\n", to: .standardError)
                return 75
            }
        case "refuse":
            return .refuse(message: "not for you", status: 42)
        case "exit5":
            return .program(Command("/bin/sh", ["-c", "echo out; echo err >&2; exit 5"], environment: ["PATH": path]))
        case "count-input":
            // The gate's pause has the first data arrive before the program runs; the program's pause lets the
            // pipe fill, so the client's EOF arrives while writes to stdin still queue.
            try? await Task.sleep(for: .milliseconds(200))
            return .program(Command("/bin/sh", ["-c", "sleep 0.3; wc -c"], environment: ["PATH": path]))
        case "big-output":
            return .program(Command("/bin/sh", ["-c", "head -c 20000000 /dev/zero"], environment: ["PATH": path]))
        case "killed":
            return .program(Command("/bin/sh", ["-c", "kill -TERM $$"], environment: ["PATH": path]))
        case "missing":
            return .program(Command("/nonexistent/program", [], environment: ["PATH": path]))
        case "show-env":
            return .program(Command("/bin/sh", ["-c", "echo \"[$GIT_PROTOCOL][$OTHER]\""], environment: environment))
        case "sleep":
            // The shell's pid is the program's: `exec` keeps it for sleep.
            let script = "echo $$ > \(root)/sleep.pid; exec sleep 30"
            return .program(Command("/bin/sh", ["-c", script], environment: ["PATH": path]))
        default:
            let words = commandLine.split(separator: " ", maxSplits: 1).map(String.init)
            guard words.count == 2, words[0] == "git-receive-pack" || words[0] == "git-upload-pack" else {
                return .refuse(message: "unknown command: \(commandLine)", status: 127)
            }
            let repository = root + "/repos" + words[1].trimmingCharacters(in: CharacterSet(charactersIn: "'"))
            return .program(
                Command(words[0], [repository], environment: environment.merging(["PATH": path]) { $1 })
            )
        }
    }
}

/// A running test server with its temporary directory and client keys: it knows `id` and `ecdsa`, not `other`.
struct ServerFixture: Sendable {
    let directory: String
    let port: Int

    var knownKey: String { directory + "/id" }
    var unknownKey: String { directory + "/other" }

    /// `ssh` with options that read no user configuration and trust the server on first sight.
    func sshArguments(key: String? = nil) -> [String] {
        [
            "-F", "/dev/null", "-i", key ?? knownKey, "-p", "\(port)",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=\(directory)/known_hosts",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
        ]
    }

    func ssh(_ arguments: [String], key: String? = nil, stdin: Input = .held) async throws -> Outcome {
        try await run("/usr/bin/ssh", sshArguments(key: key) + arguments, stdin: stdin)
    }

    /// The part of a `.pub` file the gate compares: type and key, without the comment.
    static func publicKey(_ privateKeyPath: String) throws -> String {
        let line = try String(contentsOfFile: privateKeyPath + ".pub", encoding: .utf8)
        return line.split(separator: " ").prefix(2).joined(separator: " ")
    }

    /// Runs git with its ssh set up for this server, and nothing from the user's or system's configuration.
    func git(_ arguments: [String]) async throws -> Outcome {
        let ssh = (["ssh"] + sshArguments().filter { $0 != "-p" && $0 != "\(port)" }).joined(separator: " ")
        return try await run(
            "/usr/bin/git",
            arguments,
            environment: [
                "PATH": "/usr/bin:/bin", "HOME": directory, "GIT_CONFIG_NOSYSTEM": "1", "GIT_SSH_COMMAND": ssh,
                "GIT_AUTHOR_NAME": "Tester", "GIT_AUTHOR_EMAIL": "tester@example.com",
                "GIT_COMMITTER_NAME": "Tester", "GIT_COMMITTER_EMAIL": "tester@example.com",
            ]
        )
    }

    func url(_ repository: String) -> String { "ssh://git@127.0.0.1:\(port)/\(repository)" }

    /// Starts a server with a fresh directory and keys, runs `body`, then cancels the server and waits for it.
    static func with(
        limits: SSHLimits = SSHLimits(),
        _ body: @Sendable (ServerFixture) async throws -> Void
    ) async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (name, type) in [("id", "ed25519"), ("other", "ed25519"), ("ecdsa", "ecdsa")] {
            let keygen = try await run(
                "/usr/bin/ssh-keygen",
                ["-q", "-t", type, "-N", "", "-C", "comment", "-f", directory + "/" + name]
            )
            guard keygen.succeeded else { throw FixtureError("ssh-keygen failed: \(keygen.stderr)") }
        }
        try FileManager.default.createDirectory(atPath: directory + "/repos", withIntermediateDirectories: true)
        let server = try SSHServer(
            host: "127.0.0.1",
            port: 0,
            hostKeyPath: directory + "/host_key",
            gate: TestGate(
                knownKeys: [try publicKey(directory + "/id"), try publicKey(directory + "/ecdsa")],
                root: directory
            ),
            limits: limits,
            logger: quietLogger
        )
        let (ports, announce) = AsyncStream.makeStream(of: Int.self)
        let serving = Task {
            defer { announce.finish() }
            try await server.run { announce.yield($0) }
        }
        var portIterator = ports.makeAsyncIterator()
        guard let port = await portIterator.next() else {
            try await serving.value
            throw FixtureError("the server stopped before listening")
        }
        do {
            try await body(ServerFixture(directory: directory, port: port))
        } catch {
            serving.cancel()
            _ = try? await serving.value
            throw error
        }
        serving.cancel()
        try await serving.value
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

let quietLogger = Logger(label: "ssh-test") { _ in SwiftLogNoOpLogHandler() }

func makeTemporaryDirectory() throws -> String {
    var template = Array((NSTemporaryDirectory() + "/ssh-dev-XXXXXX").utf8CString)
    guard let path = mkdtemp(&template) else { throw FixtureError("mkdtemp failed") }
    return String(cString: path)
}

// MARK: Processes

/// What a finished process left: its status and both outputs.
struct Outcome: Sendable {
    let status: ExitStatus
    let stdout: String
    let stderr: String

    var succeeded: Bool { status == .exited(0) }
    var code: Int32? { if case .exited(let code) = status { code } else { nil } }
}

/// A process's stdin: `held` is a pipe kept open until it exits (a terminal that never sends EOF), `empty` is
/// /dev/null, `bytes` a file with that content.
enum Input: Sendable {
    case held
    case empty
    case bytes([UInt8])
}

/// A started process whose outputs go to files.
struct RunningProcess: Sendable {
    let child: ChildProcess
    let stdoutPath: String
    let stderrPath: String
    let heldInput: Int32?

    /// Waits at most `timeout`, then kills the process's group; returns how it ended and what it wrote.
    func wait(timeout: Duration = .seconds(60)) async throws -> Outcome {
        let child = child
        let killer = Task {
            try await Task.sleep(for: timeout)
            child.signalGroup(SIGKILL)
        }
        let status = await child.waitForExit()
        killer.cancel()
        if let heldInput { Glibc.close(heldInput) }
        defer {
            unlink(stdoutPath)
            unlink(stderrPath)
        }
        return Outcome(
            status: status,
            stdout: try String(contentsOfFile: stdoutPath, encoding: .utf8),
            stderr: try String(contentsOfFile: stderrPath, encoding: .utf8)
        )
    }
}

func start(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String] = ["PATH": "/usr/bin:/bin"],
    stdin: Input = .empty
) throws -> RunningProcess {
    let base = NSTemporaryDirectory() + "/ssh-dev-run-\(UUID().uuidString)"
    let stdout = open(base + ".out", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    let stderr = open(base + ".err", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    defer {
        Glibc.close(stdout)
        Glibc.close(stderr)
    }
    var input: Int32 = -1
    var held: Int32?
    switch stdin {
    case .empty:
        break
    case .held:
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw FixtureError("pipe failed") }
        for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        (input, held) = (ends[0], ends[1])
    case .bytes(let bytes):
        try Data(bytes).write(to: URL(fileURLWithPath: base + ".in"))
        input = open(base + ".in", O_RDONLY | O_CLOEXEC)
        unlink(base + ".in")
    }
    defer { if input >= 0 { Glibc.close(input) } }
    let child = try Spawner.spawn(
        Command(executable, arguments, environment: environment),
        stdin: input,
        stdout: stdout,
        stderr: stderr
    )
    return RunningProcess(child: child, stdoutPath: base + ".out", stderrPath: base + ".err", heldInput: held)
}

func run(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String] = ["PATH": "/usr/bin:/bin"],
    stdin: Input = .empty
) async throws -> Outcome {
    try await start(executable, arguments, environment: environment, stdin: stdin).wait()
}

/// Whether a TCP connection to 127.0.0.1:`port` is refused.
func connectionRefused(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { Glibc.close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    return result == -1 && errno == ECONNREFUSED
}

/// Whether process `pid` is gone (not merely a zombie), polling for up to `timeout`.
func processEnds(_ pid: pid_t, within timeout: Duration) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if kill(pid, 0) == -1 && errno == ESRCH { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return false
}
