// Writing answers: the proxy's own answers through the response encoder, the last bytes of every answer, and
// what the connection does once an exchange is over, as ExchangeState decides it.
import NIOCore
import NIOHTTP1

extension ClientConnectionHandler {
    func respond(_ response: LocalResponse, to exchange: Exchange, context: ChannelHandlerContext) {
        exchange.state.answerStarts(clientAwaitsContinue: exchange.request.expectsContinue)
        let head = response.head(clientVersion: exchange.request.version, close: !exchange.state.keepAlive)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if response.sendsBody(to: exchange.request.method) {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: response.body)))), promise: nil)
        }
        writeEnd(of: exchange, context: context)
    }

    func writeEnd(of exchange: Exchange, context: ChannelHandlerContext) {
        writeLast(wrapOutboundOut(.end(nil)), of: exchange, to: context)
    }

    /// Writes the last bytes of an answer. The claim ends here: the instance has said all it will, and a drain
    /// need not wait for a slow client to read it. The bytes leave with the turn's batch. A connection that closes
    /// after the answer sends them at once and waits until they are written, since closing drops what is not.
    func writeLast(_ data: NIOAny, of exchange: Exchange, to output: ChannelHandlerContext) {
        exchange.releaseClaim()
        guard !exchange.state.keepAlive else {
            output.write(data, promise: nil)
            sendBatch.flush(output)
            answered(exchange)
            return
        }
        let written = output.eventLoop.makePromise(of: Void.self)
        output.writeAndFlush(data, promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in self.answered(exchange) }
    }

    private func answered(_ exchange: Exchange) {
        let next = exchange.state.answerWritten()
        guard let context else { return }
        carryOut(next, after: exchange, context: context)
    }

    /// Does what the exchange's state says comes next, if the exchange is still this connection's current one.
    func carryOut(_ next: ExchangeState.Next, after exchange: Exchange, context: ChannelHandlerContext) {
        guard self.exchange === exchange else { return }
        switch next {
        case .wait:
            // The answer went out before the request's end: a read held while the instance could take no more body
            // is let go, or the client (an HTTP/2 stream, out of window) could wait for ever to finish sending it.
            resumeClientReads(context: context)
        case .readNext:
            self.exchange = nil
            readRequests(context: context)
            resumeClientReads(context: context)
        case .lingerThenClose:
            // As nginx's lingering close: the proxy stops writing, reads and drops what still comes for a moment,
            // and only then closes, so the client reads the answer (a 413, a 408) before any reset.
            lingering = true
            received = Self.noBytes
            context.close(mode: .output, promise: nil)
            let channel = context.channel
            context.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
            resumeClientReads(context: context)
        case .close:
            context.close(promise: nil)
        }
    }
}
