// DaemonHarness: a real `slipway serve` in a temporary data directory on a free loopback port,
// driven through the real CLI and stopped by the test by its process id. The daemon, its CLI and the
// git pushes to it run as the unprivileged ServiceUser, as in production.
import Foundation
import SlipwayBasics
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where the daemons' binary is copied when their user cannot reach the package's build (see `binary`).
private let installCopyPath = FileManager.default.temporaryDirectory
    .appendingPathComponent("slipway-test-install-\(getpid())").path

public final class DaemonHarness: Sendable {
    /// The binary the daemons run: the package's own build when the service user can run it and read the hooks
    /// and buildpacks beside it, else a copy it can (a clone under /root, say, is root's alone).
    public static let binary: String = {
        let built = packageRoot + "/.build/debug/slipway"
        let user = ServiceUser.current
        let shared = ["hooks/post-receive", "buildpacks/nodejs/bin/compile"].map { packageRoot + "/" + $0 }
        if user.canRead(built, executing: true) && shared.allSatisfy({ user.canRead($0, executing: true) }) {
            return built
        }
        do {
            return try installCopy(of: built)
        } catch {
            preconditionFailure("could not copy slipway where \(user.name ?? "the test user") can run it: \(error)")
        }
    }()

    /// The binary and its share folder, laid out as an install (`bin/slipway`, `share/slipway/`), readable by all.
    private static func installCopy(of built: String) throws -> String {
        let files = FileManager.default
        let install = installCopyPath
        // Removed when the test process exits.
        atexit { try? FileManager.default.removeItem(atPath: installCopyPath) }
        try files.createDirectory(atPath: install + "/bin", withIntermediateDirectories: true)
        try files.createDirectory(atPath: install + "/share/slipway", withIntermediateDirectories: true)
        try files.copyItem(atPath: built, toPath: install + "/bin/slipway")
        for folder in ["hooks", "buildpacks"] {
            try files.copyItem(atPath: packageRoot + "/" + folder, toPath: install + "/share/slipway/" + folder)
        }
        let walker = files.enumerator(atPath: install)
        for item in [install] + (walker?.allObjects as? [String] ?? []).map({ install + "/" + $0 }) {
            var status = stat()
            guard lstat(item, &status) == 0, status.st_mode & S_IFMT != S_IFLNK else { continue }
            let executable = status.st_mode & S_IFMT == S_IFDIR || status.st_mode & 0o100 != 0
            chmod(item, executable ? 0o755 : 0o644)
        }
        return install + "/bin/slipway"
    }

    /// Who the daemon, its CLI and the pushes to it run as.
    public let user: ServiceUser

    public let directory: TemporaryDirectory
    public let port: Int
    /// The embedded SSH server's loopback port.
    public let sshPort: Int
    public let httpsPort: Int
    public let process: ChildProcess
    public var data: String { directory.path + "/data" }
    public var log: String { directory.path + "/daemon.log" }

