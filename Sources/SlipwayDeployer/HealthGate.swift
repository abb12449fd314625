// HealthGate: runs an app's health-check plan against a booting instance, showing the pusher
// progress and the app's own output, and says why it failed if it does.
import Foundation
import SlipwayBasics
import SlipwayBuilder
import SlipwayProxy
import SlipwaySupervisor
import Synchronization

enum HealthFailure: Error {
    case exited(ExitStatus)
    case unhealthy(check: String, attempts: Int, last: ProbeResult?)
}

struct HealthGate {
    var plan: HealthCheckPlan
    var host: String
    var output: DeployOutput
    /// Started before the instance booted, so none of its first lines are missed.
    var follower: LogFollower

    func wait(for instance: Instance, upstream: Upstream) async throws {
        defer { follower.flush(into: output) }
        for check in plan.checks {
            try await run(check, instance: instance, upstream: upstream, follower: follower)
        }
    }

    private func run(_ check: HealthCheck, instance: Instance, upstream: Upstream, follower: LogFollower) async throws {
        if check.initialDelay > .zero { try await Task.sleep(for: check.initialDelay) }
        var inARow = 0
        var last: ProbeResult?
        var lastShown = ContinuousClock.now
        let deadline = check.deadline.map { ContinuousClock.now + $0 }
        var attempt = 0
        while attempt < max(1, check.attempts) {
            if let deadline, ContinuousClock.now >= deadline { break }
            follower.flush(into: output)
            if let status = instance.exitStatus { throw HealthFailure.exited(status) }
            let timeout = deadline.map { min(check.timeout, max(.milliseconds(100), $0 - .now)) } ?? check.timeout
            let result = await HealthProbe.get(upstream, path: check.path, host: host, timeout: timeout)
            if let status = instance.exitStatus { throw HealthFailure.exited(status) }
            last = result
            let shouldShow = !plan.isDefault || ContinuousClock.now - lastShown >= .seconds(5)
            // The default check spends no try on an app that is not listening yet: it asks again soon, so a
            // fast starter is not kept waiting a whole second; its deadline still bounds the wait.
            if plan.isDefault && result.isRefused {
                if shouldShow {
                    output.detail("waiting: \(result)")
                    lastShown = .now
                }
                try await Task.sleep(for: .milliseconds(100))
                continue
            }
            attempt += 1
            if result.passes(content: check.content) {
                inARow += 1
                if inARow >= check.passesInARow { return }
            } else {
                inARow = 0
                // Every try for explicit checks; at most every five seconds for the patient default.
                if shouldShow {
                    output.detail("waiting: \(result) (try \(attempt) of \(check.attempts))")
                    lastShown = .now
                }
            }
            if attempt < check.attempts { try await Task.sleep(for: check.wait) }
        }
        throw HealthFailure.unhealthy(check: check.name, attempts: attempt, last: last)
    }
}

extension HealthCheckPlan {
    /// One try of the plan's first check, the one that keeps being asked once an instance serves (adoption,
    /// liveness), within `limit`: its result, and whether it passed.
    func tryFirstCheck(
        _ upstream: Upstream,
        host: String,
        within limit: Duration
    ) async -> (
        passed: Bool, result: ProbeResult
    ) {
        let check = checks.first
        let result = await HealthProbe.get(
            upstream,
            path: check?.path ?? "/",
            host: host,
            timeout: min(check?.timeout ?? limit, limit)
        )
        return (result.passes(content: check?.content), result)
    }
}

/// Shows the pusher what a booting instance writes, as it writes it.
final class LogFollower: Sendable {
    private let path: String
    private let label: String
    private let offset: Mutex<UInt64>

    /// Follows from the file's current end: earlier boots' output is not this boot's.
    init(path: String, label: String) {
        self.path = path
        self.label = label
        let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? UInt64
        offset = Mutex(size ?? 0)
    }

    func flush(into output: DeployOutput) {
        let start = offset.withLock { $0 }
        let (lines, end) = LogReading.lines(of: path, from: start)
        offset.withLock { $0 = end }
        for line in lines { output.detail("\(label)| " + line) }
    }
}
