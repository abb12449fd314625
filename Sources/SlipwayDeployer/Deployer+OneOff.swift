// One-off commands (`slipway run`, Heroku's `heroku run`, Dokku's `dokku run`): a command in the live release's
// tree and environment (its config, HOME, .profile.d, storage, in its sandbox, under the limits of a process
// type), as a one-off process of the app. Attached, the caller starts it with its client's stdin and output; detached,
// it runs in the background with its output in the app's logs (`run.1.log`), until it ends.
import Foundation
import SlipwayBasics
import SlipwayStore
import SlipwaySupervisor

/// A one-off command running in the background (`run --detach`), as `ps` lists it: `run.<pid>`, as Heroku lists
/// its one-off dynos `run.<number>`.
public struct DetachedRun: Sendable {
    let child: ChildProcess
    public let release: ReleaseVersion
    public let commandLine: String
    public let startedAt: Date

    public var pid: pid_t { child.pid }
}

extension Deployer {
    /// The command line that runs `commandLine` (a shell command line, as a Procfile's) as a one-off process of
    /// `name`'s live release, under the limits of `type`; its caller starts it with stdin and output of its own.
    public func oneOffCommand(app name: AppName, type: String, commandLine: String) throws -> Command {
        let (spec, purpose) = try oneOff(app: name, type: type, commandLine: commandLine)
        return try launcher.command(spec.shellCommand(port: nil, stamped: false), for: purpose)
    }

    /// Starts `commandLine` in the background, its output stamped into the app's logs as `vN run.1`; returns what
    /// to tell the caller.
    public func runDetached(app name: AppName, type: String, commandLine: String) throws -> String {
        let (spec, purpose) = try oneOff(app: name, type: type, commandLine: commandLine)
        let child = try launcher.start(spec.shellCommand(port: nil, stamped: true), for: purpose, logFile: spec.logFile)
        detached[name, default: []].append(
            DetachedRun(child: child, release: spec.release, commandLine: commandLine, startedAt: Date())
        )
        Task { [weak self] in
            _ = await child.waitForExit()
            await self?.detachedEnded(child, of: name)
        }
        return "Running `\(commandLine)` in the background as \(spec.label) (pid \(child.pid)); "
            + "`slipway logs \(name) --type run` shows its output"
    }

    private func detachedEnded(_ child: ChildProcess, of name: AppName) {
        detached[name]?.removeAll { $0.pid == child.pid }
    }

    /// Stops the app's one-off command `pid` running in the background (SIGTERM to its process group, SIGKILL after
    /// 5 s); returns what to tell the caller.
    public func stopDetached(app name: AppName, pid: Int32) async throws -> String {
        guard let run = detached[name]?.first(where: { $0.pid == pid }) else {
            throw DeployError.noSuchRun(name, pid: pid)
        }
        let status = await run.child.stop(grace: .seconds(5))
        detachedEnded(run.child, of: name)
        return "Stopped run.\(pid) (`\(run.commandLine)`): it \(status)"
    }

    /// The app's one-off commands running in the background now, oldest first.
    public func detachedRuns(of name: AppName) -> [DetachedRun] {
        detached[name] ?? []
    }

    /// Stops the app's detached one-off commands (the app is going away).
    func stopDetached(of name: AppName) async {
        for run in detached.removeValue(forKey: name) ?? [] { _ = await run.child.stop(grace: .seconds(5)) }
    }

    private func oneOff(app name: AppName, type: String, commandLine: String) throws -> (InstanceSpec, LaunchPurpose) {
        let app = try store.app(name)
        guard let live = try store.liveRelease(of: name), let tree = live.tree else {
            throw DeployError.nothingLive(name)
        }
        // No markers: a later daemon must not take a one-off command for an instance it left, and stop it.
        var spec = try processSpec(live, of: name, type: "run", command: commandLine, tree: tree)
        spec.markers = [:]
        spec.limits = app.limits(of: type)
        return (spec, .oneOff(name, spec.files, spec.instanceLimits))
    }
}
