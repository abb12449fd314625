// The SSH server against real OpenSSH clients and real git: logins, exec results and statuses,
// refusals, git push and clone with hooks, program lifetimes, shutdown, and the host key file.
import Foundation
import Logging
import SlipwayBasics
import SlipwayFrontDoor
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite(.timeLimit(.minutes(2))) struct SSHServerTests {
    @Test func anInProcessCommandWritesBothStreamsThenItsStatus() async throws {
        try await ServerFixture.with { server in
            // A held stdin never sends EOF, as from a terminal; -n and /dev/null send it at once.
            for (options, stdin) in [([String](), Input.held), (["-n"], .held), ([], .empty)] {
                let outcome = try await server.ssh(options + ["git@127.0.0.1", "hello"], stdin: stdin)
                #expect(outcome.code == 3, "\(options) \(stdin): \(outcome)")
                #expect(outcome.stdout == "hello\n")
                #expect(outcome.stderr.contains("warn"))
            }
            let hostKey = try String(contentsOfFile: server.directory + "/host_key.pub", encoding: .utf8)
            let knownHosts = try String(contentsOfFile: server.directory + "/known_hosts", encoding: .utf8)
            #expect(knownHosts.contains(hostKey.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
    }

    @Test func anUnknownKeyIsDenied() async throws {
        try await ServerFixture.with { server in
            let outcome = try await server.ssh(["git@127.0.0.1", "hello"], key: server.unknownKey)
            #expect(outcome.code == 255)
            #expect(outcome.stderr.contains("Permission denied (publickey)"))
            #expect(outcome.stdout.isEmpty)
        }
    }

    @Test func anECDSAKeyLogsIn() async throws {
        try await ServerFixture.with { server in
            let outcome = try await server.ssh(["git@127.0.0.1", "hello"], key: server.directory + "/ecdsa")
            #expect(outcome.code == 3)
            #expect(outcome.stdout == "hello\n")
        }
    }

    /// NIOSSH cannot read RSA keys; a client that offers one first still gets in with the next.
    @Test func anRSAKeyOfferedFirstDoesNotSpoilTheLogin() async throws {
        try await ServerFixture.with { server in
            let rsa = server.directory + "/rsa"
            #expect(try await run("/usr/bin/ssh-keygen", ["-q", "-t", "rsa", "-N", "", "-f", rsa]).succeeded)
            let outcome = try await server.ssh(["-i", rsa, "git@127.0.0.1", "hello"])
            #expect(outcome.code == 3, "\(outcome.stderr)")
            #expect(outcome.stdout == "hello\n")
        }
    }

    @Test func aKnownKeyForAnotherUserIsDenied() async throws {
        try await ServerFixture.with { server in
            let outcome = try await server.ssh(["root@127.0.0.1", "hello"])
            #expect(outcome.code == 255)
            #expect(outcome.stderr.contains("Permission denied (publickey)"))
        }
    }

    @Test func aCommandThatReadsInputGetsStdinToItsEnd() async throws {
        try await ServerFixture.with { server in
            let outcome = try await server.ssh(["git@127.0.0.1", "cat-input"], stdin: .bytes(Array("data\n".utf8)))
            #expect(outcome.code == 0)
            #expect(outcome.stdout == "got 5 bytes: data\n")
        }
    }

    @Test func inputOver64KiBIsRefused() async throws {
        try await ServerFixture.with { server in
            let outcome = try await server.ssh(
                ["git@127.0.0.1", "cat-input"],
                stdin: .bytes([UInt8](repeating: 65, count: 70_000))
            )
            #expect(outcome.code == 1)
            #expect(outcome.stderr.contains("input too long (over 64 KiB)"))
            #expect(outcome.stdout.isEmpty)
        }
    }

    @Test func aRefusalIsItsMessageAndStatus() async throws {
        try await ServerFixture.with { server in
            let outcome = try await server.ssh(["git@127.0.0.1", "refuse"])
            #expect(outcome.code == 42)
            #expect(outcome.stderr == "not for you\n")
            #expect(outcome.stdout.isEmpty)
        }
    }

    @Test func aCommandOver8KiBIsRefusedWithoutAskingTheGate() async throws {
        try await ServerFixture.with { server in
            let outcome = try await server.ssh(["git@127.0.0.1", String(repeating: "x", count: 9000)])
            #expect(outcome.code == 1)
            #expect(outcome.stderr.contains("command too long (over 8 KiB)"))
            #expect(!outcome.stderr.contains("unknown command"))
        }
    }

    @Test func aProgramsOutputAndExitStatusPassThrough() async throws {
        try await ServerFixture.with { server in
            for stdin in [Input.held, .empty] {
                let outcome = try await server.ssh(["git@127.0.0.1", "exit5"], stdin: stdin)
                #expect(outcome.code == 5, "\(stdin): \(outcome)")
                #expect(outcome.stdout == "out\n")
                #expect(outcome.stderr == "err\n")
            }
        }
    }

    @Test func aProgramKilledBySignalNEndsWith128PlusN() async throws {
        try await ServerFixture.with { server in
            let outcome = try await server.ssh(["git@127.0.0.1", "killed"])
            #expect(outcome.code == 128 + SIGTERM)
        }
    }

    @Test func aProgramThatCannotStartIsReported() async throws {
        try await ServerFixture.with { server in
            let outcome = try await server.ssh(["git@127.0.0.1", "missing"])
            #expect(outcome.code == 127)
            #expect(outcome.stderr.contains("could not start /nonexistent/program"))
        }
    }

    @Test func aProgramGetsAllItsInputEvenWhenTheClientEndsItEarly() async throws {
        try await ServerFixture.with { server in
            let input = [UInt8](repeating: 7, count: 4 << 20)
            let outcome = try await server.ssh(["git@127.0.0.1", "count-input"], stdin: .bytes(input))
            #expect(outcome.code == 0, "\(outcome.stderr)")
            #expect(outcome.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(input.count)")
        }
    }

    @Test func aProgramsLargeOutputArrivesWholeBeforeItsStatus() async throws {
        try await ServerFixture.with { server in
            for stdin in [Input.held, .empty] {
                let outcome = try await server.ssh(["git@127.0.0.1", "big-output"], stdin: stdin)
                #expect(outcome.code == 0, "\(stdin): \(outcome.stderr)")
                #expect(outcome.stdout.utf8.count == 20_000_000)
            }
        }
    }

    @Test func onlyGitProtocolIsPassedFromTheClientsEnvironment() async throws {
        try await ServerFixture.with { server in
            let outcome = try await server.ssh([
                "-o", "SetEnv=GIT_PROTOCOL=version=2 OTHER=x", "git@127.0.0.1", "show-env",
            ])
            #expect(outcome.code == 0)
            #expect(outcome.stdout == "[version=2][]\n")
        }
    }

    @Test func aShellIsRefused() async throws {
        try await ServerFixture.with { server in
            let outcome = try await server.ssh(["-T", "git@127.0.0.1"])
            #expect(outcome.code == 255)
            #expect(outcome.stderr.contains("shell request failed"))
        }
    }

    @Test func portForwardingIsRefused() async throws {
        try await ServerFixture.with { server in
            let outcome = try await server.ssh([
                "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:9", "git@127.0.0.1", "hello",
            ])
            #expect(outcome.code == 255)
            #expect(outcome.stderr.contains("forwarding failed"))
        }
    }

    @Test func gitPushCloneAndHooksWorkThroughTheServer() async throws {
        try await ServerFixture.with { server in
            let root = server.directory
            #expect(
                try await run("/usr/bin/git", ["init", "-q", "--bare", "-b", "main", root + "/repos/repo.git"])
                    .succeeded
            )
            try writeHook(root + "/repos/repo.git/hooks/post-receive", "echo \"deployed by hook\"")
            #expect(try await server.git(["init", "-q", "-b", "main", root + "/work"]).succeeded)
            try "hello from the client\n".write(toFile: root + "/work/README", atomically: true, encoding: .utf8)
            #expect(try await server.git(["-C", root + "/work", "add", "README"]).succeeded)
            #expect(try await server.git(["-C", root + "/work", "commit", "-q", "-m", "first"]).succeeded)

            let push = try await server.git(["-C", root + "/work", "push", server.url("repo.git"), "main"])
            #expect(push.succeeded, "\(push)")
            #expect(push.stderr.contains("remote: deployed by hook"))
            let pushed = try await server.git(["--git-dir", root + "/repos/repo.git", "rev-parse", "refs/heads/main"])
            let local = try await server.git(["-C", root + "/work", "rev-parse", "HEAD"])
            #expect(pushed.stdout == local.stdout && !local.stdout.isEmpty)

            let clone = try await server.git(["clone", "-q", server.url("repo.git"), root + "/clone"])
            #expect(clone.succeeded, "\(clone)")
            let readme = try String(contentsOfFile: root + "/clone/README", encoding: .utf8)
            #expect(readme == "hello from the client\n")

            #expect(try await run("/usr/bin/git", ["init", "-q", "--bare", root + "/repos/closed.git"]).succeeded)
            try writeHook(root + "/repos/closed.git/hooks/pre-receive", "echo \"no pushes here\" >&2; exit 1")
            let rejected = try await server.git(["-C", root + "/work", "push", server.url("closed.git"), "main"])
            #expect(rejected.code != 0)
            #expect(rejected.stderr.contains("[remote rejected]"))
            #expect(rejected.stderr.contains("remote: no pushes here"))
            let ref = try await server.git([
                "--git-dir", root + "/repos/closed.git", "rev-parse", "-q", "--verify", "main",
            ])
            #expect(ref.code != 0)
        }
    }

    @Test func aClientThatDisconnectsTakesItsProgramWithIt() async throws {
        try await ServerFixture.with { server in
            let client = try start("/usr/bin/ssh", server.sshArguments() + ["git@127.0.0.1", "sleep"], stdin: .held)
            defer { if client.child.exitStatus == nil { client.child.signalGroup(SIGKILL) } }
            let pid = try await waitForPid(server.directory + "/sleep.pid")
            client.child.signalGroup(SIGKILL)
            _ = try await client.wait()
            #expect(try await processEnds(pid, within: .seconds(10)))
        }
    }

    /// A server with one known key in `directory`, for a test that cancels it (shuts it down) itself.
    private func startServing(
        in directory: String,
        finishingWithin timeout: Duration
    ) async throws -> (ServerFixture, serving: Task<Void, any Error>) {
        let keygen = try await run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", directory + "/id"])
        #expect(keygen.succeeded)
        let server = try SSHServer(
            host: "127.0.0.1",
            port: 0,
            hostKeyPath: directory + "/host_key",
            gate: TestGate(knownKeys: [try ServerFixture.publicKey(directory + "/id")], root: directory),
            logger: quietLogger
        )
        let (ports, announce) = AsyncStream.makeStream(of: Int.self)
        let serving = Task {
            defer { announce.finish() }
            try await server.run(finishingWithin: timeout) { announce.yield($0) }
        }
        var portIterator = ports.makeAsyncIterator()
        let port = try #require(await portIterator.next())
        return (ServerFixture(directory: directory, port: port), serving)
    }

    @Test func cancellingRunClosesThePortAndEndsSessions() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (fixture, serving) = try await startServing(in: directory, finishingWithin: .zero)
        let port = fixture.port
        let client = try start("/usr/bin/ssh", fixture.sshArguments() + ["git@127.0.0.1", "sleep"], stdin: .held)
        defer {
            serving.cancel()
            if client.child.exitStatus == nil { client.child.signalGroup(SIGKILL) }
        }
        let pid = try await waitForPid(directory + "/sleep.pid")

        let cancelled = ContinuousClock.now
        serving.cancel()
        try await serving.value
        #expect(ContinuousClock.now - cancelled < .seconds(6))
        #expect(connectionRefused(port: port))
        #expect(kill(pid, 0) == -1 && errno == ESRCH)
        let outcome = try await client.wait(timeout: .seconds(10))
        #expect(outcome.code != 0)
    }

    @Test func aShutdownCancelsAnInProcessCommandAndItsLastWordsReachTheClient() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (fixture, serving) = try await startServing(in: directory, finishingWithin: .seconds(5))
        let port = fixture.port
        let client = try start(
            "/usr/bin/ssh",
            fixture.sshArguments() + ["git@127.0.0.1", "until-cancelled"],
            stdin: .held
        )
        defer {
            serving.cancel()
            if client.child.exitStatus == nil { client.child.signalGroup(SIGKILL) }
        }
        for _ in 0..<200 where !FileManager.default.fileExists(atPath: directory + "/until-cancelled.started") {
            try await Task.sleep(for: .milliseconds(25))
        }

        serving.cancel()
        try await serving.value
        let outcome = try await client.wait(timeout: .seconds(10))
        #expect(outcome.code == 75, "\(outcome)")
        #expect(outcome.stderr == "interrupted: the server is stopping\n", "\(outcome)")
        #expect(connectionRefused(port: port))
    }

    @Test func theHostKeyIsMadeOnceAndKeptPrivate() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/ssh_host_ed25519_key"
        let gate = TestGate(knownKeys: [], root: directory)
        let first = try SSHServer(host: "127.0.0.1", port: 0, hostKeyPath: path, gate: gate, logger: quietLogger)
        let second = try SSHServer(host: "127.0.0.1", port: 0, hostKeyPath: path, gate: gate, logger: quietLogger)
        #expect(first.hostPublicKey.hasPrefix("ssh-ed25519 AAAA"))
        #expect(first.hostPublicKey == second.hostPublicKey)
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(info.st_size == 32)
        #expect(try String(contentsOfFile: path + ".pub", encoding: .utf8) == first.hostPublicKey + "\n")
    }

    @Test func aMalformedHostKeyIsOneClearError() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/key"
        try "not a key".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: SSHServerError.self) {
            try SSHServer(
                host: "127.0.0.1",
                port: 0,
                hostKeyPath: path,
                gate: TestGate(knownKeys: [], root: directory),
                logger: quietLogger
            )
        }
        #expect(error?.description.contains("is not a 32-byte Ed25519 seed") == true)
    }

    @Test func anUnknownHostIsOneClearError() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try SSHServer(
            host: "no-such-host.invalid",
            port: 2222,
            hostKeyPath: directory + "/key",
            gate: TestGate(knownKeys: [], root: directory),
            logger: quietLogger
        )
        let error = await #expect(throws: SSHServerError.self) { try await server.run() }
        #expect(
            error?.description
                == "could not listen for SSH on no-such-host.invalid:2222: unknown host; "
                + "pass --ssh with another address or `off`"
        )
    }

    @Test func aPortInUseIsOneClearError() async throws {
        try await ServerFixture.with { server in
            let second = try SSHServer(
                host: "127.0.0.1",
                port: server.port,
                hostKeyPath: server.directory + "/host_key",
                gate: TestGate(knownKeys: [], root: server.directory),
                logger: quietLogger
            )
            let error = await #expect(throws: SSHServerError.self) { try await second.run() }
            #expect(
                error?.description
                    == "could not listen for SSH on 127.0.0.1:\(server.port): address already in use; "
                    + "pass --ssh with another address or `off`"
            )
        }
    }
}

private func writeHook(_ path: String, _ body: String) throws {
    try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
    chmod(path, 0o755)
}

/// The pid the `sleep` command writes once its program runs.
private func waitForPid(_ path: String) async throws -> pid_t {
    for _ in 0..<200 {
        if let text = try? String(contentsOfFile: path, encoding: .utf8),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            return pid
        }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw FixtureError("the program never wrote \(path)")
}
