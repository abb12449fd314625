// Every way a release goes live: a push, a deploy of a ref, a rollback, a promotion, a config change, scaling.
import Foundation
import Logging
import SlipwayBasics
import SlipwayBuilder
import SlipwayGit
import SlipwayProxy
import SlipwayStore
import SlipwaySupervisor

/// When a push reaches the deployer: while git receives it (the proc-receive hook of an app with atomic pushes:
/// git has the objects and leaves the branch to Slipway), or once git has accepted it and moved the branch (the
/// post-receive hook).
public enum PushStage: Sendable, Equatable {
    /// `previous`: the commit the branch points at now (nil: it does not exist yet), which it moves from once the
    /// release is live.
    case receiving(previous: String?)
    case received
}

extension Deployer {
    /// Deploys `revision` when `ref` is the app's deploy branch: while the push is received for an app with atomic
    /// pushes (then the branch moves once the release is live, and a failed deploy rejects the push), once it was
    /// received for any other.
    public func receivePush(
        app name: AppName,
        ref: String,
        revision: String,
        cause: String,
        stage: PushStage,
        output: DeployOutput
    ) async throws
        -> DeployOutcome
    {
        let app = try store.app(name)
        if case .receiving(let previous) = stage {
            output.step("Deploying before the push is accepted (git:atomic on): a failed deploy rejects it")
            guard try await deploy(app: name, revision: revision, cause: cause, output: output) == .live else {
                output.step(
                    "The push is rejected: \(app.deployBranch) stays where it was; fix the cause and push again"
                )
                return .failed
            }
            do {
                try Repository(openBareAt: settings.data.repository(name))
                    .updateBranch(app.deployBranch, from: previous, to: revision)
            } catch {
                output.step(
                    "The release is live, but \(app.deployBranch) could not be moved to it: \(error.userMessage)"
                )
                return .failed
            }
            return .live
        }
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
        // Deployed while it was received; the branch moved because that release is live.
        if app.atomicPushes { return .notDeployed }
        let outcome = try await deploy(app: name, revision: revision, cause: cause, output: output)
        if outcome == .failed { moveBranchBack(app, from: revision, output: output) }
        return outcome
    }

    /// After a failed deploy the branch goes back to what is live (or away, with nothing live), so that it tells
    /// the truth and a push of the same commit deploys it again instead of being "Everything up-to-date".
    private func moveBranchBack(_ app: App, from revision: String, output: DeployOutput) {
        let branch = app.deployBranch
        let live = try? store.liveRelease(of: app.appName)
        do {
            try Repository(openBareAt: settings.data.repository(app.appName))
                .moveBranch(branch, from: revision, to: live?.commitID)
            if let live, let commit = live.commitID {
                output.step("\(branch) is back at \(commit.prefix(7)), \(app.name)'s live \(live.version)")
            } else {
                output.step("\(branch) is removed again: \(app.name) has nothing live")
            }
            output.detail("Fix the cause and push again; pushing \(revision.prefix(7)) again deploys it again")
        } catch {
            logger.warning(
                "could not move the branch back",
                metadata: ["app.name": "\(app.name)", "error": "\(error)"]
            )
        }
    }

