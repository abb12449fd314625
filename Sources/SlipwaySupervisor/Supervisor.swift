// SlipwaySupervisor: starts app instances in their own session with their output in log files (so
// they outlive the daemon), adopts those an earlier daemon left, watches them, restarts a serving
// instance that crashed (with backoff), rotates their logs, and stops them with SIGTERM to the process
// group, then SIGKILL after a grace period. It decides nothing about routing.
import Foundation
import Logging
import SlipwayBasics
import Synchronization

/// What to run for one process of a release.
public struct InstanceSpec: Sendable {
    public var app: AppName
    public var release: ReleaseVersion
    public var processType: String
    /// n of `web.n`: which of the type's instances this is.
    public var index: Int
    /// The Procfile command: a shell command line, as on Heroku.
    public var command: String
    public var directory: String
    /// The app's storage, the one place its processes may write that outlives them (`SLIPWAY_STORAGE`).
    public var storage: String?
    public var environment: [String: String]
    /// What tells a later daemon which app and release the instance belongs to (see `Command.markers`).
    public var markers: [String: String]
    /// What the instance may use of the host (`limits:set`), if anything is limited.
    public var limits: ProcessLimits?
    public var logFile: String
    /// Web processes get a port of their own in `PORT`.
    public var needsPort: Bool

    public init(
        app: AppName,
        release: ReleaseVersion,
        processType: String,
        index: Int = 1,
        command: String,
        directory: String,
        storage: String? = nil,
        environment: [String: String],
        markers: [String: String] = [:],
        limits: ProcessLimits? = nil,
        logFile: String
    ) {
        self.app = app
        self.release = release
        self.processType = processType
        self.index = index
        self.command = command
        self.directory = directory
        self.storage = storage
        self.environment = environment
        self.markers = markers
        self.limits = limits
        self.logFile = logFile
        self.needsPort = processType == "web"
    }
}

/// What happened to an instance, for the daemon to record.
public enum InstanceEvent: Sendable, Equatable {
    case started(pid: Int32, startTime: UInt64?)
    case serving
    case crashed(ExitStatus, restartIn: Duration?)
    case stopped(ExitStatus)
}

/// One running process of a release. Its port stays the same across restarts.
public final class Instance: Sendable, CustomStringConvertible {
    public let spec: InstanceSpec
    public let port: Int?
    private let state: Mutex<InstanceState>

    init(spec: InstanceSpec, port: Int?, child: ChildProcess) {
        self.spec = spec
        self.port = port
        self.state = Mutex(InstanceState(child: child))
    }

    public var pid: Int32 { state.withLock { $0.child.pid } }

    /// The exit status if the instance has ended and is not being restarted.
    public var exitStatus: ExitStatus? { state.withLock { $0.exitStatus } }

    /// Whether its process runs now (false while a crashed instance waits for its restart).
    public var isRunning: Bool { state.withLock { $0.child.exitStatus == nil } }

    public var description: String { "\(spec.app) \(spec.release) \(spec.processType) (pid \(pid))" }

    fileprivate func withState<T>(_ body: (inout InstanceState) -> T) -> T { state.withLock { body(&$0) } }
}

/// The lifecycle of one instance as a value: the supervisor does the I/O it asks for.
struct InstanceState: Sendable {
    enum Phase: Sendable, Equatable { case booting, serving, stopping, ended }

    var child: ChildProcess
    var phase: Phase = .booting
    var exitStatus: ExitStatus?
    var restarts = 0
    var servingSince: ContinuousClock.Instant?

    enum ExitAction: Equatable {
        case restart(after: Duration)
        case end
    }

    /// A booting instance that exits is a failed boot (the deployer reports it); a serving one
    /// is restarted with exponential backoff, reset once it stayed up for a minute.
    mutating func childExited(_ status: ExitStatus, now: ContinuousClock.Instant) -> ExitAction {
        guard phase == .serving else {
            phase = .ended
            exitStatus = status
            return .end
        }
        if let servingSince, now - servingSince > .seconds(60) { restarts = 0 }
        let delay = Duration.seconds(min(30, 1 << min(restarts, 5)))
        restarts += 1
        return .restart(after: delay)
    }
}

/// Why the supervisor started nothing.
public enum SupervisorError: UserFacingError {
    case stopping

    public var description: String {
        switch self {
        case .stopping: "the daemon is stopping its apps; nothing new starts now"
        }
    }
}

