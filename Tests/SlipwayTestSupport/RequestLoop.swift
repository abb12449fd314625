// RequestLoop: GET requests through the proxy on two keep-alive connections, one every 5 ms, on a
// thread of its own (the client blocks, and the cooperative pool has only as many threads as
// cores), counting what came back, until stopped. Bounded: 20,000 requests at most.
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

public final class RequestLoop: Sendable {
    private final class Flag: Sendable {
        let raised = Mutex(false)
    }

    private let stopping = Flag()
    private let result: Task<[String: Int], Never>

    /// Starts the loop; each 200 answer counts under its body's first `keep` characters, anything
    /// else under "status N" or "error ...".
    public init(port: Int, host: String, path: String, keep: Int = 200) {
        let stopping = self.stopping
        result = Task {
            await withCheckedContinuation { continuation in
                Thread {
                    var seen: [String: Int] = [:]
                    let connections = [HTTPConnection(port: port), HTTPConnection(port: port)]
                    for index in 0..<20_000 where !stopping.raised.withLock({ $0 }) {
                        let key: String
                        do {
                            let answer = try connections[index % 2].get(path, host: host)
                            key = answer.status == 200 ? String(answer.body.prefix(keep)) : "status \(answer.status)"
                        } catch {
                            key = "error \(error)"
                        }
                        seen[key, default: 0] += 1
                        usleep(5_000)
                    }
                    continuation.resume(returning: seen)
                }.start()
            }
        }
    }

    /// Stops the loop and returns how often each answer came.
    public func stop() async -> [String: Int] {
        stopping.raised.withLock { $0 = true }
        return await result.value
    }
}
