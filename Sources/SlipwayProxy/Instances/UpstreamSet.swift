// UpstreamSet: the instances of one release, the requests and WebSocket tunnels that hold them,
// and the drain that lets those finish once a newer set has replaced this one.
import Synchronization

/// The instances of one release that serve an app: requests claim one of them, a drain waits for them.
public final class UpstreamSet: Sendable {
    public let release: ReleaseStamp
    /// The release's name (`v12`), made once: every answer carries it.
    let version: String
    public let upstreams: [Upstream]
    private let state: Mutex<State>

    private struct State {
        var nextUpstream = 0
        var nextTicket = 0
        /// Claimed HTTP requests: the instance each went to first, and how it is cut off at the drain deadline.
        var requests: [Int: (upstream: Int, cutOff: DrainCutOff)] = [:]
        /// Claimed requests per instance (by index in `upstreams`), for least-outstanding balancing.
        var outstanding: [Int]
        /// Open WebSocket tunnels, each with the action that tells both sides it is going away, and why.
        var tunnels: [Int: @Sendable (GoingAwayReason) -> Void] = [:]
        var draining = false
        /// What the close frames of this set's drain say.
        var goingAwayReason = GoingAwayReason.newRelease
        /// Instances out of rotation (bit i: index i), which get no new requests.
        var resting: UInt64 = 0
        /// Tunnels refused because their 101 arrived after the drain had started.
        var tunnelsRefusedWhileDraining = 0
    }

    public init(release: ReleaseStamp, upstreams: [Upstream]) {
        self.release = release
        self.version = release.version
        self.upstreams = upstreams
        self.state = Mutex(State(outstanding: Array(repeating: 0, count: upstreams.count)))
    }

    /// HTTP requests claimed and not finished.
    public var inFlight: Int { state.withLock { $0.requests.count } }

    /// WebSocket tunnels open through this set.
    public var openWebSockets: Int { state.withLock { $0.tunnels.count } }

    /// Takes instance `index` out of rotation (it failed its liveness checks, or exited) or puts it back in (its
    /// replacement passed its health check). Requests already on it are not touched. Only the first 64 instances
    /// of a set can be taken out.
    public func setInRotation(_ index: Int, _ inRotation: Bool) {
        guard index < 64 else { return }
        state.withLock { state in
            if inRotation { state.resting &= ~(1 << index) } else { state.resting |= 1 << index }
        }
    }

    /// The instances in rotation, by index.
    public var inRotation: [Int] {
        let resting = state.withLock { $0.resting }
        return upstreams.indices.filter { $0 >= 64 || resting & (1 << $0) == 0 }
    }

    /// Whether a drain has started: the set was replaced and takes no new tunnels.
    public var isDraining: Bool { state.withLock { $0.draining } }

