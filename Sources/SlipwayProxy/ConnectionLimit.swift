// ConnectionLimit: how many client connections are open, in all and per client address. A connection over either
// limit gets a 503 and is closed before anything of it is read, so slow or idle clients cannot hold the proxy's
// memory and descriptors without bound. One log line a minute at most says how many were refused. Once many
// connections have closed, the memory they held is handed back to the system: glibc's allocator keeps freed
// memory otherwise, and a flood of partial heads would leave the daemon 100 MB larger for good.
import CSlipwayMemory
import Logging
import NIOCore
import Synchronization

final class ConnectionLimit: Sendable {
    private struct State {
        var total = 0
        var byAddress: [String: Int] = [:]
        var refusedSinceLog = 0
        var lastLog: ContinuousClock.Instant?
        var closedSinceRelease = 0
        var releaseScheduled = false
    }

    /// Freed memory is handed back once this many connections have closed, this long after the first of them: a
    /// trim walks the heap, so a burst of closes gets one.
    private static let closesBeforeRelease = 256
    private static let releaseDelay = TimeAmount.seconds(2)

    private let state = Mutex(State())
    private let limits: ClientLimits
    private let logger: Logger

    init(limits: ClientLimits, logger: Logger) {
        self.limits = limits
        self.logger = logger
    }

    /// Counts `channel` until it closes and returns true, or refuses it when a limit is reached: with a 503 over
    /// plain HTTP; over TLS by closing it, since a client that began a handshake cannot read a plain answer.
    func admit(_ channel: any Channel, overTLS: Bool) throws -> Bool {
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        let (admitted, report) = state.withLock { state -> (Bool, (refused: Int, reason: String)?) in
            let fromAddress = state.byAddress[address, default: 0]
            let reason: String
            if state.total >= limits.maxConnections {
                reason = "\(state.total) client connections are open, the most allowed (--max-connections)"
            } else if fromAddress >= limits.maxConnectionsPerAddress {
                reason =
                    "\(address) has \(fromAddress) connections open, the most one address may have "
                    + "(--max-connections-per-address)"
            } else {
                state.total += 1
                state.byAddress[address] = fromAddress + 1
                return (true, nil)
            }
            state.refusedSinceLog += 1
            let now = ContinuousClock.now
            guard state.lastLog.map({ now - $0 >= .seconds(60) }) ?? true else { return (false, nil) }
            defer {
                state.lastLog = now
                state.refusedSinceLog = 0
            }
            return (false, (state.refusedSinceLog, reason))
        }
        if let report {
            logger.warning(
                "client connections refused with 503: too many are open",
                metadata: ["proxy.refused": "\(report.refused)", "proxy.reason": "\(report.reason)"]
            )
        }
        guard admitted else {
            if overTLS {
                channel.close(promise: nil)
            } else {
                try channel.pipeline.syncOperations.addHandler(RefusedConnection())
            }
            return false
        }
        channel.closeFuture.whenComplete { _ in
            let scheduleRelease = self.state.withLock { state in
                state.total -= 1
                let left = state.byAddress[address, default: 1] - 1
                state.byAddress[address] = left > 0 ? left : nil
                state.closedSinceRelease += 1
                guard state.closedSinceRelease >= Self.closesBeforeRelease, !state.releaseScheduled else {
                    return false
                }
                state.releaseScheduled = true
                return true
            }
            guard scheduleRelease else { return }
            channel.eventLoop.scheduleTask(in: Self.releaseDelay) {
                self.state.withLock { state in
                    state.closedSinceRelease = 0
                    state.releaseScheduled = false
                }
                _ = slipway_release_free_memory()
            }
        }
        return true
    }
}

/// Answers 503 at once, then closes after the client has had a moment to read it.
private final class RefusedConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let answer = """
        HTTP/1.1 503 Service Unavailable\r
        Content-Type: text/plain; charset=utf-8\r
        Content-Length: 69\r
        Retry-After: 5\r
        Connection: close\r
        \r
        This server has too many connections open right now; try again soon.\n
        """

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        // Closing with the client's request unread would reset the connection and could lose the answer, so the
        // sending side closes first and what the client still sends is read and dropped for up to a second.
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: Self.answer))).whenComplete { _ in
            channel.close(mode: .output, promise: nil)
        }
        context.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { context.close(promise: nil) }
    }
}
