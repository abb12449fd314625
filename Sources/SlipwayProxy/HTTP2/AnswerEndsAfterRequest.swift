// AnswerEndsAfterRequest: an answer complete before its request (a 413, an app that answers without reading the
// upload) keeps its stream's END_STREAM until the client has sent the request's end, while the proxy reads and
// drops the rest, as it does over HTTP/1.1. Ending the stream first leaves some clients (curl 7.88) waiting for
// ever once their upload is done, and a RST_STREAM with NO_ERROR (RFC 9113 §8.1) makes the same client drop the
// answer it already has.
import NIOCore
import NIOHTTP2

final class AnswerEndsAfterRequest: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private var requestEnded = false
    /// The answer's end, held until the request's; with the promise of the write that carried it.
    private var heldEnd: EventLoopPromise<Void>??

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .headers(let headers) where headers.endStream: requestEnded = true
        case .data(let data) where data.endStream: requestEnded = true
        default: break
        }
        context.fireChannelRead(data)
        if requestEnded, let promise = heldEnd {
            heldEnd = nil
            let end = HTTP2Frame.FramePayload.Data(data: .byteBuffer(ByteBuffer()), endStream: true)
            context.writeAndFlush(wrapOutboundOut(.data(end)), promise: promise)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !requestEnded else { return context.write(data, promise: promise) }
        switch unwrapOutboundIn(data) {
        case .headers(var headers) where headers.endStream:
            headers.endStream = false
            heldEnd = .some(promise)
            context.write(wrapOutboundOut(.headers(headers)), promise: nil)
        case .data(var body) where body.endStream:
            body.endStream = false
            heldEnd = .some(promise)
            context.write(wrapOutboundOut(.data(body)), promise: nil)
        default:
            context.write(data, promise: promise)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .some(let promise) = heldEnd { promise?.fail(ChannelError.ioOnClosedChannel) }
        heldEnd = nil
        context.fireChannelInactive()
    }
}