public actor Supervisor {
    private let logger: Logger
    private let stopGrace: Duration
    private let logLimit: LogLimit
    private let launcher: any Launcher
    private let observer: @Sendable (Instance, InstanceEvent) -> Void
    private var instances: [ObjectIdentifier: Instance] = [:]
    /// Set by `stopAll`: an instance a liveness check or a restore would boot meanwhile would outlive the daemon.
    private var stoppingAll = false

    public init(
        stopGrace: Duration,
        logLimit: LogLimit = LogLimit(),
        launcher: any Launcher,
        logger: Logger,
        observer: @escaping @Sendable (Instance, InstanceEvent) -> Void = { _, _ in }
    ) {
        self.stopGrace = stopGrace
        self.logLimit = logLimit
        self.launcher = launcher
        self.logger = logger
        self.observer = observer
    }

    /// Starts one instance of `spec` on a free loopback port (web) and watches it.
    public func boot(_ spec: InstanceSpec) throws -> Instance {
        guard !stoppingAll else { throw SupervisorError.stopping }
        let port = spec.needsPort ? try PortAllocator.freePort() : nil
        let child = try spawn(spec, port: port)
        let instance = Instance(spec: spec, port: port, child: child)
        instances[ObjectIdentifier(instance)] = instance
        logger.info("instance started", metadata: Self.metadata(of: instance))
        observer(instance, .started(pid: child.pid, startTime: child.startTime))
        watch(instance, child: child)
        return instance
    }

    /// Takes over an instance an earlier daemon started, if `pid` is still that process (it started at
    /// `startTime`), without restarting it. It was serving, so it serves on: a crash restarts it from `spec` on `port`.
    public func adopt(_ spec: InstanceSpec, pid: Int32, startTime: UInt64, port: Int?) -> Instance? {
        guard let child = ChildProcess.adopt(pid: pid, startTime: startTime) else { return nil }
        let instance = Instance(spec: spec, port: port, child: child)
        instance.withState {
            $0.phase = .serving
            $0.servingSince = .now
        }
        instances[ObjectIdentifier(instance)] = instance
        logger.info("instance adopted", metadata: Self.metadata(of: instance))
        watch(instance, child: child)
        return instance
    }

    private static func metadata(of instance: Instance) -> Logger.Metadata {
        [
            "app.name": "\(instance.spec.app)", "release.number": "\(instance.spec.release.number)",
            "instance.pid": "\(instance.pid)", "instance.port": "\(instance.port.map(String.init) ?? "-")",
        ]
    }

    /// The instance passed its health check: from now on a crash means a restart.
    public func markServing(_ instance: Instance) {
        instance.withState {
            $0.phase = .serving
            $0.servingSince = .now
        }
        observer(instance, .serving)
    }

    /// Replaces a serving instance that stopped answering: its process is stopped like a crash, and restarted on
    /// the same port after the crash backoff.
    public func restart(_ instance: Instance) async {
        guard let child = instance.withState({ $0.phase == .serving ? $0.child : nil }) else { return }
        _ = await child.stop(grace: stopGrace)
    }

    /// SIGTERM to the instance's process group, SIGKILL after the grace period.
    public func stop(_ instance: Instance) async {
        let child: ChildProcess? = instance.withState {
            guard $0.phase != .ended else { return nil }
            $0.phase = .stopping
            return $0.child
        }
        guard let child else { return }
        let status = await child.stop(grace: stopGrace)
        instance.withState {
            $0.phase = .ended
            $0.exitStatus = status
        }
        instances[ObjectIdentifier(instance)] = nil
        observer(instance, .stopped(status))
    }

    /// Stops every instance this supervisor started, all at once.
    public func stopAll() async {
        stoppingAll = true
        await withTaskGroup(of: Void.self) { group in
            for instance in instances.values {
                group.addTask { await self.stop(instance) }
            }
        }
    }

    /// Stops process groups an earlier daemon left and nobody adopted (instances of a release that is no
    /// longer live, a build it never finished), with this supervisor's grace period.
    public nonisolated func stopLeftovers(processGroups: Set<pid_t>) async {
        await ProcessTable.stop(processGroups: processGroups, grace: stopGrace)
    }

    /// Rotates the log of every instance that outgrew the limit, every `interval`, until the task is cancelled.
    public func keepLogsRotated(every interval: Duration) async {
        while !Task.isCancelled {
            for path in Set(instances.values.map(\.spec.logFile)) {
                do {
                    if try logLimit.rotate(path) {
                        logger.info("instance log rotated", metadata: ["log.path": "\(path)"])
                    }
                } catch {
                    logger.warning(
                        "could not rotate an instance log",
                        metadata: ["log.path": "\(path)", "error": "\(error)"]
                    )
                }
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// The last `count` lines the instance itself wrote (not another release's instance in the same slot), for
    /// failure messages.
    public nonisolated func lastOutput(of instance: Instance, lines count: Int) -> [String] {
        let label = instance.spec.label
        let lines = LogReading.tail(of: instance.spec.logFile, lines: .max).lines
        return Array(lines.compactMap { LogLine(kept: $0) }.filter { $0.label == label }.map(\.text).suffix(count))
    }

    private func watch(_ instance: Instance, child: ChildProcess) {
        Task {
            let status = await child.waitForExit()
            await self.childExited(instance, child: child, status: status)
        }
    }

    private func childExited(_ instance: Instance, child: ChildProcess, status: ExitStatus) async {
        let action: InstanceState.ExitAction? = instance.withState {
            // A stop in progress owns the ending; an exit of a replaced child is old news.
            guard $0.phase != .stopping, $0.phase != .ended, $0.child.pid == child.pid else { return nil }
            return $0.childExited(status, now: .now)
        }
        switch action {
        case nil:
            return
        case .end:
            instances[ObjectIdentifier(instance)] = nil
            observer(instance, .crashed(status, restartIn: nil))
        case .restart(let delay):
            logger.warning(
                "instance crashed; restarting",
                metadata: Self.metadata(of: instance).merging(["exit": "\(status)", "restart.delay": "\(delay)"]) {
                    $1
                }
            )
            observer(instance, .crashed(status, restartIn: delay))
            try? await Task.sleep(for: delay)
            guard instance.withState({ $0.phase == .serving }) else { return }
            do {
                let replacement = try spawn(instance.spec, port: instance.port)
                instance.withState { $0.child = replacement }
                observer(instance, .started(pid: replacement.pid, startTime: replacement.startTime))
                watch(instance, child: replacement)
            } catch {
                logger.error(
                    "instance restart failed",
                    metadata: Self.metadata(of: instance).merging(["error": "\(error)"]) { $1 }
                )
                instance.withState {
                    $0.phase = .ended
                    $0.exitStatus = status
                }
                instances[ObjectIdentifier(instance)] = nil
            }
        }
    }

    /// Runs `spec` once to its end (a release phase), handing each output line to `onLine` and keeping it, stamped,
    /// in the spec's log file. Cancelling the task stops it.
    public nonisolated func runOnce(
        _ spec: InstanceSpec,
        onLine: @escaping @Sendable (String) -> Void
    ) async throws
        -> ExitStatus
    {
        let descriptor = open(spec.logFile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        let log = descriptor >= 0 ? FileHandle(fileDescriptor: descriptor, closeOnDealloc: true) : nil
        let (label, path, limit) = (spec.label, spec.logFile, logLimit)
        // Written here, so kept under the limit here: a release phase may print without end.
        let written = Mutex(0)
        return try await launcher.run(
            spec.shellCommand(port: nil, stamped: false),
            for: .releasePhase(spec.app, spec.files),
            grace: stopGrace
        ) { line in
            let kept = Data((LogLine(now: label, text: line).kept + "\n").utf8)
            log?.write(kept)
            let full = written.withLock { count in
                count += kept.count
                guard count >= limit.maxBytes else { return false }
                count = 0
                return true
            }
            if full { _ = try? limit.rotate(path) }
            onLine(line)
        }
    }

    private func spawn(_ spec: InstanceSpec, port: Int?) throws -> ChildProcess {
        try launcher.start(
            spec.shellCommand(port: port, stamped: true),
            for: .instance(spec.app, spec.files, spec.instanceLimits),
            logFile: spec.logFile
        )
    }
}

extension InstanceSpec {
    /// A running release reads its built tree and writes nowhere in it: instances of a release share the tree, and
    /// a later release phase or rollback runs it again, so nothing an instance writes may land there. Scratch
    /// space is the sandbox's private /tmp, gone when the instance stops, as a Heroku dyno's changes are; what must
    /// last goes to the app's storage.
    /// `v5 web.1`, or `v5 release` for the release phase: what its lines are labelled with.
    public var label: String {
        LogLine.label(release: release, process: processType == "release" ? processType : "\(processType).\(index)")
    }

    public var files: AppFiles { AppFiles(writable: storage.map { [$0] } ?? [], readOnly: [directory]) }

    /// Procfile commands are shell command lines by definition; .profile.d scripts come first, as on Heroku. An
    /// instance's output is `stamped` on its way to its log file (see `LogLine`).
    public func shellCommand(port: Int?, stamped: Bool) -> Command {
        var environment = environment
        if let port { environment["PORT"] = String(port) }
        let script =
            (stamped ? LogLine.stampingRedirect + "\n" : "")
            + "for f in .profile.d/*.sh; do [ -r \"$f\" ] && . \"$f\"; done\n" + command
        return Command(
            "/bin/bash",
            ["-c", script, label],
            environment: environment,
            workingDirectory: directory,
            markers: markers
        )
    }

    public var instanceLimits: InstanceLimits? {
        limits.map { InstanceLimits(name: "\(app).\(processType).\(index)", limits: $0) }
    }
}
