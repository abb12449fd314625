// SlipwayDeployer: the deploy state machine of ARCHITECTURE.md ("A deploy, step by step"). Holds the
// per-app deploy locks and the build slots, records every step as an event, boots the new release
// beside the live one, gates it on its health checks, switches the proxy in one step, then drains
// and retires the old instances; watches the live instances' liveness; and at a daemon's start,
// adopts what an earlier daemon left running and cleans up what it left half done. It uses the
// builder, supervisor, proxy and store through their APIs.
import Foundation
import Logging
import SlipwayBasics
import SlipwayBuilder
import SlipwayGit
import SlipwayProxy
import SlipwayStore
import SlipwaySupervisor

/// What the deployer needs to know about this host.
public struct DeploySettings: Sendable {
    public var data: DataDirectory
    /// Apps are served at `<app>.<domain>`.
    public var domain: String
    /// The public address of the proxy, for the URLs the pusher is shown.
    public var publicPort: Int
    /// The project's `hooks/` and `buildpacks/` folders.
    public var hooksDirectory: String
    public var buildpacksDirectory: String
    public var drainTimeout: Duration
    /// WebSockets on a retired release are closed one by one over this long, so clients reconnect gradually.
    public var webSocketCloseWindow: Duration
    /// How many built release trees an app keeps on disk (the live one included), for rollbacks.
    public var keepReleases: Int
    /// How many web instances of a release boot at once; the next batch starts when these are healthy.
    public var bootBatch: Int
    /// How many builds may run at once, over all apps.
    public var maxBuilds: Int
    /// How long a build may run before it is stopped and its deploy fails.
    public var buildTimeout: Duration
    /// How often each live web instance is checked after its switch.
    public var livenessInterval: Duration
    /// Failed checks in a row that take a live instance out of rotation to be replaced.
    public var livenessFailures: Int
    /// The environment every build and instance starts from (PATH with `<data>/bin` first, HOME, LANG).
    public var baseEnvironment: [String: String]

    public init(
        data: DataDirectory,
        domain: String,
        publicPort: Int,
        hooksDirectory: String,
        buildpacksDirectory: String,
        drainTimeout: Duration,
        webSocketCloseWindow: Duration,
        keepReleases: Int,
        bootBatch: Int,
        maxBuilds: Int,
        buildTimeout: Duration,
        livenessInterval: Duration,
        livenessFailures: Int,
        baseEnvironment: [String: String]
    ) {
        self.data = data
        self.domain = domain
        self.publicPort = publicPort
        self.hooksDirectory = hooksDirectory
        self.buildpacksDirectory = buildpacksDirectory
        self.drainTimeout = drainTimeout
        self.webSocketCloseWindow = webSocketCloseWindow
        self.keepReleases = keepReleases
        self.bootBatch = bootBatch
        self.maxBuilds = maxBuilds
        self.buildTimeout = buildTimeout
        self.livenessInterval = livenessInterval
        self.livenessFailures = livenessFailures
        self.baseEnvironment = baseEnvironment
    }

    public func host(of app: AppName) -> String { "\(app).\(domain)" }

    public func url(of app: AppName) -> String {
        "http://\(host(of: app))" + (publicPort == 80 ? "" : ":\(publicPort)")
    }

    /// How long the app's old release gets to finish its requests after a switch: its own setting, else the daemon's.
    public func drainTimeout(of app: App) -> Duration {
        app.drainTimeout.map(Duration.seconds) ?? drainTimeout
    }
}

public enum DeployError: UserFacingError {
    case hookMissing(String)
    case couldNotCreate(AppName, String)
    case releasePhaseFailed(command: String, ExitStatus)
    case noSuchProcessType(AppName, ReleaseVersion, String, declared: [String])
    case promoteToItself(AppName)
    case nothingToPromote(AppName)
    case copyFailed(String)
    case buildTimedOut(Duration)

    public var description: String {
        switch self {
        case .promoteToItself(let app): "cannot promote \(app) to itself; name another app as the target"
        case .nothingToPromote(let app):
            "\(app) has no live release with a built tree to promote; deploy it first"
        case .buildTimedOut(let limit):
            "the build ran longer than \(limit.components.seconds)s and was stopped; make it faster, or raise the "
                + "server's --build-timeout, then push again"
        case .copyFailed(let reason): "could not copy the build: \(reason); check the disk space of the data directory"
        case .hookMissing(let path):
            "the post-receive hook \(path) is missing; start slipway from its project folder or pass --share"
        case .couldNotCreate(let app, let reason): "could not create \(app): \(reason)"
        case .noSuchProcessType(let app, let version, let type, let declared):
            "\(app) \(version) has no \(type) process type; its Procfile declares "
                + (declared.isEmpty ? "no worker types" : declared.joined(separator: ", "))
        case .releasePhaseFailed(let command, let status):
            "the release phase (\(command)) \(status); fix it and push again (no instance of this release was started)"
        }
    }
}

