// Launcher: the one way Slipway starts a process for an app (its build, its release phase, its instances) or for
// itself on an app's files. Each start says what the process is for and which of the app's files it works on, so
// that one place decides what it may see and do: `DirectLauncher` runs it as the daemon's user as `Spawner`
// starts it; `SandboxLauncher` (SlipwaySandbox) runs it in a bubblewrap sandbox that sees only those files.
import Foundation

/// The files of an app a process works on, each seen at its own path: a sandboxed process sees these and the
/// read-only system, nothing else of the host.
public struct AppFiles: Sendable, Equatable {
    public var writable: [String]
    public var readOnly: [String]

    public init(writable: [String] = [], readOnly: [String] = []) {
        self.writable = writable
        self.readOnly = readOnly
    }
}

/// The limits of one instance, and the name its group of limits has (`shop.web.1`).
public struct InstanceLimits: Sendable, Equatable {
    public var name: String
    public var limits: ProcessLimits

    public init(name: String, limits: ProcessLimits) {
        self.name = name
        self.limits = limits
    }
}

/// What a process is started for.
public enum LaunchPurpose: Sendable, Equatable {
    /// A buildpack's bin/detect, bin/compile or bin/release, or the fetch of a pinned buildpack, for `app`.
    case build(AppName, AppFiles)
    /// The app's Procfile `release:` command.
    case releasePhase(AppName, AppFiles)
    /// One instance of one of the app's process types, under its limits, if it has any.
    case instance(AppName, AppFiles, InstanceLimits?)
    /// A one-off command in the app's live release (`slipway run`), under the limits of the type it runs as.
    case oneOff(AppName, AppFiles, InstanceLimits?)
    /// The platform's own tools on an app's files (copying a built tree).
    case platform

    /// The limits an instance or a one-off command runs under, if it has any.
    public var limits: InstanceLimits? {
        switch self {
        case .instance(_, _, let limits), .oneOff(_, _, let limits): limits
        case .build, .releasePhase, .platform: nil
        }
    }

    /// The app whose code runs, and the files it works on; nil for the platform's own tools.
    public var tenant: (app: AppName, files: AppFiles)? {
        switch self {
        case .build(let app, let files), .releasePhase(let app, let files), .instance(let app, let files, _),
            .oneOff(let app, let files, _):
            (app, files)
        case .platform:
            nil
        }
    }
}

public protocol Launcher: Sendable {
    /// Runs `command` to its end, handing each output line to `onLine`; cancelling stops it (SIGTERM, then SIGKILL
    /// after `grace`).
    func run(
        _ command: Command,
        for purpose: LaunchPurpose,
        grace: Duration,
        onLine: @escaping @Sendable (String) -> Void
    ) async throws -> ExitStatus

    /// Starts `command` with its output appended to `logFile`, returning at once.
    func start(_ command: Command, for purpose: LaunchPurpose, logFile: String) throws -> ChildProcess

    /// The command line that runs `command` for `purpose`, for a caller that starts it itself with stdin and output
    /// of its own: a one-off command's are its client's (the CLI becomes it, an SSH session relays it).
    func command(_ command: Command, for purpose: LaunchPurpose) throws -> Command

    /// Lets go of what it keeps for `app` (a host user of its own), once the app is destroyed and stopped.
    func forget(_ app: AppName) throws
}

extension Launcher {
    public func forget(_ app: AppName) throws {}
}

extension Launcher {
    /// Runs `command` to its end and returns its merged output: its first and last `keptBytesEachEnd` bytes.
    public func output(
        of command: Command,
        for purpose: LaunchPurpose,
        keptBytesEachEnd: Int = 64 * 1024
    ) async throws -> (ExitStatus, String) {
        let collected = Transcript(keptBytesEachEnd: keptBytesEachEnd)
        let status = try await run(command, for: purpose, grace: .seconds(5)) { collected.append($0) }
        return (status, collected.text)
    }
}

/// Every process as the daemon's user, started by `Spawner` as it is asked: apps are not isolated from the
/// platform or from each other (`slipway serve --sandbox off`, or a host without bubblewrap).
public struct DirectLauncher: Launcher {
    public init() {}

    public func run(
        _ command: Command,
        for purpose: LaunchPurpose,
        grace: Duration,
        onLine: @escaping @Sendable (String) -> Void
    ) async throws -> ExitStatus {
        try await Spawner.run(command.markersInEnvironment, grace: grace, onLine: onLine)
    }

    public func start(_ command: Command, for purpose: LaunchPurpose, logFile: String) throws -> ChildProcess {
        try Spawner.start(command.markersInEnvironment, logFile: logFile)
    }

    public func command(_ command: Command, for purpose: LaunchPurpose) throws -> Command {
        command.markersInEnvironment
    }
}

extension Command {
    /// The command with its markers among its environment variables, where the process itself can read them.
    public var markersInEnvironment: Command {
        var command = self
        command.environment.merge(markers) { _, marker in marker }
        return command
    }
}
