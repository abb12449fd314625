// UpstreamAttempts: the order in which one request tries the instances of its set after a failure.

/// Each instance at most once, starting at the one the round-robin picked, plus one fresh connection to
/// the same instance when a kept-alive connection turned out to be stale.
struct UpstreamAttempts {
    let order: [Upstream]
    private var index = 0
    private var freshRetryUsed = false

    init(order: [Upstream]) {
        self.order = order
    }

    /// The instance being tried, or nil once every instance was tried.
    var current: Upstream? { index < order.count ? order[index] : nil }

    /// The instance tried last, for log lines after the attempts ran out.
    var lastTried: Upstream? { order.isEmpty ? nil : order[min(index, order.count - 1)] }

    /// The next instance to try after a failure of the current one, or nil when none is left.
    mutating func next(afterStalePooledConnection stale: Bool) -> Upstream? {
        if stale, !freshRetryUsed, let current {
            freshRetryUsed = true
            return current
        }
        index += 1
        return current
    }
}