    /// Called after the set was replaced: waits until every in-flight request finished, at most `timeout`.
    /// Requests still running at the deadline are answered 504 (short body) and their upstream connections closed.
    /// WebSocket tunnels through this set are closed one by one, spread over `webSocketWindow`, each with a 1001
    /// "going away" close frame: their clients reconnect to the new release gradually instead of all at once.
    public func drain(
        timeout: Duration,
        webSocketWindow: Duration = .seconds(10),
        because reason: GoingAwayReason = .newRelease
    ) async -> DrainReport {
        let (atStart, tunnelClosers) = state.withLock { state in
            state.draining = true
            state.goingAwayReason = reason
            let closers = Array(state.tunnels.values)
            state.tunnels.removeAll()
            return (state.requests.count, closers)
        }
        async let tunnelsClosed: Void = Self.close(
            tunnelClosers.shuffled().map { close in { close(reason) } },
            spreadOver: webSocketWindow
        )

        // Polling keeps the wait free of continuation bookkeeping; 10 ms is nothing next to a drain timeout.
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while inFlight > 0, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(10))
        }

        let (cutOff, refused) = state.withLock { state in
            let cutOff = state.requests.values.map(\.cutOff)
            state.requests.removeAll()
            return (cutOff, state.tunnelsRefusedWhileDraining)
        }
        for request in cutOff { request() }
        await tunnelsClosed
        return DrainReport(
            finished: max(0, atStart - cutOff.count),
            cancelled: cutOff.count,
            webSocketsClosed: tunnelClosers.count + refused
        )
    }

    /// The k-th of n closes at k/n of the window; a cancelled drain closes the rest at once.
    private static func close(_ closers: [@Sendable () -> Void], spreadOver window: Duration) async {
        let start = ContinuousClock.now
        for (index, close) in closers.enumerated() {
            try? await Task.sleep(until: start + window * (Double(index) / Double(closers.count)))
            close()
        }
    }

    /// Registers one request as in flight and picks the instance it tries first: the one a sticky session is
    /// pinned to (`pin`, an index in `upstreams`), else the one with the fewest requests outstanding (ties taken
    /// in turn), among those in rotation (all of them, if none is). After a failure the request tries the others
    /// in rotation in turn.
    /// Only `Router.claim` calls this, under the lock that `Router.activate` takes.
    func claim(pin: Int?, sticky: Bool, onDrainDeadline cutOff: DrainCutOff) -> UpstreamClaim {
        state.withLock { state in
            let count = upstreams.count
            // With every instance out of rotation, all are tried after all: one of them may still answer.
            let everyOne: UInt64 = count >= 64 ? .max : (1 << count) - 1
            let resting = count > 64 || state.resting & everyOne != everyOne ? state.resting : 0
            func rests(_ index: Int) -> Bool { index < 64 && resting & (1 << index) != 0 }
            var first = 0
            if let pin, upstreams.indices.contains(pin), !rests(pin) {
                first = pin
            } else if count > 0 {
                first = state.nextUpstream % count
                state.nextUpstream &+= 1
                while rests(first) { first = (first + 1) % count }
                for offset in 1..<count {
                    let candidate = (first + offset) % count
                    if !rests(candidate), state.outstanding[candidate] < state.outstanding[first] { first = candidate }
                }
            }
            if count > 0 { state.outstanding[first] += 1 }
            state.nextTicket += 1
            state.requests[state.nextTicket] = (first, cutOff)
            return UpstreamClaim(
                set: self,
                ticket: state.nextTicket,
                first: first,
                resting: resting,
                stickyPin: sticky ? (pin == first ? .kept(first) : .new) : nil
            )
        }
    }

    /// The cookie value that pins a client to instance `index` of this set: the release and the instance's number.
    func stickyCookieValue(instance index: Int) -> String {
        "\(release.release).\(index + 1)"
    }

    /// The instance a sticky cookie value pins to, if it names one of this set's instances.
    func pinnedInstance(cookieValue: Substring) -> Int? {
        guard let dot = cookieValue.firstIndex(of: "."), Int(cookieValue[..<dot]) == release.release,
            let number = Int(cookieValue[cookieValue.index(after: dot)...]), (1...upstreams.count).contains(number)
        else { return nil }
        return number - 1
    }

    /// Ends a request's claim; calling it again, or after the drain cut the request off, does nothing.
    func release(ticket: Int) {
        state.withLock { state in
            guard let request = state.requests.removeValue(forKey: ticket), !upstreams.isEmpty else { return }
            state.outstanding[request.upstream] -= 1
        }
    }

    /// Turns a claimed request whose upgrade succeeded into an open tunnel: its id, or, when the set is already
    /// draining, why, for the caller to close the tunnel at once saying so.
    func openTunnel(
        replacing claim: UpstreamClaim,
        close: @escaping @Sendable (GoingAwayReason) -> Void
    ) -> Result<Int, GoingAwayReason> {
        release(ticket: claim.ticket)
        return state.withLock { state in
            if state.draining {
                state.tunnelsRefusedWhileDraining += 1
                return .failure(state.goingAwayReason)
            }
            state.nextTicket += 1
            state.tunnels[state.nextTicket] = close
            return .success(state.nextTicket)
        }
    }

    func tunnelClosed(_ id: Int) {
        _ = state.withLock { $0.tunnels.removeValue(forKey: id) }
    }
}

/// Why a set's WebSockets are closed, as their close frames say it.
public enum GoingAwayReason: String, Error, Sendable {
    case newRelease = "a new release is live"
    case shutdown = "the server is restarting"
}

/// What a drain did: requests that finished on their own, requests cut off at the deadline, tunnels closed.
public struct DrainReport: Sendable, Equatable, CustomStringConvertible {
    public var finished: Int
    public var cancelled: Int
    public var webSocketsClosed: Int

    public init(finished: Int, cancelled: Int, webSocketsClosed: Int) {
        self.finished = finished
        self.cancelled = cancelled
        self.webSocketsClosed = webSocketsClosed
    }

    public var description: String {
        "\(finished) requests finished, \(cancelled) cut off at the deadline, \(webSocketsClosed) WebSockets closed"
    }
}

/// How a drain tells a client connection that the deadline cut off one of its requests: the connection's
/// action, made once per connection so that a request allocates none, and the request's number on it.
struct DrainCutOff: Sendable {
    let request: Int
    let tell: @Sendable (_ request: Int) -> Void

    func callAsFunction() { tell(request) }
}

/// One request's hold on a set: the ticket a drain counts, and the instance to try first.
struct UpstreamClaim: Sendable {
    let set: UpstreamSet
    let ticket: Int
    /// Index in `set.upstreams`.
    let first: Int
    /// The instances out of rotation when the request was claimed (bit i: index i).
    let resting: UInt64
    /// For an app with sticky sessions: whether the client came pinned to the instance it was sent to.
    let stickyPin: StickyPin?

    enum StickyPin: Sendable, Equatable {
        /// The client's cookie named this instance.
        case kept(Int)
        /// The client had no valid pin: the answer pins it to the instance that gives it.
        case new
    }

    func release() { set.release(ticket: ticket) }
}
