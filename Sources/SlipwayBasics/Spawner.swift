// Spawner: the one way Slipway starts child processes (buildpack scripts, git, app instances).
// Every child gets an argument array, an explicit environment, its own session (so a stop
// reaches its whole process group) and a clean signal mask.
import CSlipwaySpawn
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A program to run: no shell is involved unless `executable` is one.
public struct Command: Sendable {
    public var executable: String
    public var arguments: [String]
    public var environment: [String: String]
    public var workingDirectory: String?
    /// What tells a later daemon which app and release the process belongs to (`SLIPWAY_DATA`, `SLIPWAY_APP`,
    /// `SLIPWAY_RELEASE`), found in the environment of the process Slipway starts. A sandbox keeps them on its
    /// own outer process, out of the app's sight.
    public var markers: [String: String]
    /// The process is a sandbox, which exits with 128 + n when the command inside was killed by signal n.
    public var isSandbox = false

    public init(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String],
        workingDirectory: String? = nil,
        markers: [String: String] = [:]
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.markers = markers
    }

    public var displayLine: String { ([executable] + arguments).joined(separator: " ") }
}

/// How a child process ended.
public enum ExitStatus: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)
    /// The kernel killed it for using more memory than its limit (bytes) allowed.
    case outOfMemory(limit: Int)
    /// An adopted process ended: it is not our child, so its status went to its parent.
    case unknown

    public var succeeded: Bool { self == .exited(0) }

    /// The status as a shell reports it: 128 + n for a kill by signal n, 255 when unknown.
    public var shellCode: Int32 {
        switch self {
        case .exited(let code): code
        case .signalled(let signal): 128 + signal
        case .outOfMemory: 128 + SIGKILL
        case .unknown: 255
        }
    }

    public var description: String {
        switch self {
        case .exited(let code): "exited with status \(code)"
        case .signalled(let signal): "was killed by signal \(signal)"
        case .outOfMemory(let limit): "was killed: out of memory (limit \(ByteSize.format(limit)))"
        case .unknown: "ended (an earlier daemon started it, so how is not known)"
        }
    }
}

public enum SpawnError: UserFacingError {
    case couldNotStart(String, errno: Int32)
    case couldNotOpen(String, errno: Int32)

    public var description: String {
        switch self {
        case .couldNotStart(let command, let code):
            "could not start \(command): \(String(cString: strerror(code))); check that it is installed and on PATH"
        case .couldNotOpen(let path, let code):
            "could not open \(path): \(String(cString: strerror(code))); check the data directory's permissions"
        }
    }
}

