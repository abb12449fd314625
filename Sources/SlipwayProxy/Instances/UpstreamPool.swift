// UpstreamPool: idle instance connections kept for the next request, on the client connection's event loop. An
// HTTP/1.1 connection has its own, of one (the connection its last request used); the streams of one HTTP/2
// connection share one of several, so that a stream costs no new connection to the instance.
import NIOCore

final class UpstreamPool {
    private var idle: [UpstreamConnection] = []
    let capacity: Int
    /// Shared by the streams of an HTTP/2 connection, which closes it when it closes; no one stream may.
    let shared: Bool

    init(capacity: Int = 1, shared: Bool = false) {
        self.capacity = capacity
        self.shared = shared
    }

    /// An open idle connection to `upstream` of that set, taken out of the pool. A connection of its own, when it
    /// goes elsewhere, closes at once: a request goes where the live set sends it, not back to an older one.
    func take(set: ObjectIdentifier, upstream: Upstream) -> UpstreamConnection? {
        if let index = idle.lastIndex(where: { $0.set == set && $0.upstream == upstream && $0.channel.isActive }) {
            return idle.remove(at: index)
        }
        if !shared { closeAll() }
        return nil
    }

    func put(_ connection: UpstreamConnection) {
        if idle.count >= capacity { idle.removeFirst().close() }
        idle.append(connection)
    }

    /// Whether `handler`'s connection was idle here; it is forgotten.
    func forget(_ handler: UpstreamHandler) -> Bool {
        guard let index = idle.firstIndex(where: { $0.handler === handler }) else { return false }
        idle.remove(at: index)
        return true
    }

    func closeAll() {
        let closing = idle
        idle = []
        for connection in closing { connection.close() }
    }
}
