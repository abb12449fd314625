// Giving up on an exchange: a body over the limit, a client gone silent, bytes that are not HTTP, an instance
// that cannot answer or broke off, a drain's deadline. Every one of them goes through `giveUp`, where
// ExchangeState decides between the proxy's own answer and cutting the connection, and the claim is let go.
import Logging
import NIOCore
import NIOHTTP1

extension ClientConnectionHandler {
    /// Stops forwarding `exchange`: its instance connection closes, and the client gets `response` if no answer
    /// has started, else the connection is cut. `closing` when the connection cannot be used after the answer.
    func giveUp(_ exchange: Exchange, answering response: LocalResponse, closing: Bool, context: ChannelHandlerContext)
    {
        let forwarding = exchange.forwarding
        exchange.forwarding = nil
        forwarding?.connection?.close()
        endWait(of: exchange)
        switch exchange.state.giveUp(closing: closing) {
        case .answer:
            respond(response, to: exchange, context: context)  // the claim ends with its last byte
        case .cut:
            exchange.releaseClaim()
            context.close(promise: nil)
        }
    }

    /// A client that began a request and went silent: 408.
    func requestStalled(context: ChannelHandlerContext) {
        guard !heldRead else { return }  // the proxy stopped reading, so the silence is not the client's
        guard let exchange else {
            respondWithoutRequest(.requestTimeout, context: context)
            return
        }
        guard !exchange.state.requestEnded else { return }
        giveUp(exchange, answering: .requestTimeout, closing: true, context: context)
    }

    /// Bytes that are not a request the proxy passes on: answered with what is wrong, then the connection
    /// closes, since nothing after them can be read.
    func refuse(_ error: ClientRequestError, context: ChannelHandlerContext) {
        logger.info("malformed request", metadata: ["error": "\(error)"])
        let refusal = LocalResponse.text(error.status, "\(error)\n")
        guard let exchange else {
            respondWithoutRequest(refusal, context: context)
            return
        }
        giveUp(exchange, answering: refusal, closing: true, context: context)
    }

    /// An answer to bytes that never became a request head (a stalled or malformed one): the connection closes
    /// after it.
    private func respondWithoutRequest(_ response: LocalResponse, context: ChannelHandlerContext) {
        exchangeCount += 1
        let placeholder = Exchange(id: exchangeCount, request: .unread)
        _ = placeholder.state.requestEnds()
        placeholder.state.closeAfterAnswer()
        exchange = placeholder
        respond(response, to: placeholder, context: context)
    }

    /// Past the drain deadline: the set has already let go of the claim; 504 if no answer started.
    func drainDeadlinePassed(exchangeID: Int) {
        guard let context, let exchange, exchange.id == exchangeID, let forwarding = exchange.forwarding else { return }
        exchange.claim = nil
        log(
            .warning,
            "request cut off at drain deadline",
            forwarding,
            upstream: forwarding.attempts.lastTried,
            reason: nil
        )
        giveUp(
            exchange,
            answering: .text(.gatewayTimeout, "\(forwarding.app) did not answer before its old release was retired.\n"),
            closing: false,
            context: context
        )
    }
}