/// A started child process, leader of its own process group; or a process an earlier daemon started
/// and this one adopted.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    /// When the process started (see `ProcessTable.startTime`): with the pid, its identity.
    public let startTime: UInt64?
    private let exit: Task<ExitStatus, Never>
    private let ended = ExitRecord()

    /// `waitForEnd` blocks until the process ends, so it gets a thread of its own rather than a cooperative-pool thread.
    private init(pid: pid_t, startTime: UInt64?, waitForEnd: @escaping @Sendable () -> ExitStatus) {
        self.pid = pid
        self.startTime = startTime
        let ended = self.ended
        self.exit = Task {
            await withCheckedContinuation { continuation in
                Thread {
                    let exitStatus = waitForEnd()
                    ended.status.withLock { $0 = exitStatus }
                    continuation.resume(returning: exitStatus)
                }.start()
            }
        }
    }

    /// Our own child: reaped with waitpid, which gives its status. A sandbox (bubblewrap) exits with 128 + n when
    /// the command inside was killed by signal n, which is told as that signal. `explain` may tell more of how it
    /// ended (the kernel killed it for memory).
    fileprivate convenience init(
        child pid: pid_t,
        sandbox: Bool,
        explain: @escaping @Sendable (ExitStatus) -> ExitStatus
    ) {
        // Read before the waiter can reap it; a child that already exited is a zombie and still has its stat.
        self.init(pid: pid, startTime: ProcessTable.startTime(of: pid)) {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
            let low = status & 0x7f
            let code = (status >> 8) & 0xff
            guard low == 0 else { return explain(.signalled(low)) }
            return explain(sandbox && (129...128 + 64).contains(code) ? .signalled(code - 128) : .exited(code))
        }
    }

    /// Takes over a process an earlier daemon started, if `pid` is still that process (it started at
    /// `startTime`). It is not our child, so a pidfd tells when it ends.
    public static func adopt(pid: pid_t, startTime: UInt64) -> ChildProcess? {
        let pidfd = slipway_pidfd_open(pid)
        guard pidfd >= 0 else { return nil }
        // Checked while the pidfd is held: the process it refers to can no longer be replaced by a reuse of its pid.
        guard ProcessTable.isRunning(pid, startedAt: startTime) else {
            Glibc.close(pidfd)
            return nil
        }
        return ChildProcess(pid: pid, startTime: startTime) {
            var ended = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
            while poll(&ended, 1, -1) == -1 && errno == EINTR {}
            Glibc.close(pidfd)
            return .unknown
        }
    }

    /// How the child ended, or nil while it runs.
    public var exitStatus: ExitStatus? { ended.status.withLock { $0 } }

    /// Waits for the child to end (any number of callers).
    public func waitForExit() async -> ExitStatus { await exit.value }

    /// Sends `signal` to the child's whole process group. For a sandbox, whose outer process would die of a
    /// SIGTERM meant for the app and leave the app running unwatched, the signal goes to the process group inside
    /// (the sandbox's init ignores it, the app gets it); a SIGKILL also reaches the outer process.
    public func signalGroup(_ signal: Int32) {
        switch ProcessTable.kind(of: pid) {
        case .plain:
            kill(-pid, signal)
        case .sandbox(let group):
            kill(-group, signal)
            if signal == SIGKILL { kill(-pid, SIGKILL) }
        case .sandboxStarting:
            kill(-pid, SIGKILL)  // nothing inside has started that could end more gently
        }
    }

    /// SIGTERM to the group, then SIGKILL if it has not ended after `grace`.
    public func stop(grace: Duration) async -> ExitStatus {
        // Once reaped, the pid may belong to someone else: never signal it again.
        if let exitStatus { return exitStatus }
        signalGroup(SIGTERM)
        let killer = Task {
            try await Task.sleep(for: grace)
            self.signalGroup(SIGKILL)
        }
        let status = await waitForExit()
        killer.cancel()
        // Stragglers of the group (a shell's children) go with their leader.
        signalGroup(SIGKILL)
        return status
    }
}

/// Shared between a child and its waiter thread.
private final class ExitRecord: Sendable {
    let status = Mutex<ExitStatus?>(nil)
}

public enum Spawner {
    /// Starts `command` with stdout and stderr appended to `logFile`, returning at once.
    /// `explain` may tell more of how it ended than its status says.
    public static func start(
        _ command: Command,
        logFile: String,
        explain: @escaping @Sendable (ExitStatus) -> ExitStatus = { $0 }
    ) throws -> ChildProcess {
        let fd = open(logFile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SpawnError.couldNotOpen(logFile, errno: errno) }
        defer { Glibc.close(fd) }
        return try spawn(command, stdin: -1, stdout: fd, stderr: fd, explain: explain)
    }

