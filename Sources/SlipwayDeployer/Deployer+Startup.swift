// The deployer at a daemon's start and stop: adopting the instances an earlier daemon left running, restoring what
// it could not adopt or left half done, and stopping (or leaving) the apps at shutdown.
import Foundation
import Logging
import SlipwayBasics
import SlipwayBuilder
import SlipwayGit
import SlipwayProxy
import SlipwayStore
import SlipwaySupervisor

extension Deployer {
    /// The first thing a starting daemon does, before the proxy listens, so that apps answer again at
    /// once: it puts right what an earlier daemon left. Interrupted deploys fail. Instances of each live
    /// release that still run (the same process: pid and start time) and pass one health check are adopted
    /// and routed to again, without a restart. Every other process an earlier daemon started for an app
    /// (an old release's instance, an unfinished build) is stopped; `restore` finishes that in the background, from
    /// the report this returns.
    public func adopt() async -> StartupReport {
        var report = StartupReport()
        do {
            for release in try store.failInterruptedDeploys() {
                logger.warning(
                    "interrupted deploy marked failed",
                    metadata: ["app.name": "\(release.appName)", "release.number": "\(release.number)"]
                )
            }
            let apps = try store.apps()
            for app in apps {
                try applyRoutes(of: app.appName)
                removeBuildScratch(of: app.appName)
            }
            serveKeptCertificates(of: apps)
            // The apps' health checks run side by side, so that one app's hung instance holds up no other app.
            let adopted = await withTaskGroup(of: (AppName, [Instance], complete: Bool).self) { group in
                for app in apps { group.addTask { await self.adoptLiveInstances(of: app) } }
                var adopted: [Instance] = []
                for await (name, instances, complete) in group {
                    adopted += instances
                    if !complete { report.incomplete.insert(name) }
                }
                return adopted
            }
            let kept = Set(adopted.map(\.pid))
            for record in try store.runningInstances() where !kept.contains(record.pid) {
                try store.setInstanceStatus(pid: record.pid, .stopped)
            }
            let leftovers = ProcessTable.processes(carrying: ["SLIPWAY_DATA": settings.data.root])
                .filter {
                    $0.environment["SLIPWAY_RELEASE"] != nil && !kept.contains($0.session) && !kept.contains($0.parent)
                }
            report.leftoverStop = Task { [supervisor] in
                await supervisor.stopLeftovers(processGroups: Set(leftovers.map(\.processGroup)))
            }
            if !leftovers.isEmpty {
                logger.warning(
                    "stopping processes an earlier daemon left",
                    metadata: ["count": "\(leftovers.count)", "pids": "\(leftovers.map(\.pid))"]
                )
            }
        } catch {
            logger.error("could not adopt the running apps", metadata: ["error": "\(error)"])
        }
        return report
    }

    /// The instances of `app`'s live release that an earlier daemon started and that still run and answer:
    /// adopted, routed to (web) and tracked (workers); and whether they make its whole scale.
    func adoptLiveInstances(of app: App) async -> (AppName, [Instance], complete: Bool) {
        let name = app.appName
        guard let release = try? store.liveRelease(of: name), let tree = release.tree,
            let records = try? store.runningInstances(of: name).filter({ $0.releaseNumber == release.number })
        else { return (name, [], true) }
        // A daemon that died inside the switch may have pointed `current` at a release that never went live.
        try? Self.pointCurrent(settings.data.current(name), to: settings.data.release(name, tree))
        func adopt(_ type: String) async -> [Instance] {
            guard let command = release.processTypeCommands[type] else { return [] }
            var adopted: [Instance] = []
            for index in stride(from: 1, through: max(type == "web" ? 1 : 0, app.scale(of: type)), by: 1) {
                guard let record = records.last(where: { $0.processType == type && $0.processIndex == index }),
                    let startTime = record.startTime,
                    let spec = try? processSpec(
                        release,
                        of: name,
                        type: type,
                        index: index,
                        command: command,
                        tree: tree
                    ),
                    let instance = await supervisor.adopt(
                        spec,
                        pid: record.pid,
                        startTime: UInt64(startTime),
                        port: record.port
                    )
                else { continue }
                adopted.append(instance)
            }
            return adopted
        }

        let web = await answering(await adopt("web"), of: name, tree: tree)
        if !web.isEmpty {
            let set = UpstreamSet(
                release: ReleaseStamp(
                    app: name.rawValue,
                    release: release.number,
                    commit: release.commitID ?? "",
                    deployedAt: release.finishedAt ?? Date()
                ),
                upstreams: web.map { Upstream(host: "127.0.0.1", port: $0.port!) }
            )
            _ = await serve(ServingRelease(release: release, instances: web, set: set), of: name)
        }
        var workerInstances: [Instance] = []
        var complete = web.count >= max(1, app.scale(of: "web"))
        for type in ProcessTypes.workers(in: release.processTypeCommands) {
            let adopted = await adopt(type)
            workerInstances += adopted
            if adopted.count < app.scale(of: type) { complete = false }
        }
        workers[name] = workerInstances
        return (name, web + workerInstances, complete)
    }

