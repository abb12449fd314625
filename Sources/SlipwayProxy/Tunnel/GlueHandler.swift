// GlueHandler: one half of a WebSocket tunnel. Two of them, one in the client's pipeline and one in
// the instance's, pass raw bytes across, with backpressure, until either side closes. When the release
// behind the tunnel is retired, they end it the proper way: a 1001 "going away" close frame to each side,
// put between two frames, then the connections close once the client answered (or the grace ran out).
import NIOCore

final class GlueHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// How long a client gets to answer the close frame before both connections are closed anyway.
    static let closeGrace = TimeAmount.seconds(2)

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    /// Called when either connection closes; set once the tunnel is registered with its set.
    var onClose: () -> Void = {}
    /// The client's frames are masked, and so must be a close frame the proxy sends the app in its name.
    private let readsFromClient: Bool
    /// The frames this half reads, so a close frame sent after them never splits one.
    private var frames = WebSocketFrameBoundaries()
    private var goingAway = GoingAway.no
    private var goingAwayReason = GoingAwayReason.newRelease

    private enum GoingAway {
        case no
        /// The close frame waits for the end of the frame being relayed.
        case atNextBoundary
        /// Sent: what this side sends from now on is read (for the client's answer) and dropped.
        case sent
    }

    private init(readsFromClient: Bool) {
        self.readsFromClient = readsFromClient
    }

    /// Both halves of a tunnel: the client's first. Both channels must live on the same event loop: the
    /// halves call each other directly.
    static func pair() -> (client: GlueHandler, instance: GlueHandler) {
        let client = GlueHandler(readsFromClient: true)
        let instance = GlueHandler(readsFromClient: false)
        client.partner = instance
        instance.partner = client
        return (client, instance)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
    }

    // MARK: Going away

    /// Ends the tunnel with a 1001 close frame to the client and one to the app; called on the client's half.
    func goAway(saying reason: GoingAwayReason) {
        guard let context, goingAway == .no else { return }
        startGoingAway(saying: reason)
        partner?.startGoingAway(saying: reason)
        context.eventLoop.assumeIsolated().scheduleTask(in: Self.closeGrace) { self.closeBoth() }
    }

    private func startGoingAway(saying reason: GoingAwayReason) {
        goingAwayReason = reason
        goingAway = .atNextBoundary
        if frames.atBoundary { sendGoingAway() }
    }

    /// The close frame goes where this half's bytes go: to the app when it reads the client, else to the client.
    private func sendGoingAway() {
        goingAway = .sent
        guard let partner, let target = partner.context else { return }
        let frame = WebSocketFrameBoundaries.goingAway(
            saying: goingAwayReason,
            masked: readsFromClient,
            allocator: target.channel.allocator
        )
        partner.partnerWrite(NIOAny(frame))
        partner.partnerFlush()
    }

    private func closeBoth() {
        context?.close(promise: nil)
        partner?.partnerClosed()
    }

    // MARK: Calls from the partner

    private func partnerWrite(_ data: NIOAny) {
        context?.write(data, promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    private func partnerClosed() {
        context?.close(promise: nil)
    }

    private var partnerIsWritable: Bool {
        context?.channel.isWritable ?? false
    }

    private func partnerBecameWritable() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    /// Flushes what the upgrade left in flight and starts reading on this side.
    func start() {
        context?.flush()
        context?.read()
    }

    // MARK: Events of our own channel

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        switch goingAway {
        case .no:
            _ = frames.follow(bytes.readableBytesView, stoppingAtBoundary: false)
            partner?.partnerWrite(data)
        case .atNextBoundary:
            let frameEnd = frames.follow(bytes.readableBytesView, stoppingAtBoundary: true)
            if let rest = bytes.readSlice(length: frameEnd), frameEnd > 0 { partner?.partnerWrite(NIOAny(rest)) }
            if frames.atBoundary {
                sendGoingAway()
                _ = frames.follow(bytes.readableBytesView, stoppingAtBoundary: false)
            }
        case .sent:
            _ = frames.follow(bytes.readableBytesView, stoppingAtBoundary: false)
        }
        // The client answered the close frame: the closing handshake is complete on its side.
        if readsFromClient, goingAway == .sent, frames.sawClose { closeBoth() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerClosed()
        onClose()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            partner?.partnerBecameWritable()
        }
        context.fireChannelWritabilityChanged()
    }

    /// Reads only while the other side can take the bytes, so a slow peer does not fill our memory.
    func read(context: ChannelHandlerContext) {
        if partner?.partnerIsWritable ?? false {
            context.read()
        } else {
            pendingRead = true
        }
    }
}
