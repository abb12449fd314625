// DeployLocks and BuildSlots: one deploy of an app at a time, and a limit on builds at once; the next one waits its turn, in order.
import SlipwayBasics

struct DeployLocks {
    private var held: Set<AppName> = []
    private var waiting: [AppName: [CheckedContinuation<Void, Never>]] = [:]

    /// Takes the lock if free (true); otherwise the caller must wait with `enqueue`.
    mutating func tryAcquire(_ app: AppName) -> Bool {
        held.insert(app).inserted
    }

    mutating func enqueue(_ app: AppName, _ continuation: CheckedContinuation<Void, Never>) {
        waiting[app, default: []].append(continuation)
    }

    /// Hands the lock to the next waiter, or frees it.
    mutating func release(_ app: AppName) {
        if var queue = waiting[app], !queue.isEmpty {
            let next = queue.removeFirst()
            waiting[app] = queue.isEmpty ? nil : queue
            next.resume()
        } else {
            held.remove(app)
        }
    }
}

/// At most `limit` builds at once across all apps, so that pushes to many apps cannot starve the live ones of
/// CPU and memory; the other builds wait their turn, in order.
struct BuildSlots {
    let limit: Int
    private var running = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) { self.limit = max(1, limit) }

    /// Takes a slot if one is free (true); otherwise the caller must wait with `enqueue`.
    mutating func tryAcquire() -> Bool {
        guard running < limit else { return false }
        running += 1
        return true
    }

    mutating func enqueue(_ continuation: CheckedContinuation<Void, Never>) {
        waiting.append(continuation)
    }

    /// Hands the slot to the next waiter, or frees it.
    mutating func release() {
        if waiting.isEmpty {
            running -= 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}