/// How a deploy ended, for the caller's exit status.
public enum DeployOutcome: Sendable, Equatable {
    case live
    case failed
    case notDeployed
}

public actor Deployer {
    private let settings: DeploySettings
    private let store: AppDatabase
    private let supervisor: Supervisor
    private let router: Router
    private let builder: ReleaseBuilder
    private let launcher: any Launcher
    private let logger: Logger
    private var locks = DeployLocks()
    /// At most `settings.maxBuilds` builds at once, so that pushes to many apps cannot starve the live ones.
    private var buildSlots: Slots
    /// The instances serving each app's live release.
    private var live: [AppName: ServingRelease] = [:]
    /// The instances of each app's other process types (workers): no port, no proxy.
    private var workers: [AppName: [Instance]] = [:]
    /// Drains in progress, so that a shutdown lets them finish.
    private var drains: [UUID: Task<Void, Never>] = [:]
    /// The liveness watch of each app's live release.
    private var liveness: [AppName: Task<Void, Never>] = [:]
    /// Apps `adopt` could not give their whole scale, for `restore` to complete.
    private var incomplete: Set<AppName> = []
    /// The stop of what an earlier daemon left, started by `adopt`.
    private var leftoverStop: Task<Void, Never>?
    /// A test hook for fault injection (env SLIPWAY_TEST_HOLD_STEP=switch, …): that step, its work done, says so in
    /// `<data>/holding-STEP` and waits instead of finishing, so that a test can kill the daemon at that point.
    private let heldStep = ProcessInfo.processInfo.environment["SLIPWAY_TEST_HOLD_STEP"].flatMap(DeployStep.init)

    struct ServingRelease {
        var release: Release
        var instances: [Instance]
        var set: UpstreamSet
    }

    public init(
        settings: DeploySettings,
        store: AppDatabase,
        supervisor: Supervisor,
        router: Router,
        launcher: any Launcher,
        logger: Logger
    ) {
        self.settings = settings
        self.store = store
        self.supervisor = supervisor
        self.router = router
        self.launcher = launcher
        self.builder = ReleaseBuilder(buildpacksDirectory: settings.buildpacksDirectory, launcher: launcher)
        self.buildSlots = Slots(limit: settings.maxBuilds)
        self.logger = logger
    }

    // MARK: Apps

    /// Records the app, creates its bare repository and installs the post-receive hook.
    public func createApp(_ name: AppName) throws -> App {
        let hook = settings.hooksDirectory + "/post-receive"
        guard FileManager.default.fileExists(atPath: hook) else { throw DeployError.hookMissing(hook) }
        let app = try store.createApp(name)
        let repository = settings.data.repository(name)
        do {
            try FileManager.default.createDirectory(
                atPath: settings.data.repositories,
                withIntermediateDirectories: true
            )
            _ = try Repository.createBare(at: repository, headBranch: app.deployBranch)
            let installed = repository + "/hooks/post-receive"
            try? FileManager.default.removeItem(atPath: installed)
            try FileManager.default.copyItem(atPath: hook, toPath: installed)
            try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: installed)
        } catch {
            throw DeployError.couldNotCreate(name, error.userMessage)
        }
        try applyRoutes(of: name)
        return app
    }

    /// Points the app's hosts (its default one and its domains) at it, and sets its maintenance page,
    /// the prefix of its Slipway endpoints and its sticky sessions.
    public func applyRoutes(of name: AppName) throws {
        let app = try store.app(name)
        router.setHosts([settings.host(of: name)] + (try store.domains(of: name)), for: name.rawValue)
        router.setMaintenance(app.maintenance, for: name.rawValue)
        router.setEndpointPrefix(app.endpointPrefix, for: name.rawValue)
        router.setStickySessions(app.stickySessions, for: name.rawValue)
    }

    /// Stops the app's instances at once (no drain: it is going away), then forgets it and
    /// deletes its repository, release trees, cache and logs. A deploy under way finishes first.
    public func destroyApp(_ name: AppName) async throws {
        _ = try store.app(name)
        await lock(name, output: DeployOutput { _ in })
        defer { locks.release(name) }
        _ = router.remove(app: name.rawValue)
        liveness.removeValue(forKey: name)?.cancel()
        let instances = (live.removeValue(forKey: name)?.instances ?? []) + (workers.removeValue(forKey: name) ?? [])
        await withTaskGroup(of: Void.self) { group in
            for instance in instances { group.addTask { await self.supervisor.stop(instance) } }
        }
        try store.destroyApp(name)
        for path in [settings.data.repository(name), settings.data.appDirectory(name)] {
            try? FileManager.default.removeItem(atPath: path)
        }
        logger.info("app destroyed", metadata: ["app.name": "\(name)"])
    }

    // MARK: Start and stop of the daemon

    /// The first thing a starting daemon does, before the proxy listens, so that apps answer again at
    /// once: it puts right what an earlier daemon left. Interrupted deploys fail. Instances of each live
    /// release that still run (the same process: pid and start time) and pass one health check are adopted
    /// and routed to again, without a restart. Every other process an earlier daemon started for an app
    /// (an old release's instance, an unfinished build) is stopped; `restore` finishes that in the background.
    public func adopt() async {
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
            // The apps' health checks run side by side, so that one app's hung instance holds up no other app.
            let adopted = await withTaskGroup(of: [Instance].self) { group in
                for app in apps { group.addTask { await self.adoptLiveInstances(of: app) } }
                var adopted: [Instance] = []
                for await instances in group { adopted += instances }
                return adopted
            }
            let kept = Set(adopted.map(\.pid))
            for record in try store.runningInstances() where !kept.contains(record.pid) {
                try store.setInstanceStatus(pid: record.pid, .stopped)
            }
            let leftovers = ProcessTable.processes(carrying: ["SLIPWAY_DATA": settings.data.root])
                .filter { $0.environment["SLIPWAY_RELEASE"] != nil && !kept.contains($0.session) }
            leftoverStop = Task { [supervisor] in
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
    }

    /// The instances of `app`'s live release that an earlier daemon started and that still run and answer:
    /// adopted, routed to (web) and tracked (workers). An app with fewer than its scale is noted for `restore`.
    private func adoptLiveInstances(of app: App) async -> [Instance] {
        let name = app.appName
        guard let release = try? store.liveRelease(of: name), let tree = release.tree,
            let records = try? store.runningInstances(of: name).filter({ $0.releaseNumber == release.number })
        else { return [] }
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
        for type in release.processTypeCommands.keys.sorted() where type != "web" && type != "release" {
            let adopted = await adopt(type)
            workerInstances += adopted
            if adopted.count < app.scale(of: type) { incomplete.insert(name) }
        }
        workers[name] = workerInstances
        if web.count < max(1, app.scale(of: "web")) { incomplete.insert(name) }
        return web + workerInstances
    }

    /// No build runs yet: the scratch folders (with their copy of the config vars) of builds an earlier daemon
    /// did not finish go.
    private func removeBuildScratch(of name: AppName) {
        let releases = settings.data.releases(name)
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: releases)) ?? []
        where entry.hasSuffix(ReleaseBuilder.scratchSuffix) {
            try? FileManager.default.removeItem(atPath: releases + "/" + entry)
        }
    }

    /// The adopted web instances that pass one try (of at most a second) of the app's first health check; the
    /// others are stopped.
    private func answering(_ instances: [Instance], of name: AppName, tree: ReleaseVersion) async -> [Instance] {
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
    private func servingPlan(of name: AppName, tree: ReleaseVersion) -> HealthCheckPlan {
        (try? HealthCheckPlan.read(fromReleaseDirectory: settings.data.release(name, tree))) ?? .standard
    }

    /// After `adopt`, in the background: the leftovers are stopped, unfinished and surplus release trees
    /// removed, and each app that could not be adopted whole gets a complete new set of instances of its
    /// live release, switched to like a restart (the adopted ones serve until then).
    public func restore() async {
        await leftoverStop?.value
        guard let apps = try? store.apps() else { return }
        for app in apps {
            _ = pruneTrees(of: app.appName)
            // Repositories made by an earlier version let pushes write files other users could read.
            try? Repository(openBareAt: settings.data.repository(app.appName)).keepPrivate()
        }
        for name in incomplete.sorted(by: { $0.rawValue < $1.rawValue }) {
            await lock(name, output: DeployOutput { _ in })
            defer { locks.release(name) }
            let output = DeployOutput { [logger] line in
                logger.info("restore", metadata: ["app.name": "\(name)", "output": "\(line)"])
            }
            do {
                guard let release = try store.liveRelease(of: name) else { continue }
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
        incomplete = []
    }

    /// On the daemon's way out (a deploy under way has been cancelled and its pusher told by now). By default
    /// the apps keep running, drains included, for the next daemon to adopt or finish; with `stopApps`,
    /// drains finish and every instance stops.
    public func shutdown(stopApps: Bool) async {
        guard stopApps else { return }
        for drain in drains.values { await drain.value }
        await supervisor.stopAll()
    }

    // MARK: Deploys

    /// The post-receive path: deploys `revision` when `ref` is the app's deploy branch.
    public func receivePush(
        app name: AppName,
        ref: String,
        revision: String,
        cause: String,
        output: DeployOutput
    ) async throws
        -> DeployOutcome
    {
        let app = try store.app(name)
        guard ref == "refs/heads/\(app.deployBranch)" else {
            let branch = ref.hasPrefix("refs/heads/") ? String(ref.dropFirst("refs/heads/".count)) : ref
            output.step(
                "Stored \(branch); only \(app.deployBranch) is deployed (push to \(app.deployBranch) to deploy)"
            )
            return .notDeployed
        }
        if revision.allSatisfy({ $0 == "0" }) {
            output.step("\(app.deployBranch) was deleted; \(name) keeps serving its live release")
            return .notDeployed
        }
        return try await deploy(app: name, revision: revision, cause: cause, output: output)
    }

    /// Builds `revision` into a new release and makes it live, or fails leaving the live one serving.
    public func deploy(
        app name: AppName,
        revision: String,
        cause: String,
        output: DeployOutput
    ) async throws -> DeployOutcome {
        _ = try store.app(name)
        await lock(name, output: output)
        defer { locks.release(name) }

        let repository = settings.data.repository(name)
        let commit: CommitInfo
        do {
            commit = try Repository(openBareAt: repository).commit(revision)
        } catch {
            output.step("Deploy failed: \(error.userMessage)")
            return .failed
        }
        let release = try store.startRelease(
            of: name,
            description: "Deploy \(commit.id.prefix(7)) \(commit.summary)",
            commitID: commit.id,
            author: commit.author,
            cause: cause
        )
        logger.info("deploy started", metadata: ["app.name": "\(name)", "release.number": "\(release.number)"])
        return await finish(release, of: name, output: output) {
            try await deploy(release, of: name, output: output)
        }
    }

    /// Rolls `name` back to `target` (default: the newest retired release): boots that release's
    /// built tree with its config beside the live release and switches like a deploy, with no build.
    public func rollback(
        app name: AppName,
        to target: ReleaseVersion?,
        skipReleasePhase: Bool = false,
        cause: String,
        output: DeployOutput
    ) async throws -> DeployOutcome {
        _ = try store.app(name)
        await lock(name, output: output)
        defer { locks.release(name) }
        let data = settings.data
        let (rollback, chosen) = try store.startRollback(of: name, to: target, cause: cause) { release in
            release.tree.map { FileManager.default.fileExists(atPath: data.release(name, $0)) } ?? false
        }
        logger.info("rollback started", metadata: ["app.name": "\(name)", "release.number": "\(rollback.number)"])
        return await finish(rollback, of: name, output: output) {
            output.step(
                "Rolling \(name) back to \(chosen.version) as \(rollback.version): its build and config, no new build"
            )
            if !skipReleasePhase { try await runReleasePhase(rollback, of: name, output: output) }
            let serving = try await boot(rollback, of: name, output: output, recordedOn: rollback.id)
            try await activate(serving, of: name, output: output, applyingConfig: true)
        }
    }

    /// Deploys the exact build of `source`'s live release to `name`, with `name`'s own config: the
    /// built tree is copied (not rebuilt), then released, booted, checked and switched like a deploy.
    public func promote(
        from source: AppName,
        to name: AppName,
        cause: String,
        output: DeployOutput
    ) async throws -> DeployOutcome {
        guard source != name else { throw DeployError.promoteToItself(name) }
        _ = try store.app(name)
        guard let promoted = try store.liveRelease(of: source), let tree = promoted.tree,
            FileManager.default.fileExists(atPath: settings.data.release(source, tree))
        else { throw DeployError.nothingToPromote(source) }
        await lock(name, output: output)
        defer { locks.release(name) }
        let release = try store.startPromotion(of: promoted, to: name, cause: cause)
        logger.info(
            "promote started",
            metadata: ["app.name": "\(name)", "release.number": "\(release.number)", "source.app": "\(source)"]
        )
        return await finish(release, of: name, output: output) {
            try await step(.build, of: release.id!) {
                output.step(
                    "Promoting \(source) \(promoted.version) to \(name) \(release.version): the same build, \(name)'s config"
                )
                try FileManager.default.createDirectory(
                    atPath: settings.data.releases(name),
                    withIntermediateDirectories: true
                )
                let (status, text) = try await launcher.output(
                    of: Command(
                        "cp",
                        ["-a", settings.data.release(source, tree), settings.data.release(name, release.version)],
                        environment: settings.baseEnvironment
                    ),
                    for: .platform
                )
                guard status.succeeded else { throw DeployError.copyFailed(text) }
            }
            try await runReleasePhase(release, of: name, output: output)
            let serving = try await boot(release, of: name, output: output, recordedOn: release.id)
            try await activate(serving, of: name, output: output)
        }
    }

    /// Sets and unsets config vars as a new release of the live build, booted, health-checked and
    /// switched to like a deploy. Without a live release the change is only stored for the first deploy.
    public func changeConfig(
        app name: AppName,
        set values: [String: String],
        unset keys: [String],
        cause: String,
        output: DeployOutput
    )
        async throws -> DeployOutcome
    {
        _ = try store.app(name)
        await lock(name, output: output)
        defer { locks.release(name) }
        var config = try store.config(of: name)
        config.merge(values) { _, new in new }
        for key in keys { config[key] = nil }
        let changed = (values.keys.sorted() + keys.sorted()).joined(separator: ", ")
        guard let live = try store.liveRelease(of: name), let tree = live.tree,
            FileManager.default.fileExists(atPath: settings.data.release(name, tree))
        else {
            try store.setConfig(values, of: name)
            try store.unsetConfig(keys, of: name)
            output.step("Changed \(changed) on \(name); it has no live release, so this applies from its first deploy")
            return .notDeployed
        }
        let description =
            (values.isEmpty ? "" : "Set \(values.keys.sorted().joined(separator: ", "))")
            + (values.isEmpty || keys.isEmpty ? "" : "; ")
            + (keys.isEmpty ? "" : "Unset \(keys.sorted().joined(separator: ", "))")
        let release = try store.startRelease(reusing: live, description: description, config: config, cause: cause)
        return await finish(release, of: name, output: output) {
            output.step(
                "Changing \(changed) on \(name): \(live.version)'s build with the new config as \(release.version)"
            )
            try await runReleasePhase(release, of: name, output: output)
            let serving = try await boot(release, of: name, output: output, recordedOn: release.id)
            try await activate(serving, of: name, output: output, applyingConfig: true)
        }
    }

    /// Runs `count` (nil: as many as now, a restart) web instances of the live release: a whole new set boots and passes its health
    /// checks beside the serving one, then the proxy switches and the old set drains, so the app
    /// never has fewer healthy instances than before. Not a release: the build and config stay.
    public func scale(app name: AppName, web count: Int?, output: DeployOutput) async throws -> DeployOutcome {
        let previousCount = try store.app(name).scale(of: "web")
        await lock(name, output: output)
        defer { locks.release(name) }
        let count = count ?? previousCount
        try store.setScale(count, of: "web", for: name)
        guard let release = try store.liveRelease(of: name) else {
            output.step("\(name) will run \(count) web instance(s) from its first deploy")
            return .notDeployed
        }
        output.step(
            count == previousCount
                ? "Restarting \(name) \(release.version): \(count) new web instance(s) replace the running ones"
                : "Scaling \(name) \(release.version) from \(previousCount) to \(count) web instance(s)"
        )
        do {
            let serving = try await boot(release, of: name, output: output, recordedOn: nil)
            let replaced = await serve(serving, of: name)
            output.step("\(name) \(release.version) runs \(count) web instance(s) at \(settings.url(of: name))")
            if let replaced { retire(replaced, of: name, drainRecordedOn: nil) }
            return .live
        } catch {
            try? store.setScale(previousCount, of: "web", for: name)
            let reason = Self.reason(for: error)
            output.step("Scaling \(name) failed: " + reason.headline)
            for line in reason.details { output.detail(line) }
            output.detail("\(name) keeps running \(previousCount) web instance(s)")
            return .failed
        }
    }

    /// Runs `count` instances of a worker type of the live release: the running ones stop first.
    public func scale(
        app name: AppName,
        worker type: String,
        count: Int,
        output: DeployOutput
    ) async throws
        -> DeployOutcome
    {
        _ = try store.app(name)
        await lock(name, output: output)
        defer { locks.release(name) }
        guard let release = try store.liveRelease(of: name) else {
            try store.setScale(count, of: type, for: name)
            output.step("\(name) will run \(count) \(type) instance(s) from its first deploy")
            return .notDeployed
        }
        let types = release.processTypeCommands.keys.filter { $0 != "web" && $0 != "release" }.sorted()
        guard types.contains(type) else {
            throw DeployError.noSuchProcessType(name, release.version, type, declared: types)
        }
        try store.setScale(count, of: type, for: name)
        try await replaceWorkers(with: release, of: name, output: output, types: [type])
        output.step("\(name) \(release.version) runs \(count) \(type) instance(s)")
        return .live
    }

    /// Waits for the app's deploy lock, telling the pusher when it has to.
    private func lock(_ name: AppName, output: DeployOutput) async {
        guard !locks.tryAcquire(name) else { return }
        output.step("Another deploy of \(name) is running; waiting for it to finish")
        await withCheckedContinuation { locks.enqueue(name, $0) }
    }

    /// Runs the steps of `release`; on failure says why, keeps the live release serving and records
    /// the release as failed. The transcript becomes the release's build log either way.
    private func finish(
        _ release: Release,
        of name: AppName,
        output: DeployOutput,
        _ steps: () async throws -> Void
    ) async -> DeployOutcome {
        output.record(to: settings.data.releaseLog(name, release.version))
        defer {
            output.closeRecord()
            try? store.saveBuildLog(output.transcript, of: release.id!)
        }
        do {
            try await steps()
            return .live
        } catch {
            let reason = Self.reason(for: error)
            output.step("Deploy of \(name) \(release.version) failed: " + reason.headline)
            for line in reason.details { output.detail(line) }
            if let previous = live[name] {
                output.detail("\(name) \(previous.release.version) is still live at \(settings.url(of: name))")
            } else {
                output.detail("\(name) has no live release yet")
            }
            try? store.markFailed(release.id!, reason: reason.headline)
            logger.warning(
                "deploy failed",
                metadata: [
                    "app.name": "\(name)", "release.number": "\(release.number)", "reason": "\(reason.headline)",
                ]
            )
            return .failed
        }
    }

    private func deploy(_ release: Release, of name: AppName, output: DeployOutput) async throws {
        let releaseID = release.id!
        let version = release.version
        let request = BuildRequest(
            app: name,
            repository: settings.data.repository(name),
            revision: release.commitID!,
            releaseDirectory: settings.data.release(name, version),
            cacheDirectory: settings.data.cache(name),
            config: release.configValues,
            baseEnvironment: settings.baseEnvironment.merging(markers(of: release, of: name)) { $1 }
        )

        let built: BuiltRelease
        do {
            try await step(.checkout, of: releaseID) {
                output.step("Checking out \(release.commitID!.prefix(7)) for \(name) \(version)")
                _ = try builder.checkout(request)
            }
            built = try await step(.build, of: releaseID) { try await build(request, output: output) }
        } catch {
            // A failed build's tree is of no use to anyone, and may be large (a build that filled the disk).
            try? FileManager.default.removeItem(atPath: request.releaseDirectory)
            throw error
        }
        let builtRelease = try store.recordBuild(
            of: releaseID,
            buildpack: built.buildpack,
            processTypes: built.processTypes
        )
        for warning in built.healthChecks.warnings { output.step("Warning: \(warning)") }
        let app = try store.app(name)
        for type in built.processTypes.keys.sorted()
        where type != "web" && type != "release" && app.scale(of: type) == 0 {
            output.detail("\(type): not started (scale 0; run `slipway ps:scale \(name) \(type)=1` to start it)")
        }

        try await runReleasePhase(builtRelease, of: name, output: output)
        let serving = try await boot(builtRelease, of: name, output: output, recordedOn: releaseID)
        try await activate(serving, of: name, output: output)
    }

    /// Runs a build in one of the build slots, and stops it at the build timeout.
    private func build(_ request: BuildRequest, output: DeployOutput) async throws -> BuiltRelease {
        if !buildSlots.tryAcquire() {
            output.step(
                "Waiting for a build slot: this server runs at most \(buildSlots.limit) build(s) at once"
            )
            await withCheckedContinuation { buildSlots.enqueue($0) }
        }
        defer { buildSlots.release() }
        let (builder, timeout) = (self.builder, settings.buildTimeout)
        return try await withThrowingTaskGroup(of: BuiltRelease?.self) { group in
            group.addTask { try await builder.build(request, output: output.sink) }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let built = try await group.next() ?? nil else { throw DeployError.buildTimedOut(timeout) }
            return built
        }
    }

    /// Steps 6-7: boots the web instances of `release` (its built tree, its web command, its config)
    /// and waits until each passes the health checks of its app.json. They boot in batches of
    /// `settings.bootBatch`, each batch healthy before the next starts, so a big scale does not warm up all at
    /// once on a small host; the old release serves all the while. On failure the new instances are stopped
    /// and nothing else changes.
    private func boot(
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
        let followers = specs.indices.map { LogFollower(path: specs[$0].logFile, label: "web.\($0 + 1)") }
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
            let lastLines = failed.map { supervisor.lastOutput(of: $0.instance, lines: 10) } ?? []
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
    private func processSpec(
        _ release: Release,
        of name: AppName,
        type: String,
        index: Int = 1,
        command: String,
        tree: ReleaseVersion
    )
        throws -> InstanceSpec
    {
        try FileManager.default.createDirectory(atPath: settings.data.logs(name), withIntermediateDirectories: true)
        var environment = settings.baseEnvironment
        environment.merge(release.configValues) { _, config in config }
        environment["SLIPWAY_COMMIT"] = release.commitID ?? ""
        environment.merge(markers(of: release, of: name)) { _, marker in marker }
        environment["HTTP_FORWARDED_COUNT"] = "1"
        environment["DYNO"] = "\(type).\(index)"
        return InstanceSpec(
            app: name,
            release: release.version,
            processType: type,
            index: index,
            command: command,
            directory: settings.data.release(name, tree),
            environment: environment,
            logFile: settings.data.logs(name) + "/\(type).\(index).log"
        )
    }

    /// Every process of a release (its build, release phase and instances) carries these, so that a
    /// starting daemon finds what an earlier one left (`adopt`).
    private func markers(of release: Release, of name: AppName) -> [String: String] {
        [
            "SLIPWAY_DATA": settings.data.root, "SLIPWAY_APP": name.rawValue,
            "SLIPWAY_RELEASE": release.version.description,
        ]
    }

    /// Step 5: the Procfile's `release:` command (migrations), once, with the release's build and
    /// config, before any instance of the release boots. A failure stops the deploy here.
    private func runReleasePhase(_ release: Release, of name: AppName, output: DeployOutput) async throws {
        guard let command = release.processTypeCommands["release"], let tree = release.tree else { return }
        let spec = try processSpec(release, of: name, type: "release", command: command, tree: tree)
        try await step(.release, of: release.id) {
            output.step("Running the release phase: \(command)")
            let status = try await supervisor.runOnce(spec) { output.detail($0) }
            guard status.succeeded else { throw DeployError.releasePhaseFailed(command: command, status) }
        }
    }

    /// Steps 8-9: the switch, then the drain and retirement of what it replaced.
    private func activate(
        _ serving: ServingRelease,
        of name: AppName,
        output: DeployOutput,
        applyingConfig: Bool = false
    ) async throws {
        let releaseID = serving.release.id!
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
    private func serve(_ serving: ServingRelease, of name: AppName) async -> Replaced? {
        let set = router.activate(serving.set, for: name.rawValue)
        await supervisor.markServing(serving.instances)
        watchLiveness(of: serving, of: name)
        return live.updateValue(serving, forKey: name).map { ($0, set ?? $0.set) }
    }

    /// Starts the liveness watch of the release that just went live (see `LivenessWatch`), ending the one before.
    private func watchLiveness(of serving: ServingRelease, of name: AppName) {
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
    private func replaceWorkers(
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
        for (type, command) in release.processTypeCommands.sorted(by: { $0.key < $1.key })
        where type != "web" && type != "release" && types?.contains(type) ?? true {
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
    private func retire(_ replaced: Replaced, of name: AppName, drainRecordedOn releaseID: Int64?) {
        let (previous, replacedSet) = replaced
        let timeout = (try? store.app(name)).map(settings.drainTimeout(of:)) ?? settings.drainTimeout
        let window = settings.webSocketCloseWindow
        let id = UUID()
        drains[id] = Task {
            let event = releaseID.flatMap { try? store.startStep(.drain, of: $0) }
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

    /// Retention: keeps the live release's tree and the trees of the newest retired releases, up to
    /// `keepReleases` in all, and deletes the other built trees. Their history rows stay forever.
    private func pruneTrees(of name: AppName) -> [ReleaseVersion] {
        guard let history = try? store.history(of: name).map(\.release) else { return [] }
        let keep = (try? store.app(name).keepReleases) ?? settings.keepReleases
        var kept = Set(history.filter { $0.status == .live }.compactMap(\.buildNumber))
        for release in history where release.status == .retired && kept.count < keep {
            if let tree = release.buildNumber { kept.insert(tree) }
        }
        // A deploy under way owns its tree, and one that started after the history was read is newer than all of it.
        let newest = history.map(\.number).max() ?? 0
        for release in history where release.status == .building || release.status == .deploying {
            kept.insert(release.buildNumber ?? release.number)
        }
        let directory = settings.data.releases(name)
        let trees = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).compactMap(Int.init)
        var removed: [ReleaseVersion] = []
        for tree in trees.sorted() where tree <= newest && !kept.contains(tree) {
            do {
                try FileManager.default.removeItem(atPath: directory + "/\(tree)")
                removed.append(ReleaseVersion(tree))
            } catch {
                logger.warning(
                    "could not remove an old release tree",
                    metadata: ["app.name": "\(name)", "release.number": "\(tree)", "error": "\(error)"]
                )
            }
        }
        pruneReleaseLogs(of: name)
        return removed
    }

    static let keptReleaseLogs = 20

    /// Keeps the app's newest release log files.
    private func pruneReleaseLogs(of name: AppName) {
        let directory = settings.data.releaseLogs(name)
        let numbers = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).compactMap {
            $0.hasSuffix(".log") ? Int($0.dropLast(4)) : nil
        }
        for number in numbers.sorted().dropLast(Self.keptReleaseLogs) {
            try? FileManager.default.removeItem(atPath: directory + "/\(number).log")
        }
    }

    private func drainFinished(_ id: UUID) {
        drains[id] = nil
    }

    /// Runs `body` as `step` of the release, recording its start, end and outcome (when there is a release to record on).
    private func step<T>(_ step: DeployStep, of releaseID: Int64?, _ body: () async throws -> T) async throws -> T {
        guard let releaseID else { return try await body() }
        let event = try store.startStep(step, of: releaseID)
        do {
            let result = try await body()
            if step == heldStep {
                _ = FileManager.default.createFile(atPath: settings.data.root + "/holding-\(step)", contents: nil)
                try await Task.sleep(for: .seconds(3600))
            }
            try store.finishStep(event, outcome: .succeeded)
            return result
        } catch {
            _ = try? store.finishStep(event, outcome: .failed, detail: Self.reason(for: error).headline)
            throw error
        }
    }

    /// `current` is replaced by renaming a new link over it, so readers see the old or the new tree, never none.
    static func pointCurrent(_ link: String, to target: String) throws {
        let temporary = link + ".next"
        try? FileManager.default.removeItem(atPath: temporary)
        try FileManager.default.createSymbolicLink(atPath: temporary, withDestinationPath: target)
        guard rename(temporary, link) == 0 else {
            throw InternalError("could not point \(link) to \(target): \(String(cString: strerror(errno)))")
        }
    }

    static func verdict(
        _ name: AppName,
        _ version: ReleaseVersion,
        url: String,
        history: ReleaseHistoryEntry,
        switchTime: Duration
    ) -> String {
        let parts: [(String, DeployStep)] = [("build", .build), ("boot", .boot), ("health", .health)]
        let timings = parts.compactMap { label, step in history.duration(of: step).map { "\(label) \($0.seconds)" } }
        return "\(name) \(version) is live at \(url) ("
            + (timings + ["switch \(switchTime.milliseconds)"])
            .joined(separator: ", ") + ")"
    }

    struct Reason {
        var headline: String
        var details: [String] = []
    }

    static func reason(for error: any Error) -> Reason {
        if error is CancellationError { return Reason(headline: AppDatabase.interruptedReason()) }
        guard let failure = error as? BootFailure else { return Reason(headline: error.userMessage) }
        let tail =
            failure.lastOutput.isEmpty
            ? [] : ["last output of \(failure.instance):"] + failure.lastOutput.map { "  " + $0 }
        switch failure.cause {
        case HealthFailure.exited(let status):
            return Reason(
                headline: "\(failure.instance) \(status) during boot; fix the crash shown below and push again",
                details: tail
            )
        case HealthFailure.unhealthy(let check, let attempts, let last):
            let lastResult = last.map { "last check: \($0)" } ?? "no check ran"
            return Reason(
                headline:
                    "\(failure.instance) never passed the health check \"\(check)\" (\(attempts) tries); \(lastResult)",
                details: tail
            )
        default:
            return Reason(headline: reason(for: failure.cause).headline, details: tail)
        }
    }
}

/// A boot that did not become healthy, with the app's last words.
struct BootFailure: Error {
    /// Which instance failed, as `web.2`.
    var instance: String
    var cause: any Error
    var lastOutput: [String]
}

/// One instance of several failed its health check.
private struct UnhealthyInstance: Error {
    var label: String
    var instance: Instance
    var cause: any Error
}

extension Supervisor {
    func markServing(_ instances: [Instance]) {
        for instance in instances { markServing(instance) }
    }
}

extension Duration {
    /// `4.1s`
    var seconds: String {
        let value = Double(components.seconds) + Double(components.attoseconds) / 1e18
        return String(format: "%.1fs", value)
    }

    /// `0.4ms`
    var milliseconds: String {
        let value = Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
        return String(format: "%.1fms", value)
    }
}
