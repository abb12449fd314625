// UpstreamHandler: the only handler of a connection from the proxy to one app instance. It sends the
// request bytes the client connection gives it, finds the parts of the instance's answer in what comes
// back, hands each to the client connection that owns it, and reads only while that client can take more.
import NIOCore

final class UpstreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The client connection this one answers. Strong, because a weak reference would move the client handler's
    /// reference count to a side table that every retain of it then pays, several times per request. The cycle
    /// ends when this connection does: `close()`, `channelInactive` and `handlerRemoved` let go of the owner.
    var owner: ClientConnectionHandler?
    private(set) var context: ChannelHandlerContext?
    /// The first error this connection saw, as the reason a 502 gives.
    private(set) var failure: (any Error)?
    private var pendingRead = false
    var reader = InstanceResponseReader()
    /// Bytes read and not yet handed on: an incomplete head or chunk line, or a tunnel's first bytes.
    private var received = ByteBuffer()

    static func configure(_ channel: any Channel) throws {
        try channel.pipeline.syncOperations.addHandler(UpstreamHandler())
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        owner = nil
    }

    /// Leaving the pipeline for a tunnel: the bytes that came after the 101 go to the handler that takes over.
    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        if received.readableBytes > 0 {
            let rest = received
            received = ByteBuffer()
            context.fireChannelRead(NIOAny(rest))
        }
        context.leavePipeline(removalToken: removalToken)
    }

    func send(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    func close() {
        owner = nil
        context?.close(promise: nil)
    }

    /// The client can take more: read the response again if a read was held back.
    func resumeReading() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard let owner, !reader.hasSwitchedProtocols else {
            if reader.hasSwitchedProtocols {
                received.writeImmutableBuffer(bytes)
            } else {
                // Nobody waits for this connection's answer any more.
                context.close(promise: nil)
            }
            return
        }
        if received.readableBytes == 0 {
            received = bytes
        } else {
            received.writeImmutableBuffer(bytes)
        }
        do {
            while self.context != nil, self.owner === owner, let part = try reader.next(from: &received) {
                owner.upstream(self, received: part)
            }
        } catch {
            failed(error, context: context)
            return
        }
        if received.readableBytes == 0 { received = ByteBuffer() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner?.upstreamReadComplete(self)
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        do {
            // A body that runs until the instance closes ends here.
            if let owner, let end = try reader.connectionClosed() { owner.upstream(self, received: end) }
        } catch {
            if failure == nil { failure = error }
        }
        owner?.upstreamClosed(self)
        owner = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failed(error, context: context)
    }

    private func failed(_ error: any Error, context: ChannelHandlerContext) {
        if failure == nil { failure = error }
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            owner?.upstreamBecameWritable(self)
        }
        context.fireChannelWritabilityChanged()
    }

    /// Response backpressure: a client that reads slowly holds the instance's response in the instance's
    /// socket buffers, not in our memory.
    func read(context: ChannelHandlerContext) {
        if owner?.clientIsWritable ?? true {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

/// An open connection to one instance, kept between requests of a client when the next one picks
/// the same instance of the same set. A class: it is handed around several times per request.
final class UpstreamConnection {
    let channel: any Channel
    let handler: UpstreamHandler
    let set: ObjectIdentifier
    let upstream: Upstream

    init(channel: any Channel, handler: UpstreamHandler, set: ObjectIdentifier, upstream: Upstream) {
        self.channel = channel
        self.handler = handler
        self.set = set
        self.upstream = upstream
    }

    func close() { handler.close() }
}
