// DeployLocks: one deploy of an app at a time; the next one waits its turn, in order.
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