    /// No build runs yet: the scratch folders (with their copy of the config vars) of builds an earlier daemon
    /// did not finish go.
    func removeBuildScratch(of name: AppName) {
        let releases = settings.data.releases(name)
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: releases)) ?? []
        where entry.hasSuffix(ReleaseBuilder.scratchSuffix) {
            try? FileManager.default.removeItem(atPath: releases + "/" + entry)
        }
    }

    /// The adopted web instances that pass one try (of at most a second) of the app's first health check; the
    /// others are stopped.
    func answering(_ instances: [Instance], of name: AppName, tree: ReleaseVersion) async -> [Instance] {
        let plan = servingPlan(of: name, tree: tree)
        let host = settings.host(of: name)
        return await withTaskGroup(of: Instance?.self) { group in
            for instance in instances {
                group.addTask { [supervisor] in
                    let upstream = Upstream(host: "127.0.0.1", port: instance.port!)
                    guard await plan.tryFirstCheck(upstream, host: host, within: .seconds(1)).passed else {
                        // In the background: its grace period must not hold up the proxy's start.
                        Task { await supervisor.stop(instance) }
                        return nil
                    }
                    return instance
                }
            }
            var answering: [Instance] = []
            for await instance in group { if let instance { answering.append(instance) } }
            return answering.sorted { $0.spec.index < $1.spec.index }
        }
    }

    /// The health checks of a release already serving: its app.json's, or the default ones if it cannot be read now
    /// (it was read when the release booted).
    func servingPlan(of name: AppName, tree: ReleaseVersion) -> HealthCheckPlan {
        (try? HealthCheckPlan.read(fromReleaseDirectory: settings.data.release(name, tree))) ?? .standard
    }

    /// After `adopt`, in the background: the leftovers are stopped, unfinished and surplus release trees
    /// removed, and each app that could not be adopted whole gets a complete new set of instances of its
    /// live release, switched to like a restart (the adopted ones serve until then).
    public func restore(_ report: StartupReport) async {
        await report.leftoverStop?.value
        guard let apps = try? store.apps() else { return }
        for app in apps {
            _ = pruneTrees(of: app.appName)
            // Repositories made by an earlier version let pushes write files other users could read, and lack hooks.
            try? Repository(openBareAt: settings.data.repository(app.appName)).keepPrivate()
            do {
                try installHooks(of: app.appName)
                try applyAtomicPushes(of: app.appName)
            } catch {
                logger.warning(
                    "could not install the git hooks",
                    metadata: ["app.name": "\(app.name)", "error": "\(error)"]
                )
            }
        }
        for name in report.incomplete.sorted(by: { $0.rawValue < $1.rawValue }) {
            await whileLocked(name, output: DeployOutput { _ in }) { await restoreInstances(of: name) }
        }
    }

    /// Boots what an app's live release is missing after a restart: a whole new web set, its workers.
    private func restoreInstances(of name: AppName) async {
        let output = DeployOutput { [logger] line in
            logger.info("restore", metadata: ["app.name": "\(name)", "output": "\(line)"])
        }
        do {
            guard let release = try store.liveRelease(of: name) else { return }
            if (live[name]?.instances.count ?? 0) < max(1, try store.app(name).scale(of: "web")) {
                let serving = try await boot(release, of: name, output: output, recordedOn: nil)
                if let replaced = await serve(serving, of: name) {
                    retire(replaced, of: name, drainRecordedOn: nil)
                }
            }
            try await replaceWorkers(with: release, of: name, output: output)
        } catch {
            logger.error(
                "could not boot the live release again",
                metadata: ["app.name": "\(name)", "error": "\(error)"]
            )
        }
    }

    /// On the daemon's way out (a deploy under way has been cancelled and its pusher told by now). By default
    /// the apps keep running, drains included, for the next daemon to adopt or finish; with `stopApps`,
    /// drains finish and every instance stops.
    public func shutdown(stopApps: Bool) async {
        // No liveness check may replace an instance from now on: a replacement would outlive the daemon.
        for watch in liveness.values { watch.cancel() }
        liveness.removeAll()
        guard stopApps else { return }
        for drain in drains.values { await drain.value }
        await supervisor.stopAll()
    }
}

/// What `adopt` left for `restore`: the apps it could not give their whole scale, and the stop of what an earlier
/// daemon left running, which `restore` waits for before it boots anything.
public struct StartupReport: Sendable {
    public var incomplete: Set<AppName> = []
    var leftoverStop: Task<Void, Never>?

    public init() {}
}
