// Steps 3-4 of a deploy, its tree: the checkout and build of a pushed commit (in a build slot, within the build
// timeout, with app.json's config defaults on an app's first deploy), or a copy of another app's built tree.
import Foundation
import SlipwayBasics
import SlipwayBuilder
import SlipwayStore

extension Deployer {
    /// Checks the release's commit out and builds it; returns the release with its build recorded.
    func checkoutAndBuild(_ release: Release, of name: AppName, output: DeployOutput) async throws -> Release {
        let releaseID = release.id
        let version = release.version
        let request = BuildRequest(
            app: name,
            repository: settings.data.repository(name),
            revision: release.commitID!,
            releaseDirectory: settings.data.release(name, version),
            cacheDirectory: settings.data.cache(name),
            config: release.config,
            baseEnvironment: settings.baseEnvironment,
            markers: markers(of: release, of: name),
            dataDirectory: settings.data.root
        )

        let built: BuiltRelease
        do {
            try await step(.checkout, of: releaseID) {
                output.step("Checking out \(release.commitID!.prefix(7)) for \(name) \(version)")
                _ = try builder.checkout(request)
            }
            built = try await step(.build, of: releaseID) {
                var request = request
                request.config = try applyConfigDefaults(to: release, of: name, output: output).config
                return try await build(request, output: output)
            }
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
        for type in ProcessTypes.workers(in: built.processTypes) where app.scale(of: type) == 0 {
            output.detail("\(type): not started (scale 0; run `slipway ps:scale \(name) \(type)=1` to start it)")
        }
        return builtRelease
    }

    /// On an app's first deploy (none of its releases went live yet), app.json's `env` sets what is not set: its
    /// defaults and generated secrets, into the app's config and this release's; a required var that is not set
    /// fails the deploy naming it. Later deploys leave config alone: what an admin unset stays unset.
    func applyConfigDefaults(to release: Release, of name: AppName, output: DeployOutput) throws -> Release {
        guard try !store.hasBeenLive(name) else { return release }
        let declared = try ConfigDefaults.read(fromReleaseDirectory: settings.data.release(name, release.version))
        var added: [String: String] = [:]
        var missing: [(name: String, description: String?)] = []
        for entry in declared where release.config[entry.name] == nil {
            switch entry.source {
            case .value(let value): added[entry.name] = value
            case .secret: added[entry.name] = ConfigDefault.secret()
            case .required: missing.append((entry.name, entry.description))
            case .optional: break
            }
        }
        guard missing.isEmpty else { throw BuildError.requiredConfigMissing(missing) }
        guard !added.isEmpty else { return release }
        let generated = declared.filter { $0.source == .secret && added[$0.name] != nil }.map(\.name)
        output.step(
            "Setting config from app.json: "
                + added.keys.sorted().map { key in
                    key + (generated.contains(key) ? " (generated secret)" : " (default)")
                }.joined(separator: ", ")
        )
        return try store.addConfigDefaults(added, of: name, to: release.id)
    }

    /// Copies `source`'s built tree `tree` as the tree of `release` (a promotion: the same build, not rebuilt).
    func copyTree(of source: AppName, _ tree: ReleaseVersion, for release: Release, of name: AppName) async throws {
        try await step(.build, of: release.id) {
            try FileManager.default.createDirectory(
                atPath: settings.data.releases(name),
                withIntermediateDirectories: true
            )
            let (status, text) = try await launcher.output(
                of: Command(
                    "cp",
                    ["-a", settings.data.release(source, tree), settings.data.release(name, release.version)],
                    environment: settings.platformEnvironment
                ),
                for: .platform
            )
            guard status.succeeded else { throw DeployError.copyFailed(text) }
        }
    }

    /// Runs a build in one of the build slots, and stops it at the build timeout.
    func build(_ request: BuildRequest, output: DeployOutput) async throws -> BuiltRelease {
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
}
