// The steps of a deploy after its tree is ready (see Deployer+Build): the release phase, the boot in batches with
// its health checks, the switch, and the drain and retirement of what it replaced; workers, replaced without a proxy.
import Foundation
import Logging
import SlipwayBasics
import SlipwayBuilder
import SlipwayProxy
import SlipwayStore
import SlipwaySupervisor

extension Deployer {
    /// Steps 6-7: boots the web instances of `release` (its built tree, its web command, its config)
    /// and waits until each passes the health checks of its app.json. They boot in batches of
    /// `settings.bootBatch`, each batch healthy before the next starts, so a big scale does not warm up all at
    /// once on a small host; the old release serves all the while. On failure the new instances are stopped
    /// and nothing else changes.
    func boot(
        _ release: Release,
        of name: AppName,
        output: DeployOutput,
        recordedOn releaseID: Int64?
    )
        async throws -> ServingRelease
    {
        let version = release.version
        guard let tree = release.tree, let command = release.processTypeCommands["web"] else {
            throw BuildError.noWebProcess(types: Array(release.processTypeCommands.keys))
        }
        let plan = try HealthCheckPlan.read(fromReleaseDirectory: settings.data.release(name, tree))
        let count = max(1, try store.app(name).scale(of: "web"))
        let specs = try (1...count).map { index in
            try processSpec(release, of: name, type: "web", index: index, command: command, tree: tree)
        }
        // Started before the instances, so none of their first lines are missed.
        let followers = specs.map { LogFollower(path: $0.logFile, label: $0.label) }
        let batchSize = max(1, settings.bootBatch)
        let batches = stride(from: 0, to: count, by: batchSize).map { $0..<min($0 + batchSize, count) }
        func labels(_ range: Range<Int>) -> String {
            range.count == 1 ? "web.\(range.lowerBound + 1)" : "web.\(range.lowerBound + 1)-\(range.upperBound)"
        }

        var instances: [Instance] = []
        var upstreams: [Upstream] = []
        func start(_ batch: Range<Int>) async throws {
            for index in batch {
                let instance = try await supervisor.boot(specs[index])
                instances.append(instance)
                upstreams.append(Upstream(host: "127.0.0.1", port: instance.port!))
            }
        }
        func waitHealthy(_ batch: Range<Int>) async throws {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in batch {
                    let (instance, upstream) = (instances[index], upstreams[index])
                    let gate = HealthGate(
                        plan: plan,
                        host: settings.host(of: name),
                        output: output,
                        follower: followers[index]
                    )
                    group.addTask {
                        do {
                            try await gate.wait(for: instance, upstream: upstream)
                        } catch {
                            throw UnhealthyInstance(label: "web.\(index + 1)", instance: instance, cause: error)
                        }
                        output.detail("web.\(index + 1) is healthy on port \(upstream.port)")
                    }
                }
                try await group.waitForAll()
            }
        }

