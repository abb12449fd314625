// GlueHandler: one half of a WebSocket tunnel. Two of them, one in the client's pipeline and one in
// the instance's, pass raw bytes across, with backpressure, until either side closes.
import NIOCore

final class GlueHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private let onClose: () -> Void

    private init(onClose: @escaping () -> Void) {
        self.onClose = onClose
    }

    /// Both halves of a tunnel. Both channels must live on the same event loop: the halves call each other directly.
    static func pair(onClose: @escaping () -> Void) -> (GlueHandler, GlueHandler) {
        let first = GlueHandler(onClose: onClose)
        let second = GlueHandler(onClose: onClose)
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.partner = nil
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
        partner?.partnerWrite(data)
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