    /// Builds `revision` into a new release and makes it live, or fails leaving the live one serving.
    public func deploy(
        app name: AppName,
        revision: String,
        cause: String,
        output: DeployOutput
    ) async throws -> DeployOutcome {
        _ = try store.app(name)
        return try await whileLocked(name, output: output) {
            let commit: CommitInfo
            do {
                commit = try Repository(openBareAt: settings.data.repository(name)).commit(revision)
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
            return await run(ReleasePlan(release: release, tree: .build), of: name, output: output)
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
        return try await whileLocked(name, output: output) {
            let data = settings.data
            let (rollback, chosen) = try store.startRollback(of: name, to: target, cause: cause) { release in
                release.tree.map { FileManager.default.fileExists(atPath: data.release(name, $0)) } ?? false
            }
            logger.info("rollback started", metadata: ["app.name": "\(name)", "release.number": "\(rollback.number)"])
            let plan = ReleasePlan(
                release: rollback,
                tree: .reuse,
                announcement:
                    "Rolling \(name) back to \(chosen.version) as \(rollback.version): its build and config, no new build",
                runsReleasePhase: !skipReleasePhase,
                appliesConfig: true
            )
            return await run(plan, of: name, output: output)
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
        return try await whileLocked(name, output: output) {
            let release = try store.startPromotion(of: promoted, to: name, cause: cause)
            logger.info(
                "promote started",
                metadata: ["app.name": "\(name)", "release.number": "\(release.number)", "source.app": "\(source)"]
            )
            let plan = ReleasePlan(
                release: release,
                tree: .copy(from: source, tree: tree),
                announcement:
                    "Promoting \(source) \(promoted.version) to \(name) \(release.version): the same build, \(name)'s config"
            )
            return await run(plan, of: name, output: output)
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
        return try await whileLocked(name, output: output) {
            var config = try store.config(of: name)
            config.merge(values) { _, new in new }
            for key in keys { config[key] = nil }
            let changed = (values.keys.sorted() + keys.sorted()).joined(separator: ", ")
            guard let live = try store.liveRelease(of: name), let tree = live.tree,
                FileManager.default.fileExists(atPath: settings.data.release(name, tree))
            else {
                try store.setConfig(values, of: name)
                try store.unsetConfig(keys, of: name)
                output.step(
                    "Changed \(changed) on \(name); it has no live release, so this applies from its first deploy"
                )
                return .notDeployed
            }
            let description =
                (values.isEmpty ? "" : "Set \(values.keys.sorted().joined(separator: ", "))")
                + (values.isEmpty || keys.isEmpty ? "" : "; ")
                + (keys.isEmpty ? "" : "Unset \(keys.sorted().joined(separator: ", "))")
            let release = try store.startRelease(reusing: live, description: description, config: config, cause: cause)
            let plan = ReleasePlan(
                release: release,
                tree: .reuse,
                announcement:
                    "Changing \(changed) on \(name): \(live.version)'s build with the new config as \(release.version)",
                appliesConfig: true
            )
            return await run(plan, of: name, output: output)
        }
    }

    /// Sets `type`'s limits (`*`: every type's; nil: none) as a new release of the live build, whose instances boot
    /// under them beside the live ones and are switched to like a deploy. Without a live release the limits are
    /// only stored, for the first deploy. Refused in one line where the host cannot apply limits.
    public func changeLimits(
        app name: AppName,
        type: String,
        to limits: ProcessLimits?,
        cause: String,
        output: DeployOutput
    )
        async throws -> DeployOutcome
    {
        _ = try store.app(name)
        if let reason = settings.limitsUnavailable { throw DeployError.limitsUnavailable(reason) }
        return try await whileLocked(name, output: output) {
            try store.setLimits(limits, of: type, for: name)
            let change = "limits of \(type == "*" ? "every process type" : type)"
            guard let live = try store.liveRelease(of: name), let tree = live.tree,
                FileManager.default.fileExists(atPath: settings.data.release(name, tree))
            else {
                output.step(
                    "Changed the \(change) on \(name); it has no live release, so this applies from its first deploy"
                )
                return .notDeployed
            }
            let description =
                "Set \(change): " + (limits.map(\.description).flatMap { $0.isEmpty ? nil : $0 } ?? "none")
            let release = try store.startRelease(
                reusing: live,
                description: description,
                config: live.config,
                cause: cause
            )
            let plan = ReleasePlan(
                release: release,
                tree: .reuse,
                announcement:
                    "Changing the \(change) on \(name): \(live.version)'s build under them as \(release.version)"
            )
            return await run(plan, of: name, output: output)
        }
    }

    /// Runs `count` (nil: as many as now, a restart) web instances of the live release: a whole new set boots and passes its health
    /// checks beside the serving one, then the proxy switches and the old set drains, so the app
    /// never has fewer healthy instances than before. Not a release: the build and config stay.
    public func scale(app name: AppName, web count: Int?, output: DeployOutput) async throws -> DeployOutcome {
        let previousCount = try store.app(name).scale(of: "web")
        return try await whileLocked(name, output: output) {
            try await restartWeb(of: name, count: count ?? previousCount, previousCount: previousCount, output: output)
        }
    }

    /// A whole new set of web instances of the live release, `count` of them, replacing the running ones.
    private func restartWeb(
        of name: AppName,
        count: Int,
        previousCount: Int,
        output: DeployOutput
    ) async throws -> DeployOutcome {
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
        return try await whileLocked(name, output: output) {
            try await scaleWorkers(of: name, type: type, count: count, output: output)
        }
    }

    /// `count` instances of the worker `type` of the live release, the running ones stopped first.
    private func scaleWorkers(
        of name: AppName,
        type: String,
        count: Int,
        output: DeployOutput
    ) async throws -> DeployOutcome {
        guard let release = try store.liveRelease(of: name) else {
            try store.setScale(count, of: type, for: name)
            output.step("\(name) will run \(count) \(type) instance(s) from its first deploy")
            return .notDeployed
        }
        let types = ProcessTypes.workers(in: release.processTypeCommands)
        guard types.contains(type) else {
            throw DeployError.noSuchProcessType(name, release.version, type, declared: types)
        }
        try store.setScale(count, of: type, for: name)
        try await replaceWorkers(with: release, of: name, output: output, types: [type])
        output.step("\(name) \(release.version) runs \(count) \(type) instance(s)")
        return .live
    }
}
