// LivenessWatch: keeps checking the web instances of a live release after its switch. An instance that
// exits, or fails several checks in a row, is taken out of rotation at once and replaced on its port; the
// replacement is back in rotation only once it passes the app's health checks.
import Logging
import SlipwayBasics
import SlipwayBuilder
import SlipwayProxy
import SlipwaySupervisor

struct LivenessWatch: Sendable {
    var plan: HealthCheckPlan
    var host: String
    var interval: Duration
    /// Failed checks in a row that take an instance out of rotation.
    var failuresAllowed: Int
    var supervisor: Supervisor
    var logger: Logger

    /// Watches instance `slot` of `set` until the task is cancelled (the release was replaced).
    func watch(_ instance: Instance, slot: Int, in set: UpstreamSet) async {
        let upstream = set.upstreams[slot]
        var failures = 0
        while !Task.isCancelled {
            // Between checks an exit is seen within a tenth of a second, not at the next check.
            let next = ContinuousClock.now + interval
            while instance.isRunning, ContinuousClock.now < next, !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
            }
            guard !Task.isCancelled, instance.exitStatus == nil else { return }
            let problem: String
            if instance.isRunning {
                let (passed, result) = await plan.tryFirstCheck(upstream, host: host, within: interval)
                if passed {
                    failures = 0
                    continue
                }
                failures += 1
                guard failures >= failuresAllowed else { continue }
                problem = "failed \(failures) liveness checks in a row (last: \(result))"
            } else {
                problem = "exited"
            }
            set.setInRotation(slot, false)
            logger.warning(
                "instance out of rotation",
                metadata: metadata(instance, slot: slot, ["reason": "\(problem)"])
            )
            guard await replace(instance, slot: slot, upstream: upstream) else { return }
            await supervisor.markServing(instance)
            set.setInRotation(slot, true)
            failures = 0
            logger.info("instance back in rotation", metadata: metadata(instance, slot: slot))
        }
    }

    /// Has the supervisor replace the instance (an exited one it restarts by itself, after a backoff that grows
    /// while it keeps crashing) and waits until the replacement passes the health checks. False once the
    /// instance has ended for good or the watch was cancelled.
    private func replace(_ instance: Instance, slot: Int, upstream: Upstream) async -> Bool {
        if instance.isRunning { await supervisor.restart(instance) }
        while !Task.isCancelled, instance.exitStatus == nil {
            while !instance.isRunning, instance.exitStatus == nil, !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
            }
            let output = DeployOutput { [logger] line in logger.debug("\(line)") }
            let gate = HealthGate(
                plan: plan,
                host: host,
                output: output,
                follower: LogFollower(path: instance.spec.logFile, label: instance.spec.label)
            )
            do {
                try await gate.wait(for: instance, upstream: upstream)
                return true
            } catch is CancellationError {
                return false
            } catch {
                logger.warning(
                    "replacement instance not healthy; replacing it again",
                    metadata: metadata(instance, slot: slot, ["error": "\(Deployer.reason(for: error).headline)"])
                )
                if instance.isRunning { await supervisor.restart(instance) }
            }
        }
        return false
    }

    private func metadata(_ instance: Instance, slot: Int, _ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        extra.merging(
            [
                "app.name": "\(instance.spec.app)", "release.number": "\(instance.spec.release.number)",
                "instance": "web.\(slot + 1)", "instance.pid": "\(instance.pid)",
            ]
        ) { $1 }
    }
}
