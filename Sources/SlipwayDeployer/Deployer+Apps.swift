// The deployer's work on apps themselves: creating one with its repository and hook, its routes, destroying one.
import Foundation
import Logging
import SlipwayBasics
import SlipwayBuilder
import SlipwayGit
import SlipwayProxy
import SlipwayStore
import SlipwaySupervisor
import SlipwayTLS

extension Deployer {
    /// HSTS's max-age for `proxy:https APP only` without `--max-age`: a year, as Caddy and most guides set it.
    public static let defaultHSTSMaxAge = 31_536_000

    /// The git hooks every app's repository has: proc-receive (atomic pushes) and post-receive.
    static let hooks = ["proc-receive", "post-receive"]

    /// Turns atomic pushes on or off: git hands a push of the deploy branch (a new branch or a change, never a
    /// deletion) to the proc-receive hook, which deploys it before the push is accepted.
    public func setAtomicPushes(_ on: Bool, for name: AppName) throws {
        try store.setAtomicPushes(on, for: name)
        try applyAtomicPushes(of: name)
    }

    /// Makes the repository's config say what the store says of atomic pushes.
    func applyAtomicPushes(of name: AppName) throws {
        let app = try store.app(name)
        try Repository(openBareAt: settings.data.repository(name))
            .setConfig("receive.procReceiveRefs", to: app.atomicPushes ? "am:refs/heads/\(app.deployBranch)" : nil)
    }

    /// Records the app, creates its bare repository and installs its hooks.
    public func createApp(_ name: AppName) throws -> App {
        for hook in Self.hooks where !FileManager.default.fileExists(atPath: settings.hooksDirectory + "/" + hook) {
            throw DeployError.hookMissing(settings.hooksDirectory + "/" + hook)
        }
        let app = try store.createApp(name)
        do {
            try FileManager.default.createDirectory(
                atPath: settings.data.repositories,
                withIntermediateDirectories: true
            )
            _ = try Repository.createBare(at: settings.data.repository(name), headBranch: app.deployBranch)
            try installHooks(of: name)
        } catch {
            throw DeployError.couldNotCreate(name, error.userMessage)
        }
        try applyRoutes(of: name)
        return app
    }

    /// Puts this version's hooks into the app's repository (at creation, and at every start, so a repository an
    /// earlier version made gets the hooks it lacks).
    func installHooks(of name: AppName) throws {
        for hook in Self.hooks {
            let installed = settings.data.repository(name) + "/hooks/" + hook
            try? FileManager.default.removeItem(atPath: installed)
            try FileManager.default.copyItem(atPath: settings.hooksDirectory + "/" + hook, toPath: installed)
            try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: installed)
        }
    }

    /// The hosts the app answers: its own and its domains.
    public func hosts(of name: AppName) throws -> [String] {
        [settings.host(of: name)] + (try store.domains(of: name))
    }

    /// Points the app's hosts (its default one and its domains) at it, and sets its maintenance page,
    /// the prefix of its Slipway endpoints and its sticky sessions.
    public func applyRoutes(of name: AppName) throws {
        let app = try store.app(name)
        router.setHosts(try hosts(of: name), for: name.rawValue)
        router.setMaintenance(app.maintenance, for: name.rawValue)
        router.setEndpointPrefix(app.endpointPrefix, for: name.rawValue)
        router.setStickySessions(app.stickySessions, for: name.rawValue)
        let https: HTTPSPolicy =
            switch app.httpsMode {
            case .off: .off
            case .redirect: .redirect
            case .only: .only(maxAge: app.hstsMaxAge ?? Self.defaultHSTSMaxAge)
            }
        router.setHTTPSPolicy(https, for: name.rawValue)
        hostsChanged()
    }

    /// Empties the app's build cache, between its builds: the next one starts from nothing.
    public func clearBuildCache(of name: AppName, output: DeployOutput) async throws {
        _ = try store.app(name)
        await whileLocked(name, output: output) {
            let cache = settings.data.cache(name)
            let existed = FileManager.default.fileExists(atPath: cache)
            try? FileManager.default.removeItem(atPath: cache)
            output.step(
                existed
                    ? "Emptied \(name)'s build cache; its next build starts from nothing"
                    : "\(name) has no build cache yet"
            )
        }
    }

    /// Stops the app's instances at once (no drain: it is going away), then forgets it and
    /// deletes its repository, release trees, cache and logs, and its host user if it has one. A deploy under way
    /// finishes first.
    public func destroyApp(_ name: AppName) async throws {
        _ = try store.app(name)
        try await whileLocked(name, output: DeployOutput { _ in }) {
            _ = router.remove(app: name.rawValue)
            liveness.removeValue(forKey: name)?.cancel()
            let instances =
                (live.removeValue(forKey: name)?.instances ?? []) + (workers.removeValue(forKey: name) ?? [])
            await withTaskGroup(of: Void.self) { group in
                for instance in instances { group.addTask { await self.supervisor.stop(instance) } }
            }
            await stopDetached(of: name)
            certificateStore.remove(app: name.rawValue)
            certificates.remove(app: name.rawValue)
            try store.destroyApp(name)
            for path in [settings.data.repository(name), settings.data.appDirectory(name)] {
                try? FileManager.default.removeItem(atPath: path)
            }
            do {
                try launcher.forget(name)
            } catch {
                logger.warning("\(error.userMessage)", metadata: ["app.name": "\(name)"])
            }
            logger.info("app destroyed", metadata: ["app.name": "\(name)"])
        }
    }
}
