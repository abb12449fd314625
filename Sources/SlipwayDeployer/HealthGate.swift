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
    case unhealthy(check: String, tries: Int, last: ProbeResult?)
    /// Its processes listen, but not where the proxy looks: `addresses` instead of 127.0.0.1:`port`.
    case listensElsewhere(addresses: [String], port: Int)
}

struct HealthGate {
    var plan: HealthCheckPlan
    var host: String
    var output: DeployOutput
    /// Started before the instance booted, so none of its first lines are missed.
    var follower: LogFollower

    /// How long an instance may listen elsewhere while its own port stays closed before the check gives up: an app
    /// may open another port (metrics, a debugger) a moment before its own.
    static let listeningElsewhereGrace = Duration.seconds(10)
    /// A waiting line that says what the last one said is shown at most this often.
    static let repeatedWaitingLineInterval = Duration.seconds(5)

    func wait(for instance: Instance, upstream: Upstream) async throws {
        defer { follower.finish(into: output) }
        for check in plan.checks {
            try await run(check, instance: instance, upstream: upstream)
        }
    }

    private func run(_ check: HealthCheck, instance: Instance, upstream: Upstream) async throws {
        if check.initialDelay > .zero { try await Task.sleep(for: check.initialDelay) }
        var inARow = 0
        var last: ProbeResult?
        var lastShown: (line: String, at: ContinuousClock.Instant)?
        var listeningElsewhereSince: ContinuousClock.Instant?
        let deadline = check.deadline.map { ContinuousClock.now + $0 }
        var tries = 0
        while tries < max(1, check.attempts) {
            if let deadline, ContinuousClock.now >= deadline { break }
            follower.flush(into: output)
            if let status = instance.exitStatus { throw HealthFailure.exited(status) }
            let timeout = deadline.map { min(check.timeout, max(.milliseconds(100), $0 - .now)) } ?? check.timeout
            let result = await check.probe(upstream, host: host, timeout: timeout)
            if let status = instance.exitStatus { throw HealthFailure.exited(status) }
            tries += 1
            last = result
            if check.isPassed(by: result) {
                inARow += 1
                if inARow >= check.passesInARow { return }
            } else {
                inARow = 0
                if result.isRefused {
                    let elsewhere = ListeningSockets.of(processTree: instance.pid)
                    if elsewhere.isEmpty {
                        listeningElsewhereSince = nil
                    } else if let since = listeningElsewhereSince {
                        if ContinuousClock.now - since >= Self.listeningElsewhereGrace {
                            throw HealthFailure.listensElsewhere(addresses: elsewhere, port: upstream.port)
                        }
                    } else {
                        listeningElsewhereSince = .now
                    }
                }
                let line = "waiting: \(result)"
                if lastShown.map({ $0.line != line || ContinuousClock.now - $0.at >= Self.repeatedWaitingLineInterval })
                    ?? true
                {
                    output.detail(line + " (" + progress(of: check, tries: tries, deadline: deadline) + ")")
                    lastShown = (line, .now)
                }
            }
            // The default check spends little time on an app that is not listening yet: it asks again soon, so a
            // fast starter is not kept waiting a whole second; its deadline bounds the wait.
            let pause = plan.isDefault && result.isRefused ? .milliseconds(100) : check.wait
            if tries < check.attempts { try await Task.sleep(for: pause) }
        }
        throw HealthFailure.unhealthy(check: check.name, tries: tries, last: last)
    }

    /// `try 2 of 3`, or `try 14, 95s left` for a check bounded by its deadline.
    private func progress(of check: HealthCheck, tries: Int, deadline: ContinuousClock.Instant?) -> String {
        guard let deadline else { return "try \(tries) of \(check.attempts)" }
        let left = max(0, Int(((deadline - .now) / .seconds(1)).rounded(.up)))
        return "try \(tries), \(left)s left"
    }
}

extension HealthCheck {
    /// One try of this check against `upstream`: a GET of its path, or a TCP connection for a listening check.
    func probe(_ upstream: Upstream, host: String, timeout: Duration) async -> ProbeResult {
        listening
            ? await HealthProbe.connect(upstream, timeout: timeout)
            : await HealthProbe.get(upstream, path: path, host: host, timeout: timeout)
    }

    func isPassed(by result: ProbeResult) -> Bool {
        result.passes(content: content, upgradeRequiredPasses: upgradeRequiredPasses)
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
        let check = checks.first ?? HealthCheckPlan.standard.checks[0]
        let result = await check.probe(upstream, host: host, timeout: min(check.timeout, limit))
        return (check.isPassed(by: result), result)
    }
}

/// Shows the pusher what a booting instance writes, as it writes it: its own lines, not those another release's
/// instance in the same slot writes to the same file meanwhile. What it writes in answer to each try of a failing
/// check is often the same traceback again: a batch of lines the same as the one before is counted, not shown, and
/// the count is said when something else comes (or at the end).
final class LogFollower: Sendable {
    private let path: String
    /// `v5 web.1`: the lines shown are this one's.
    private let label: String
    private let state: Mutex<State>

    private struct State {
        var offset: UInt64
        var previous: [String] = []
        var repeats = 0
    }

    /// Follows from the file's current end: earlier boots' output is not this boot's.
    init(path: String, label: String) {
        self.path = path
        self.label = label
        let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? UInt64
        state = Mutex(State(offset: size ?? 0))
    }

    func flush(into output: DeployOutput) {
        let start = state.withLock { $0.offset }
        let (read, end) = LogReading.lines(of: path, from: start)
        let lines = read.compactMap { LogLine(kept: $0) }.filter { $0.label == label }.map(\.text)
        let shown: [String] = state.withLock { state in
            state.offset = end
            guard !lines.isEmpty else { return [] }
            if lines == state.previous {
                state.repeats += 1
                return []
            }
            let summary = summary(of: &state)
            state.previous = lines
            return summary + lines.map { "\(label)| " + $0 }
        }
        for line in shown { output.detail(line) }
    }

    /// Shows what is left, and how often the last lines came again.
    func finish(into output: DeployOutput) {
        flush(into: output)
        for line in state.withLock({ summary(of: &$0) }) { output.detail(line) }
    }

    private func summary(of state: inout State) -> [String] {
        defer { state.repeats = 0 }
        guard state.repeats > 0 else { return [] }
        return ["\(label)| " + RepeatedLines.summary(of: state.repeats, lines: state.previous.count)]
    }
}
