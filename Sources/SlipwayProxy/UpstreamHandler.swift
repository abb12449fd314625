// UpstreamHandler: the last handler of a connection from the proxy to one app instance. It hands every
// response part to the client connection that owns it, and reads only while that client can take more.
import NIOCore
import NIOHTTP1

final class UpstreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// Weak: the client connection owns its instance connections, not the other way round.
    weak var owner: ClientConnectionHandler?
    private(set) var context: ChannelHandlerContext?
    /// The first error this connection saw, as the reason a 502 gives.
    private(set) var failure: (any Error)?
    private var pendingRead = false

    /// Adds the HTTP/1.1 client codec and this handler to a new instance connection.
    static func configure(_ channel: any Channel) throws {
        var encoding = HTTPRequestEncoder.Configuration()
        encoding.automaticallySetFramingHeaders = false  // MessageRewriting sets them to match the client's body
        try channel.pipeline.syncOperations.addHandlers([
            HTTPRequestEncoder(configuration: encoding),
            ByteToMessageHandler(
                HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .forward)
            ),
            UpstreamHandler(),
        ])
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func send(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    func close() {
        owner = nil
        context?.close(promise: nil)
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// The client can take more: read the response again if a read was held back.
    func resumeReading() {
        if pendingRead {
            pendingRead = false
            context?.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let owner else {
            // Nobody waits for this connection's answer any more.
            context.close(promise: nil)
            return
        }
        owner.upstream(self, received: unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner?.upstreamReadComplete(self)
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        owner?.upstreamClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
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
/// the same instance of the same set.
struct UpstreamConnection {
    let channel: any Channel
    let handler: UpstreamHandler
    let set: ObjectIdentifier
    let upstream: Upstream

    func close() { handler.close() }
}