    /// Runs `command` to its end, handing each line of its merged stdout and stderr to `onLine`
    /// as it comes. Cancelling the task stops the child's process group.
    public static func run(
        _ command: Command,
        grace: Duration = .seconds(5),
        onLine: @escaping @Sendable (String) -> Void
    ) async throws -> ExitStatus {
        let (readEnd, writeEnd) = try pipe(for: command)
        let child: ChildProcess
        do {
            child = try spawn(command, stdin: -1, stdout: writeEnd, stderr: writeEnd)
        } catch {
            Glibc.close(readEnd)
            Glibc.close(writeEnd)
            throw error
        }
        // Our copy of the write end must go, or the read loop never sees end-of-file.
        Glibc.close(writeEnd)
        let reader = Task {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                Thread {
                    readLines(from: readEnd, onLine: onLine)
                    Glibc.close(readEnd)
                    continuation.resume()
                }.start()
            }
        }
        let status = await withTaskCancellationHandler {
            await child.waitForExit()
        } onCancel: {
            Task { _ = await child.stop(grace: grace) }
        }
        await reader.value
        return status
    }

    /// A pipe for a child's stdio. Both ends are close-on-exec, so that no other child spawned
    /// meanwhile (from any thread) inherits them.
    public static func pipe(for command: Command) throws -> (read: Int32, write: Int32) {
        var ends: [Int32] = [0, 0]
        guard Glibc.pipe(&ends) == 0 else { throw SpawnError.couldNotStart(command.executable, errno: errno) }
        for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (ends[0], ends[1])
    }

    /// Starts `command` with the given descriptors as its stdin, stdout and stderr (stdin -1:
    /// /dev/null), returning at once. The caller keeps, and must close, its own copies.
    public static func spawn(
        _ command: Command,
        stdin: Int32,
        stdout: Int32,
        stderr: Int32,
        explain: @escaping @Sendable (ExitStatus) -> ExitStatus = { $0 }
    ) throws -> ChildProcess {
        let argv = ([command.executable] + command.arguments).map { strdup($0) }
        let envp = command.environment.map { strdup("\($0.key)=\($0.value)") }
        defer {
            for pointer in argv + envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = (argv + [nil]).withUnsafeBufferPointer { argvBuffer in
            (envp + [nil]).withUnsafeBufferPointer { envpBuffer in
                withOptionalCString(command.workingDirectory) { cwd in
                    slipway_spawn(
                        command.executable,
                        argvBuffer.baseAddress,
                        envpBuffer.baseAddress,
                        cwd,
                        stdin,
                        stdout,
                        stderr,
                        &pid
                    )
                }
            }
        }
        guard result == 0 else { throw SpawnError.couldNotStart(command.executable, errno: result) }
        return ChildProcess(child: pid, sandbox: command.isSandbox, explain: explain)
    }

    private static func withOptionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
        guard let string else { return body(nil) }
        return string.withCString { body($0) }
    }

    /// The longest line handed on whole; a longer one (a minified bundle, a progress bar without newlines, a
    /// hostile build printing one endless line) is cut there, so that reading it holds a bounded amount.
    public static let maximumLineBytes = 64 * 1024

    private static func readLines(from fd: Int32, onLine: (String) -> Void) {
        var pending = [UInt8]()
        var cut = 0
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        func give(_ line: ArraySlice<UInt8>) {
            let text = String(decoding: line, as: UTF8.self)
            onLine(cut == 0 ? text : text + " [… \(cut) more bytes of this line left out]")
            cut = 0
        }
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            var start = 0
            while let newline = buffer[start..<count].firstIndex(of: UInt8(ascii: "\n")) {
                if pending.isEmpty && cut == 0 {
                    give(buffer[start..<newline])
                } else {
                    append(buffer[start..<newline], to: &pending, cutting: &cut)
                    give(pending[...])
                    pending.removeAll(keepingCapacity: true)
                }
                start = newline + 1
            }
            append(buffer[start..<count], to: &pending, cutting: &cut)
        }
        if !pending.isEmpty || cut > 0 { give(pending[...]) }
    }

    /// Adds `bytes` to a line being read, keeping at most `maximumLineBytes` and counting the rest.
    private static func append(_ bytes: ArraySlice<UInt8>, to line: inout [UInt8], cutting cut: inout Int) {
        let room = max(0, maximumLineBytes - line.count)
        line.append(contentsOf: bytes.prefix(room))
        cut += max(0, bytes.count - room)
    }
}
