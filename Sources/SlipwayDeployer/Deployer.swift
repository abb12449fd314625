// SlipwayDeployer: the deploy state machine of ARCHITECTURE.md ("A deploy, step by step"). Holds the
// per-app deploy locks and the build slots, records every step as an event, boots the new release
// beside the live one, gates it on its health checks, switches the proxy in one step, then drains
// and retires the old instances; watches the live instances' liveness; and at a daemon's start,
// adopts what an earlier daemon left running and cleans up what it left half done. It uses the
// builder, supervisor, proxy and store through their APIs. This file holds its state, the lock, the recording of
// each step and the sentence a failure ends with. Every release goes live as a ReleasePlan carried out by the one
// pipeline in Deployer+Pipeline; the public operations, each a lock, a plan and a run, are in Deployer+Releases;
// the steps in Deployer+Steps; the daemon's start and stop in Deployer+Startup; apps in Deployer+Apps; retention in
// Deployer+Retention.
import Foundation
import Logging
import SlipwayBasics
import SlipwayBuilder
import SlipwayGit
import SlipwayProxy
import SlipwayStore
import SlipwaySupervisor
import SlipwayTLS

public actor Deployer {
    let settings: DeploySettings
    let store: AppDatabase
    let supervisor: Supervisor
    let router: Router
    let builder: ReleaseBuilder
    let launcher: any Launcher
    let logger: Logger
    var locks = DeployLocks()
    /// At most `settings.maxBuilds` builds at once, so that pushes to many apps cannot starve the live ones.
    var buildSlots: Slots
    /// The instances serving each app's live release.
    var live: [AppName: ServingRelease] = [:]
    /// The instances of each app's other process types (workers): no port, no proxy.
    var workers: [AppName: [Instance]] = [:]
    /// Drains in progress, so that a shutdown lets them finish.
    var drains: [UUID: Task<Void, Never>] = [:]
    /// The liveness watch of each app's live release.
    var liveness: [AppName: Task<Void, Never>] = [:]
    /// The one-off commands of each app running in the background (`run --detach`).
    var detached: [AppName: [ChildProcess]] = [:]
    /// The certificates the HTTPS listener presents, by app.
    public nonisolated let certificates = ServedCertificates()
    /// Gets apps certificates from the ACME CA, when the daemon has an account there.
    var certificateKeeper: CertificateKeeper?
    /// A test hook for fault injection (env SLIPWAY_TEST_HOLD_STEP=switch, …): that step, its work done, says so in
    /// `<data>/holding-STEP` and waits instead of finishing, so that a test can kill the daemon at that point.
    let heldStep = ProcessInfo.processInfo.environment["SLIPWAY_TEST_HOLD_STEP"].flatMap(DeployStep.init)

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

    /// Waits for the app's deploy lock, telling the pusher when it has to.
    func lock(_ name: AppName, output: DeployOutput) async {
        guard !locks.tryAcquire(name) else { return }
        output.step("Another deploy of \(name) is running; waiting for it to finish")
        await withCheckedContinuation { locks.enqueue(name, $0) }
    }

    /// Runs the steps of `release`; on failure says why, keeps the live release serving and records
    /// the release as failed. The transcript becomes the release's build log either way.
    func finish(
        _ release: Release,
        of name: AppName,
        output: DeployOutput,
        _ steps: () async throws -> Void
    ) async -> DeployOutcome {
        output.record(to: settings.data.releaseLog(name, release.version))
        defer {
            output.closeRecord()
            _ = try? store.saveBuildLog(output.transcript, of: release.id)
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
            _ = try? store.markFailed(release.id, reason: reason.headline)
            logger.warning(
                "deploy failed",
                metadata: [
                    "app.name": "\(name)", "release.number": "\(release.number)", "reason": "\(reason.headline)",
                ]
            )
            return .failed
        }
    }

    func drainFinished(_ id: UUID) {
        drains[id] = nil
    }

    /// Runs `body` as `step` of the release, recording its start, end and outcome (when there is a release to record on).
    func step<T>(_ step: DeployStep, of releaseID: Int64?, _ body: () async throws -> T) async throws -> T {
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
                headline: "\(failure.instance) \(status) during boot; fix the crash in its last output and push again",
                details: tail
            )
        case HealthFailure.unhealthy(let check, let tries, let last):
            let lastResult = last.map { "last check: \($0)" } ?? "no check ran"
            return Reason(
                headline:
                    "\(failure.instance) never passed the health check \"\(check)\" (\(tries) tries); \(lastResult)",
                details: tail
            )
        case HealthFailure.listensElsewhere(let addresses, let port):
            let listed = addresses.joined(separator: ", ")
            let headline =
                addresses.contains { $0.hasSuffix(":\(port)") }
                ? "\(failure.instance) listens on \(listed), which the proxy does not reach at 127.0.0.1:\(port): "
                    + "listen on 0.0.0.0 or 127.0.0.1"
                : "\(failure.instance) listens on \(listed), not on PORT=\(port): bind to $PORT"
            return Reason(headline: headline, details: tail)
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
struct UnhealthyInstance: Error {
    var label: String
    var instance: Instance
    var cause: any Error
}

/// The process types of a release, as the deployer runs them: `web` behind the proxy, `release` once before the
/// boot, and every other one a worker.
enum ProcessTypes {
    /// The worker types among `types`, sorted.
    static func workers(in types: [String: String]) -> [String] {
        types.keys.filter { $0 != "web" && $0 != "release" }.sorted()
    }
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