        do {
            try await step(.boot, of: releaseID) {
                output.step(
                    "Booting \(name) \(version): \(labels(0..<count)) (\(command))"
                        + (batches.count > 1 ? " in batches of \(batchSize)" : "")
                )
                try await start(batches[0])
            }
        } catch {
            for instance in instances { await supervisor.stop(instance) }
            throw error
        }
        do {
            try await step(.health, of: releaseID) {
                let what = count == 1 ? "web.1" : "each of \(labels(0..<count))"
                output.step(
                    plan.isDefault
                        ? "Waiting for \(what) to answer GET / twice in a row (up to 120s)"
                        : "Running \(plan.checks.count) health check(s) against \(what)"
                )
                for (number, batch) in batches.enumerated() {
                    if number > 0 {
                        output.detail("Booting \(labels(batch)) (batch \(number + 1) of \(batches.count))")
                        try await start(batch)
                    }
                    try await waitHealthy(batch)
                }
            }
        } catch {
            let failed = error as? UnhealthyInstance
            // Its last words, a repeated traceback told once: from enough lines to see it repeat.
            let lastLines =
                failed.map { RepeatedLines.collapse(supervisor.lastOutput(of: $0.instance, lines: 60)) }
                .map { Array($0.suffix(12)) } ?? []
            for instance in instances { await supervisor.stop(instance) }
            throw BootFailure(instance: failed?.label ?? "web.1", cause: failed?.cause ?? error, lastOutput: lastLines)
        }
        let stamp = ReleaseStamp(
            app: name.rawValue,
            release: version.number,
            commit: release.commitID ?? "",
            deployedAt: Date()
        )
        return ServingRelease(
            release: release,
            instances: instances,
            set: UpstreamSet(release: stamp, upstreams: upstreams)
        )
    }

    /// What a process of `release` runs with: its tree, its config, and Slipway's variables.
    func processSpec(
        _ release: Release,
        of name: AppName,
        type: String,
        index: Int = 1,
        command: String,
        tree: ReleaseVersion
    )
        throws -> InstanceSpec
    {
        let storage = settings.data.storage(name)
        for folder in [settings.data.logs(name), storage] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        let directory = settings.data.release(name, tree)
        var environment = settings.baseEnvironment
        environment.merge(release.config) { _, config in config }
        environment["HOME"] = directory
        environment["SLIPWAY_STORAGE"] = storage
        environment["SLIPWAY_COMMIT"] = release.commitID ?? ""
        environment["SLIPWAY_APP"] = name.rawValue
        environment["SLIPWAY_RELEASE"] = release.version.description
        environment["HTTP_FORWARDED_COUNT"] = "1"
        environment["DYNO"] = "\(type).\(index)"
        return InstanceSpec(
            app: name,
            release: release.version,
            processType: type,
            index: index,
            command: command,
            directory: directory,
            storage: storage,
            environment: environment,
            markers: markers(of: release, of: name),
            limits: try store.app(name).limits(of: type),
            logFile: settings.data.logs(name) + "/\(type).\(index).log"
        )
    }

    /// Every process of a release (its build, release phase and instances) carries these, so that a
    /// starting daemon finds what an earlier one left (`adopt`). The app sees its name and release as plain
    /// environment variables; the data directory only without a sandbox (`Command.markers`).
    func markers(of release: Release, of name: AppName) -> [String: String] {
        [
            "SLIPWAY_DATA": settings.data.root, "SLIPWAY_APP": name.rawValue,
            "SLIPWAY_RELEASE": release.version.description,
        ]
    }

    /// Step 5: the Procfile's `release:` command (migrations), once, with the release's build and
    /// config, before any instance of the release boots. A failure stops the deploy here.
    func runReleasePhase(_ release: Release, of name: AppName, output: DeployOutput) async throws {
        guard let command = release.processTypeCommands["release"], let tree = release.tree else { return }
        let spec = try processSpec(release, of: name, type: "release", command: command, tree: tree)
        try await step(.release, of: release.id) {
            output.step("Running the release phase: \(command)")
            let status = try await supervisor.runOnce(spec) { output.detail($0) }
            guard status.succeeded else { throw DeployError.releasePhaseFailed(command: command, status) }
        }
    }

    /// Steps 8-9: the switch, then the drain and retirement of what it replaced.
    func activate(
        _ serving: ServingRelease,
        of name: AppName,
        output: DeployOutput,
        applyingConfig: Bool = false
    ) async throws {
        let releaseID = serving.release.id
        let version = serving.release.version
        let switchStarted = ContinuousClock.now
        var switchTime = Duration.zero
        var replaced: Replaced?
        try await step(.switch, of: releaseID) {
            try Self.pointCurrent(settings.data.current(name), to: settings.data.release(name, serving.release.tree!))
            replaced = await serve(serving, of: name)
            switchTime = ContinuousClock.now - switchStarted
            try store.markLive(releaseID, of: name, applyingConfig: applyingConfig)
        }
        try await replaceWorkers(with: serving.release, of: name, output: output)
        let history = try store.release(version, of: name)
        output.step(Self.verdict(name, version, url: settings.url(of: name), history: history, switchTime: switchTime))
        if let replaced { retire(replaced, of: name, drainRecordedOn: releaseID) }
    }

    /// What a switch replaced: the instances that served before and the set the proxy gave them.
    typealias Replaced = (serving: ServingRelease, set: UpstreamSet)

    /// The switch itself: from now on the proxy sends the app's requests to `serving`, whose
    /// instances are restarted if they crash. Returns what it replaced, for `retire`.
    func serve(_ serving: ServingRelease, of name: AppName) async -> Replaced? {
        let set = router.activate(serving.set, for: name.rawValue)
        await supervisor.markServing(serving.instances)
        watchLiveness(of: serving, of: name)
        return live.updateValue(serving, forKey: name).map { ($0, set ?? $0.set) }
    }

    /// Starts the liveness watch of the release that just went live (see `LivenessWatch`), ending the one before.
    func watchLiveness(of serving: ServingRelease, of name: AppName) {
        liveness.removeValue(forKey: name)?.cancel()
        guard settings.livenessInterval > .zero, let tree = serving.release.tree else { return }
        let watch = LivenessWatch(
            plan: servingPlan(of: name, tree: tree),
            host: settings.host(of: name),
            interval: settings.livenessInterval,
            failuresAllowed: max(1, settings.livenessFailures),
            supervisor: supervisor,
            logger: logger
        )
        liveness[name] = Task {
            await withDiscardingTaskGroup { group in
                for (slot, instance) in serving.instances.enumerated() {
                    group.addTask { await watch.watch(instance, slot: slot, in: serving.set) }
                }
            }
        }
    }

    /// The other process types (workers) follow the web switch: the old ones stop first, so that two
    /// copies of a queue worker never run at once, then the new release's start as the app's scale says.
    func replaceWorkers(
        with release: Release,
        of name: AppName,
        output: DeployOutput,
        types: Set<String>? = nil
    ) async throws {
        let running = (workers[name] ?? []).filter { types?.contains($0.spec.processType) ?? true }
        // Tracked until stopped, so a failed start never leaves an old worker running unseen.
        var kept = workers[name] ?? []
        defer { workers[name] = kept }
        let stopRunning = {
            for instance in running {
                output.step(
                    "Stopping \(instance.spec.environment["DYNO"] ?? instance.spec.processType) of \(instance.spec.release)"
                )
                await self.supervisor.stop(instance)
            }
            kept.removeAll { instance in running.contains { $0 === instance } }
        }
        let app = try store.app(name)
        if !app.workersOverlap { await stopRunning() }
        guard let tree = release.tree else { return }
        for type in ProcessTypes.workers(in: release.processTypeCommands) where types?.contains(type) ?? true {
            let command = release.processTypeCommands[type] ?? ""
            for index in stride(from: 1, through: app.scale(of: type), by: 1) {
                let spec = try processSpec(release, of: name, type: type, index: index, command: command, tree: tree)
                output.step("Starting \(type).\(index) of \(release.version) (\(command))")
                let instance = try await supervisor.boot(spec)
                // No health check for a worker: it serves from the start, so a crash means a restart.
                await supervisor.markServing(instance)
                kept.append(instance)
            }
        }
        if app.workersOverlap { await stopRunning() }
    }

    /// Drains the replaced set and stops its instances in the background; the push is not held up.
    func retire(_ replaced: Replaced, of name: AppName, drainRecordedOn releaseID: Int64?) {
        let (previous, replacedSet) = replaced
        let timeout = (try? store.app(name)).map(settings.drainTimeout(of:)) ?? settings.drainTimeout
        let window = settings.webSocketCloseWindow
        let id = UUID()
        drains[id] = Task {
            let event = releaseID.flatMap { try? store.startStep(.drain, of: $0) }
            for instance in previous.instances { try? store.setInstanceStatus(pid: instance.pid, .draining) }
            let report = await replacedSet.drain(timeout: timeout, webSocketWindow: window)
            for instance in previous.instances { await supervisor.stop(instance) }
            // Only now: the retired instances ran in their tree until a moment ago.
            let removed = pruneTrees(of: name)
            if let event {
                _ = try? store.finishStep(
                    event,
                    outcome: report.cancelled == 0 ? .succeeded : .failed,
                    detail:
                        "\(previous.release.version): \(report.finished) finished, \(report.cancelled) cut off at the "
                        + "drain timeout, \(report.webSocketsClosed) WebSockets closed; instances stopped"
                        + (removed.isEmpty
                            ? "" : "; removed the built trees of " + removed.map(\.description).joined(separator: ", "))
                )
            }
            logger.info(
                "old release retired",
                metadata: ["app.name": "\(name)", "release.number": "\(previous.release.number)"]
            )
            drainFinished(id)
        }
    }
}
