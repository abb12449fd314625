// ClientHelloReader: holds a new TLS connection's first bytes until its ClientHello is read, hands it to `choose`
// (which adds the TLS handlers), then leaves the pipeline and passes the bytes it held on to them.
import NIOCore

final class ClientHelloReader: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    var cumulationBuffer: ByteBuffer?
    /// Given the hello, or nil for bytes that are not one; its future succeeds once the TLS handlers are in place.
    private let choose: (ClientHello?) -> EventLoopFuture<Void>
    private var chosen = false

    init(choose: @escaping (ClientHello?) -> EventLoopFuture<Void>) {
        self.choose = choose
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) -> DecodingState {
        guard !chosen else { return .needMoreData }
        let hello: ClientHello?
        switch ClientHello.read(buffer) {
        case .incomplete: return .needMoreData
        case .read(let read): hello = read
        case .notAHello: hello = nil
        }
        chosen = true
        let context = NIOLoopBound(context, eventLoop: context.eventLoop)
        choose(hello).whenSuccess {
            context.value.pipeline.syncOperations.removeHandler(context: context.value, promise: nil)
        }
        return .needMoreData
    }

    /// On removal: what was held goes on to the TLS handler (before a choice, the client left: nothing to pass).
    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) -> DecodingState {
        if chosen { context.fireChannelRead(NIOAny(buffer)) }
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        return .needMoreData
    }
}
