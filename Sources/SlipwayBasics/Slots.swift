// Slots: at most `limit` of something at once (builds over all apps, say); whoever finds them taken waits
// its turn, in order. A value for an actor to hold, as the actor's isolation is what makes it safe.
public struct Slots: Sendable {
    public let limit: Int
    private var taken = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public init(limit: Int) { self.limit = max(1, limit) }

    /// Takes a slot if one is free (true); otherwise the caller must wait with `enqueue`.
    public mutating func tryAcquire() -> Bool {
        guard taken < limit else { return false }
        taken += 1
        return true
    }

    public mutating func enqueue(_ continuation: CheckedContinuation<Void, Never>) {
        waiting.append(continuation)
    }

    /// Hands the slot to the next waiter, or frees it.
    public mutating func release() {
        if waiting.isEmpty {
            taken -= 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}
