// ClientLimits and ClientSilenceTimer: what one client request may weigh and how long a client may stay
// silent, answered with 431, 413 and 408 instead of a dropped connection.
import NIOCore
import NIOHTTP1

/// The limits the proxy puts on every client, whatever the app.
public struct ClientLimits: Sendable, Equatable {
    /// The request's URL and header fields together (names and values); answered 431. The parser holds a head
    /// whole while it reads it, so `largestHeaderBytes` (NIO's default) bounds what an operator may allow.
    public var maxHeaderBytes: Int
    /// A request body; answered 413. nil: no limit.
    public var maxBodyBytes: Int?
    /// How long a client that has started a request (its head or body still arriving) may stay silent; 408.
    public var requestTimeout: Duration
    /// How long a keep-alive connection may wait for its next request before it is closed (nginx's default).
    public var idleTimeout: Duration

    public static let largestHeaderBytes = 80 * 1024

    public init(
        maxHeaderBytes: Int = 32 * 1024,
        maxBodyBytes: Int? = 100 * 1024 * 1024,
        requestTimeout: Duration = .seconds(60),
        idleTimeout: Duration = .seconds(75)
    ) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
        self.requestTimeout = requestTimeout
        self.idleTimeout = idleTimeout
    }

    var decoderLimits: NIOHTTPDecoderLimitConfiguration {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = maxHeaderBytes
        limits.maxHeaderListSize = maxHeaderBytes
        return limits
    }
}

/// Sits first in a client's pipeline, so it sees every byte, and tells the connection handler when the client
/// has been silent too long: `requestTimeout` in the middle of a request, `idleTimeout` between requests.
/// One timer per connection, never earlier than either deadline could be, so a busy connection costs a clock
/// read per read and nothing per request.
final class ClientSilenceTimer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    enum Event {
        /// Silent for `requestTimeout` while `midRequest`.
        case requestStalled
        /// Silent for `idleTimeout` while not `midRequest`.
        case idle
    }

    private let limits: ClientLimits
    private var lastRead = NIODeadline.now()
    private var timer: Scheduled<Void>?
    /// Bytes arrived that have not yet made a whole request head; the connection handler clears it.
    var unparsedBytes = false
    /// A request head arrived and its body is still arriving; set by the connection handler.
    var requestBodyPending = false

    var midRequest: Bool { unparsedBytes || requestBodyPending }

    init(limits: ClientLimits) {
        self.limits = limits
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { schedule(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        schedule(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastRead = .now()
        unparsedBytes = true
        context.fireChannelRead(data)
    }

    private func schedule(context: ChannelHandlerContext) {
        guard timer == nil else { return }
        let now = NIODeadline.now()
        // Each candidate is at or before its deadline for any later read, since reads only move lastRead on.
        func candidate(_ timeout: Duration) -> NIODeadline {
            let deadline = lastRead + TimeAmount(timeout)
            return deadline > now ? deadline : now + TimeAmount(timeout)
        }
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let contextBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let next = min(candidate(limits.requestTimeout), candidate(limits.idleTimeout))
        timer = context.eventLoop.scheduleTask(deadline: next) {
            loopBound.value.fired(context: contextBound.value)
        }
    }

    private func fired(context: ChannelHandlerContext) {
        timer = nil
        guard context.channel.isActive else { return }
        let silence = NIODeadline.now() - lastRead
        if midRequest, silence >= TimeAmount(limits.requestTimeout) {
            context.fireUserInboundEventTriggered(Event.requestStalled)
        } else if !midRequest, silence >= TimeAmount(limits.idleTimeout) {
            context.fireUserInboundEventTriggered(Event.idle)
        }
        schedule(context: context)
    }
}