    /// Whether a deploy step is held open, by the daemon's own test hook (`SLIPWAY_TEST_HOLD_STEP`, which says so
    /// in `<data>/holding-STEP`) or by the hold-step fixture (which says so in its output, from its sandbox).
    public func isHolding(_ step: String) -> Bool {
        if FileManager.default.fileExists(atPath: data + "/holding-" + step) { return true }
        let apps = data + "/apps"
        let logs = ((try? FileManager.default.contentsOfDirectory(atPath: apps)) ?? []).flatMap { app in
            ["release-logs", "logs"].flatMap { folder in
                let path = "\(apps)/\(app)/\(folder)"
                return ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).map { path + "/" + $0 }
            }
        }
        return logs.contains {
            (try? String(contentsOfFile: $0, encoding: .utf8))?.contains("holding the \(step) step") == true
        }
    }

    /// Starts the daemon (with extra `serve` arguments) and waits until its control socket answers.
    /// Given a daemon that was stopped, it starts on that daemon's data directory and port again.
    /// With `dataLimit` (as `64m`), the data directory is a tmpfs of that size, so that a test can fill it; that
    /// needs root.
    /// `environment` is added to the daemon's. With `cpu`, the daemon runs pinned to that CPU (taskset). With
    /// `asRoot` (only when the tests run as root), the daemon, its CLI and pushes run as root.
    public init(
        arguments: [String] = [],
        environment extra: [String: String] = [:],
        restartingIn previous: DaemonHarness? = nil,
        dataLimit: String? = nil,
        pinnedTo cpu: Int? = nil,
        asRoot: Bool = false
    ) async throws {
        directory = try previous?.directory ?? TemporaryDirectory("daemon")
        port = previous?.port ?? freePort()
        sshPort = previous?.sshPort ?? freePort()
        httpsPort = previous?.httpsPort ?? freePort()
        let user = previous?.user ?? (asRoot ? ServiceUser.root : ServiceUser.current)
        self.user = user
        if previous == nil {
            try FileManager.default.createDirectory(atPath: directory.path + "/home", withIntermediateDirectories: true)
            try user.own(directory.path)
        }
        if let dataLimit {
            let data = directory.path + "/data"
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            let options = "size=\(dataLimit),mode=0700,uid=\(user.uid),gid=\(user.gid)"
            let mounted = try await run("mount", ["-t", "tmpfs", "-o", options, "tmpfs", data])
            guard mounted.status.succeeded else { throw HarnessError.cannotMount(mounted.output) }
        }
        // As systemd starts it: a small environment of its own, nothing of the test runner's.
        let environment = Self.userEnvironment(home: directory.path + "/home").merging(extra) { $1 }
        let serve =
            [
                Self.binary, "serve", "--data", directory.path + "/data", "--http", "127.0.0.1:\(port)",
                "--ssh", "127.0.0.1:\(sshPort)", "--https", "127.0.0.1:\(httpsPort)", "--drain-timeout", "5",
                "--stop-grace", "5",
            ] + arguments
        let command = cpu.map { ["/usr/bin/taskset", "-c", "\($0)"] + serve } ?? serve
        process = try Spawner.start(
            user.command(Command(command[0], Array(command.dropFirst()), environment: environment)),
            logFile: directory.path + "/daemon.log"
        )
        Self.started.withLock { $0[directory.path, default: []].append(process) }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let status = process.exitStatus {
                throw HarnessError.daemonExited(status, log: (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
            }
            if (try? await cli(["apps"]))?.status == .exited(0),
                (try? HTTPConnection(port: port).get("/", host: "x")) != nil
            {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        await stop()
        throw HarnessError.notReady
    }

    /// The environment the daemon's user runs things with: its own home, and git told to trust the tests' work
    /// trees, which root made.
    static func userEnvironment(home: String) -> [String: String] {
        [
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
            "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*",
        ]
    }

    /// The real CLI with `arguments`, run as the daemon's user against this daemon.
    public func cliCommand(_ arguments: [String]) -> Command {
        var environment = Self.userEnvironment(home: directory.path + "/home")
        environment["SLIPWAY_DATA"] = data
        return user.command(Command(Self.binary, arguments, environment: environment))
    }

    /// Runs the real CLI against this daemon, as the daemon's user.
    @discardableResult
    public func cli(_ arguments: [String]) async throws -> (status: ExitStatus, output: String) {
        try await run(cliCommand(arguments))
    }

    /// Pushes the work tree's `branch` to the app's repository with the real git client, as the daemon's user.
    public func push(
        _ workTree: String,
        app: String,
        branch: String = "main"
    ) async throws -> (status: ExitStatus, output: String) {
        var environment = Self.userEnvironment(home: directory.path + "/home")
        for name in ["GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"] {
            environment[name] = toolEnvironment[name]
        }
        let push = Command(
            "git",
            // `branch` may be a whole refspec (`main:feature`).
            ["push", "--quiet", data + "/repos/\(app).git", branch.contains(":") ? branch : "\(branch):\(branch)"],
            environment: environment,
            workingDirectory: workTree
        )
        return try await run(user.command(push))
    }

    /// SIGTERM, then wait. The daemon leaves its apps running, as in production; unless `leavingApps`
    /// (for a test that restarts the daemon to adopt them), they are stopped here by their process ids.
    public func stop(leavingApps: Bool = false) async {
        _ = await process.stop(grace: .seconds(20))
        if !leavingApps { await stopApps() }
    }

    /// SIGKILL: the daemon dies at once, as in a crash; its apps run on.
    public func kill() async {
        process.signalGroup(SIGKILL)
        _ = await process.waitForExit()
    }

    /// The processes the daemon started for its apps (instances, builds) that still run.
    public func appProcesses() -> [ProcessTable.Entry] {
        ProcessTable.processes(carrying: ["SLIPWAY_DATA": data])
    }

    /// Stops every process the daemon started for its apps: SIGTERM to each group, SIGKILL after 5 s.
    public func stopApps() async {
        await ProcessTable.stop(processGroups: Set(appProcesses().map(\.processGroup)), grace: .seconds(5))
    }

    /// Every daemon started on a data directory (restarts included), so that `with` stops them all.
    private static let started = Mutex<[String: [ChildProcess]]>([:])

    /// Stops every daemon started on this one's data directory that still runs, and their apps.
    func stopAll() async {
        let daemons = Self.started.withLock { $0.removeValue(forKey: directory.path) ?? [] }
        for daemon in daemons { _ = await daemon.stop(grace: .seconds(20)) }
        await stopApps()
    }

    public func remove() {
        // A tmpfs data directory (see `dataLimit`) goes first; elsewhere this fails harmlessly.
        umount(data)
        directory.remove()
    }
}

public enum HarnessError: Error, CustomStringConvertible {
    case daemonExited(ExitStatus, log: String)
    case notReady
    case failed(any Error, log: String)
    case cannotMount(String)

    public var description: String {
        switch self {
        case .failed(let error, let log): "\(error)\n--- daemon log ---\n\(log)"
        case .daemonExited(let status, let log): "the daemon \(status):\n\(log)"
        case .notReady: "the daemon did not answer within 30 s"
        case .cannotMount(let output): "could not mount a tmpfs for the data directory: \(output)"
        }
    }
}

extension DaemonHarness {
    /// Runs `body` against a fresh daemon and a scratch work folder; whatever happens, the daemon
    /// is stopped and both are removed, and a failure comes with the daemon's log.
    public static func with(
        arguments: [String] = [],
        environment: [String: String] = [:],
        dataLimit: String? = nil,
        pinnedTo cpu: Int? = nil,
        asRoot: Bool = false,
        _ body: (DaemonHarness, _ work: String) async throws -> Void
    ) async throws {
        await DaemonSlots.shared.acquire()
        let daemon: DaemonHarness
        do {
            daemon = try await DaemonHarness(
                arguments: arguments,
                environment: environment,
                dataLimit: dataLimit,
                pinnedTo: cpu,
                asRoot: asRoot
            )
        } catch {
            await DaemonSlots.shared.release()
            throw error
        }
        let work = try TemporaryDirectory("work")
        do {
            try daemon.user.own(work.path)
            try await body(daemon, work.path)
        } catch {
            await daemon.stopAll()
            let log = (try? String(contentsOfFile: daemon.log, encoding: .utf8)) ?? ""
            work.remove()
            daemon.remove()
            await DaemonSlots.shared.release()
            throw HarnessError.failed(error, log: log)
        }
        await daemon.stopAll()
        work.remove()
        daemon.remove()
        await DaemonSlots.shared.release()
    }
}

/// At most three daemon tests at once: each builds and boots real apps, and on a two-core machine a crowd of
/// them starves every daemon's timers and health checks until tests fail for want of CPU, not for a bug.
actor DaemonSlots {
    static let shared = DaemonSlots()

    private var slots = Slots(limit: 3)

    func acquire() async {
        guard !slots.tryAcquire() else { return }
        await withCheckedContinuation { slots.enqueue($0) }
    }

    func release() { slots.release() }
}
