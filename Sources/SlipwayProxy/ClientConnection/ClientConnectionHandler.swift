// ClientConnectionHandler: one client's keep-alive HTTP/1.1 connection. This file holds the connection's
// state and its channel events; around it, one file per concern:
//   +Requests    reads requests, one at a time, and claims an instance for each (HTTP/1 reading)
//   +Forwarding  connects to instances, sends the request, retries, and copies the answer back
//   +Answers     writes the proxy's own answers and ends each exchange (HTTP/1 writing)
//   +Ending      the ways the proxy gives up on an exchange, all decided by ExchangeState
//   +Silence     the 408 and idle deadlines
//   +Tunnel      turns a WebSocket handshake into a tunnel
//   +Endpoints   the app's /_slipway/ endpoints
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

final class ClientConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let router: Router
    let noticeSettings: ReleaseNoticeSettings
    let limits: ClientLimits
    /// The load balancers whose forwarding headers are passed on.
    let trustedProxies: TrustedProxies
    /// Whether the client came in over TLS (the HTTPS listener), which the app is told.
    let scheme: ClientEndpoint.Scheme
    /// Flushes this connection's and its instance connections' writes at the end of the event loop's turn.
    let sendBatch: SendBatch
    var reader: ClientRequestReader
    /// Bytes read and not yet handed on: the start of a head, or requests pipelined behind the current one.
    var received = ClientConnectionHandler.noBytes
    /// What `received` is once all of it was handed on, so a connection between requests keeps no read buffer.
    static let noBytes = ByteBuffer()
    /// When the client last sent anything, for the 408 and idle deadlines.
    var lastRead = NIODeadline.now()
    /// When the head being read began to arrive: a head has `headerTimeout` to arrive whole, however it trickles.
    var headStarted: NIODeadline?
    var silenceCheck: Scheduled<Void>?
    var logger: Logger
    private(set) var context: ChannelHandlerContext?
    /// The client's channel, held while this handler is in its pipeline: asked whether it is writable on every
    /// read of an instance's answer, which through `context` would cost a lookup each time.
    private var channel: (any Channel)?
    /// Where a proxied answer is written: below the response encoder, which only the proxy's own answers pass
    /// through. An instance's answer is already HTTP, and is copied to the client as it came.
    var rawOutput: ChannelHandlerContext?
    var answerBytes = AnswerBytes()
    var client = ClientEndpoint(ip: nil, listenerPort: nil)
    var requestIDs = RequestIDSource()
    /// What a drain's deadline calls to cut off one of this connection's requests, made once per connection.
    /// It holds this handler, so `handlerRemoved` lets go of it.
    var tellCutOff: @Sendable (_ request: Int) -> Void = { _ in }

    /// The request being answered. Requests pipelined behind it wait, unread, in `received`.
    var exchange: Exchange?
    var readingRequests = false
    /// Instance connections left open by earlier requests (of any client on this event loop), reused only for the
    /// same instance of the same set.
    let pool: UpstreamPool
    var heldRead = false
    /// The answer is out and the proxy only reads to let the client finish sending before it closes.
    var lingering = false
    var exchangeCount = 0

    init(
        router: Router,
        noticeSettings: ReleaseNoticeSettings,
        limits: ClientLimits,
        trustedProxies: TrustedProxies,
        scheme: ClientEndpoint.Scheme,
        sendBatch: SendBatch,
        pool: UpstreamPool,
        logger: Logger
    ) {
        self.pool = pool
        self.scheme = scheme
        self.router = router
        self.noticeSettings = noticeSettings
        self.limits = limits
        self.trustedProxies = trustedProxies
        self.sendBatch = sendBatch
        self.reader = ClientRequestReader(maxHeadBytes: limits.maxHeaderBytes)
        self.logger = logger
    }

    /// Adds the encoder of the proxy's own answers and a handler for one client connection.
    static func configure(
        _ channel: any Channel,
        router: Router,
        noticeSettings: ReleaseNoticeSettings,
        limits: ClientLimits,
        trustedProxies: TrustedProxies,
        scheme: ClientEndpoint.Scheme,
        sendBatch: SendBatch,
        pool: UpstreamPool,
        logger: Logger
    ) throws {
        var encoding = HTTPResponseEncoder.Configuration()
        encoding.automaticallySetFramingHeaders = false  // LocalResponse frames each answer itself
        try channel.pipeline.syncOperations.addHandlers([
            HTTPResponseEncoder(configuration: encoding),
            ClientConnectionHandler(
                router: router,
                noticeSettings: noticeSettings,
                limits: limits,
                trustedProxies: trustedProxies,
                scheme: scheme,
                sendBatch: sendBatch,
                pool: pool,
                logger: logger
            ),
        ])
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        channel = context.channel
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        tellCutOff = { id in handler.eventLoop.execute { handler.value.drainDeadlinePassed(exchangeID: id) } }
        rawOutput = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self)
        client = ClientEndpoint(
            ip: context.channel.remoteAddress?.ipAddress,
            listenerPort: context.channel.localAddress?.port,
            scheme: scheme,
            trusting: trustedProxies
        )
        logger[metadataKey: "client.address"] = "\(client.ip ?? "unknown")"
        if context.channel.isActive { scheduleSilenceCheck(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        channel = nil
        rawOutput = nil
        tellCutOff = { _ in }
        silenceCheck?.cancel()
        silenceCheck = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        scheduleSilenceCheck(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let exchange {
            endWait(of: exchange)
            exchange.releaseClaim()
            exchange.forwarding?.connection?.close()
            exchange.forwarding = nil
        }
        exchange = nil
        answerBytes.connectionClosed()
        received = Self.noBytes
        silenceCheck?.cancel()
        silenceCheck = nil
        context.fireChannelInactive()
    }

    /// The daemon is stopping: an idle connection closes now, one with a request under way after its answer (on
    /// HTTP/2 the connection's GOAWAY is NIO's connection management handler's).
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            if let exchange {
                exchange.state.closeAfterAnswer()
            } else if received.readableBytes == 0 {
                context.close(promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    var clientIsWritable: Bool { channel?.isWritable ?? false }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            exchange?.forwarding?.connection?.handler.resumeReading()
        }
        context.fireChannelWritabilityChanged()
    }

    /// Request backpressure: hold client reads while pipelined requests wait, while the instance connection is
    /// being made (the body waits in memory meanwhile), or while the instance cannot take more body.
    func read(context: ChannelHandlerContext) {
        if holdsClientReads {
            heldRead = true
        } else {
            context.read()
        }
    }

    private var holdsClientReads: Bool {
        if lingering { return false }
        guard let exchange else { return false }
        if exchange.state.requestEnded { return received.readableBytes > 0 }  // pipelined requests wait unread
        guard let forwarding = exchange.forwarding else { return false }
        guard let connection = forwarding.connection else { return true }
        return !connection.channel.isWritable
    }

    func resumeClientReads(context: ChannelHandlerContext) {
        if heldRead && !holdsClientReads {
            heldRead = false
            context.read()
        }
    }

    func log(
        _ level: Logger.Level,
        _ message: Logger.Message,
        _ forwarding: Forwarding,
        upstream: Upstream?,
        reason: String?
    ) {
        var metadata: Logger.Metadata = [
            "app.name": "\(forwarding.app)",
            "release.version": "\(forwarding.claim.set.version)",
        ]
        if let upstream { metadata["upstream"] = "\(upstream)" }
        if let reason { metadata["reason"] = "\(reason)" }
        logger.log(level: level, message, metadata: metadata)
    }
}
