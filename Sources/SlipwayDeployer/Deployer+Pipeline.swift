// The release pipeline: every plan (see ReleasePlan) is carried out here, in one order, each step recorded, under
// the app's deploy lock: its tree, its release phase, its instances booted beside the live ones and
// health-checked, the switch, and the drain of what it replaced. A failure at any step leaves the live release
// serving and the release recorded as failed with its reason.
import Foundation
import SlipwayBasics
import SlipwayStore

extension Deployer {
    /// Runs `body` holding the app's deploy lock, which the app's next deploy waits for (and is told so).
    func whileLocked<T>(_ name: AppName, output: DeployOutput, _ body: () async throws -> T) async rethrows -> T {
        await lock(name, output: output)
        defer { locks.release(name) }
        return try await body()
    }

    /// Carries `plan` out; the caller holds the app's lock.
    func run(_ plan: ReleasePlan, of name: AppName, output: DeployOutput) async -> DeployOutcome {
        await finish(plan.release, of: name, output: output) {
            if let announcement = plan.announcement { output.step(announcement) }
            if let warning = settings.isolationWarning { output.step("Warning: " + warning) }
            var release = plan.release
            switch plan.tree {
            case .build: release = try await checkoutAndBuild(release, of: name, output: output)
            case .reuse: break
            case .copy(let source, let tree): try await copyTree(of: source, tree, for: release, of: name)
            }
            if plan.runsReleasePhase { try await runReleasePhase(release, of: name, output: output) }
            try await replace(with: release, as: plan, of: name, output: output)
        }
    }

    /// The release's instances take over from the live ones, by the plan's strategy.
    private func replace(
        with release: Release,
        as plan: ReleasePlan,
        of name: AppName,
        output: DeployOutput
    )
        async throws
    {
        switch plan.replacement {
        case .bootBesideThenSwitch:
            let serving = try await boot(release, of: name, output: output, recordedOn: release.id)
            try await activate(serving, of: name, output: output, applyingConfig: plan.appliesConfig)
        }
    }
}
