// AcceptFailureLog: says in the daemon's log why accepted connections are being dropped. NIO closes a client
// connection it cannot set up (a socket option refused, no file descriptors left) and tells only the listener;
// without this the proxy would drop every client in silence. One line per cause, not one per connection.
import Logging
import NIOCore
import Synchronization

final class AcceptFailureLog: ChannelInboundHandler, Sendable {
    typealias InboundIn = any Channel

    private let logger: Logger
    private let reported = Mutex<Set<String>>([])

    init(logger: Logger) {
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let cause = FailureReason.describe(error)
        let isNew = reported.withLock { $0.insert(cause).inserted }
        if isNew {
            logger.error(
                "client connections are being dropped: they could not be set up",
                metadata: ["proxy.reason": "\(cause)", "proxy.error": "\(error)"]
            )
        }
        context.fireErrorCaught(error)
    }
}
