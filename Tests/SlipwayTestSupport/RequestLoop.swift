// RequestLoop: GET requests through the proxy on two keep-alive connections, one every 5 ms, on a
// thread of its own (the client blocks, and the cooperative pool has only as many threads as
// cores), counting what came back, until stopped. Bounded: 20,000 requests at most.
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

public final class RequestLoop: Sendable {
    private final class Shared: Sendable {
        let stopping = Mutex(false)
        let seen = Mutex<[String: Int]>([:])
    }

    private let shared = Shared()
    private let result: Task<[String: Int], Never>

    /// Starts the loop; each 200 answer counts under its body's first `keep` characters, anything
    /// else under "status N" or "error ...".
    public init(port: Int, host: String, path: String, keep: Int = 200) {
        let shared = self.shared
        result = Task {
            await withCheckedContinuation { continuation in
                Thread {
                    let connections = [HTTPConnection(port: port), HTTPConnection(port: port)]
                    for index in 0..<20_000 where !shared.stopping.withLock({ $0 }) {
                        let key: String
                        do {
                            let answer = try connections[index % 2].get(path, host: host)
                            key = answer.status == 200 ? String(answer.body.prefix(keep)) : "status \(answer.status)"
                        } catch {
                            key = "error \(error)"
                        }
                        shared.seen.withLock { $0[key, default: 0] += 1 }
                        usleep(5_000)
                    }
                    continuation.resume(returning: shared.seen.withLock { $0 })
                }.start()
            }
        }
    }

    /// Waits until the answers so far satisfy `condition` (the loop has met a new release, say), for at most
    /// `timeout`; false if they never did.
    public func waitUntil(timeout: Duration = .seconds(30), _ condition: ([String: Int]) -> Bool) async -> Bool {
        await eventually(timeout: timeout) { shared.seen.withLock { condition($0) } }
    }

    /// Stops the loop and returns how often each answer came.
    public func stop() async -> [String: Int] {
        shared.stopping.withLock { $0 = true }
        return await result.value
    }
}
