// UpstreamAttempts: the order in which one request tries the instances of its set after a failure.

/// Each instance in rotation at most once, starting at the one the claim picked and going on in turn, plus one
/// fresh connection to the same instance when a kept-alive connection turned out to be stale.
struct UpstreamAttempts {
    let upstreams: [Upstream]
    let first: Int
    /// Instances out of rotation (bit i: index i): never tried.
    let resting: UInt64
    private var moves = 0
    private var freshRetryUsed = false

    init(upstreams: [Upstream], first: Int, resting: UInt64 = 0) {
        self.upstreams = upstreams
        self.first = first
        self.resting = resting
    }

    /// The index in the set of the instance being tried, or nil once every instance was tried.
    var currentIndex: Int? { moves < upstreams.count ? (first + moves) % upstreams.count : nil }

    var current: Upstream? { currentIndex.map { upstreams[$0] } }

    /// The instance tried last, for log lines after the attempts ran out.
    var lastTried: Upstream? {
        upstreams.isEmpty ? nil : upstreams[(first + min(moves, upstreams.count - 1)) % upstreams.count]
    }

    /// The next instance to try after a failure of the current one, or nil when none is left.
    mutating func next(afterStalePooledConnection stale: Bool) -> Upstream? {
        if stale, !freshRetryUsed, let current {
            freshRetryUsed = true
            return current
        }
        repeat { moves += 1 } while currentIndex.map { $0 < 64 && resting & (1 << $0) != 0 } ?? false
        return current
    }
}
