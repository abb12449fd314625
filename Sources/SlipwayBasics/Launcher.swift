// Launcher: the one way Slipway starts a process for an app (its build, its release phase, its instances) or for
// itself on an app's files. Each start says what the process is for, so that one place can decide what it may
// see and do: today every process runs as the daemon's user as `Spawner` starts it; a sandbox goes here.
import Foundation

/// What a process is started for.
public enum LaunchPurpose: Sendable, Equatable {
    /// A buildpack's bin/detect, bin/compile or bin/release, or the fetch of a pinned buildpack, for `app`.
    case build(AppName)
    /// The app's Procfile `release:` command.
    case releasePhase(AppName)
    /// One instance of one of the app's process types.
    case instance(AppName)
    /// The platform's own tools on an app's files (copying a built tree).
    case platform
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

/// Every process as the daemon's user, started by `Spawner` as it is asked.
public struct DirectLauncher: Launcher {
    public init() {}

    public func run(
        _ command: Command,
        for purpose: LaunchPurpose,
        grace: Duration,
        onLine: @escaping @Sendable (String) -> Void
    ) async throws -> ExitStatus {
        try await Spawner.run(command, grace: grace, onLine: onLine)
    }

    public func start(_ command: Command, for purpose: LaunchPurpose, logFile: String) throws -> ChildProcess {
        try Spawner.start(command, logFile: logFile)
    }
}
