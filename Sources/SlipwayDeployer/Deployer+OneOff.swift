// One-off commands (`slipway run`, Heroku's `heroku run`, Dokku's `dokku run`): a command in the live release's
// tree and environment (its config, HOME, .profile.d, storage, in its sandbox, under the limits of a process
// type), as a one-off process of the app. Attached, the caller starts it with its client's stdin and output; detached,
// it runs in the background with its output in the app's logs (`run.1.log`), until it ends.
import Foundation
import Logging
import SlipwayBasics
import SlipwayStore
import SlipwaySupervisor

extension Deployer {
    /// The command line that runs `commandLine` (a shell command line, as a Procfile's) as a one-off process of
    /// `name`'s live release, under the limits of `type`; its caller starts it with stdin and output of its own.
    public func oneOffCommand(app name: AppName, type: String, commandLine: String) throws -> Command {
        let (spec, purpose) = try oneOff(app: name, type: type, commandLine: commandLine)
        return try launcher.command(spec.shellCommand(port: nil, stamped: false), for: purpose)
    }

    /// Starts `commandLine` in the background, its output stamped into the app's logs as `vN run.1`; returns what
    /// to tell the caller. It is recorded, so that `ps` lists it and `ps:stop` reaches it, after a restart too.
    public func runDetached(app name: AppName, type: String, commandLine: String) throws -> String {
        let (spec, purpose) = try oneOff(app: name, type: type, commandLine: commandLine)
        let child = try launcher.start(spec.shellCommand(port: nil, stamped: true), for: purpose, logFile: spec.logFile)
        detached[name, default: []].append(child)
        // No start time: it has ended already, and is only reaped.
        let run = child.startTime.map {
            OneOffRun(app: name, pid: child.pid, startTime: $0, release: spec.release, commandLine: commandLine)
        }
        do {
            if let run { try store.recordOneOffRun(run) }
        } catch {
            logger.warning("could not record a one-off command: ps will not list it", metadata: ["error": "\(error)"])
        }
        Task { [weak self] in
            _ = await child.waitForExit()
            await self?.detachedEnded(child, of: name, run: run)
        }
        return "Running `\(commandLine)` in the background as \(spec.label) (pid \(child.pid)); "
            + "`slipway logs \(name) --type run` shows its output"
    }

    private func detachedEnded(_ child: ChildProcess, of name: AppName, run: OneOffRun?) {
        detached[name]?.removeAll { $0.pid == child.pid }
        if let run { try? store.removeOneOffRun(pid: run.pid, startTime: run.startTime) }
    }

    /// The app's one-off commands running in the background now, oldest first, whichever daemon started them;
    /// the records of those that ended while no daemon watched are let go.
    public func detachedRuns(of name: AppName) -> [OneOffRun] {
        let recorded = (try? store.oneOffRuns(of: name)) ?? []
        var running: [OneOffRun] = []
        for run in recorded {
            if ProcessTable.isRunning(run.pid, startedAt: UInt64(run.startTime)) {
                running.append(run)
            } else {
                try? store.removeOneOffRun(pid: run.pid, startTime: run.startTime)
            }
        }
        return running
    }

    /// Stops the app's one-off command `pid` running in the background (SIGTERM to its process group, SIGKILL after
    /// 5 s); returns what to tell the caller.
    public func stopDetached(app name: AppName, pid: Int32) async throws -> String {
        guard let run = detachedRuns(of: name).first(where: { $0.pid == pid }) else {
            throw DeployError.noSuchRun(name, pid: pid)
        }
        await stop(run, of: name)
        return "Stopped run.\(pid) (`\(run.commandLine)`)"
    }

    /// Stops the app's detached one-off commands (the app is going away).
    func stopDetached(of name: AppName) async {
        for run in detachedRuns(of: name) { await stop(run, of: name) }
    }

    /// This daemon's own child is stopped as such; one a previous daemon started is adopted first. Either way the
    /// signals reach the command inside its sandbox, not only the sandbox's outer process.
    private func stop(_ run: OneOffRun, of name: AppName) async {
        let child =
            detached[name]?.first { $0.pid == run.pid }
            ?? ChildProcess.adopt(pid: run.pid, startTime: UInt64(run.startTime))
        _ = await child?.stop(grace: .seconds(5))
        try? store.removeOneOffRun(pid: run.pid, startTime: run.startTime)
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
