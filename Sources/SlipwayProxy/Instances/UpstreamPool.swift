// UpstreamPool: idle instance connections kept for the next request, one pool per event loop, shared by every
// client connection and HTTP/2 stream on it, as nginx's upstream keepalive: a client that opens a connection per
// request (or per TLS handshake) costs the instance no new connection. A connection is taken only for the same
// instance of the same set; one of an older release stays idle until it closes or the pool needs its place.
import NIOCore
import Synchronization

final class UpstreamPool {
    /// Idle instance connections kept per event loop: as many as requests in flight at once on a busy loop (an
    /// HTTP/2 client alone may have 128), so that a burst's connections are reused by the next, not reopened.
    /// The app closes those it finds idle too long (Node after 5 s), and the pool forgets them.
    static let idlePerEventLoop = 512

    private var idle: [UpstreamConnection] = []
    let capacity: Int

    init(capacity: Int = UpstreamPool.idlePerEventLoop) {
        self.capacity = capacity
    }

    /// An open idle connection to `upstream` of that set, taken out of the pool.
    func take(set: ObjectIdentifier, upstream: Upstream) -> UpstreamConnection? {
        guard let index = idle.lastIndex(where: { $0.set == set && $0.upstream == upstream && $0.channel.isActive })
        else { return nil }
        return idle.remove(at: index)
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

    /// The pool of each event loop, made on that loop when one of its connections first asks for it.
    final class PerLoop: Sendable {
        private let pools = Mutex<[ObjectIdentifier: NIOLoopBound<UpstreamPool>]>([:])

        func pool(on eventLoop: any EventLoop) -> UpstreamPool {
            pools.withLock { pools in
                if let pool = pools[ObjectIdentifier(eventLoop)] { return pool.value }
                let pool = UpstreamPool()
                pools[ObjectIdentifier(eventLoop)] = NIOLoopBound(pool, eventLoop: eventLoop)
                return pool
            }
        }
    }
}
