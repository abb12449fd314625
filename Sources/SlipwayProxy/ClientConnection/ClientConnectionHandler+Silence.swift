// Silence: a client that stops sending mid-request or trickles a head gets a 408; a keep-alive connection
// idle between requests is closed.
import NIOCore

extension ClientConnectionHandler {
    /// One check per connection, never later than either deadline, so a busy connection costs a clock read per
    /// read and nothing per request: reads only move `lastRead` on.
    func scheduleSilenceCheck(context: ChannelHandlerContext) {
        guard silenceCheck == nil else { return }
        let now = NIODeadline.now()
        func candidate(_ timeout: Duration) -> NIODeadline {
            let deadline = lastRead + TimeAmount(timeout)
            return deadline > now ? deadline : now + TimeAmount(timeout)
        }
        var next = min(candidate(limits.requestTimeout), candidate(limits.idleTimeout), candidate(limits.headerTimeout))
        if let headStarted { next = min(next, max(now, headStarted + TimeAmount(limits.headerTimeout))) }
        silenceCheck = context.eventLoop.assumeIsolated().scheduleTask(deadline: next) { self.checkSilence() }
    }

    /// A client silent for `requestTimeout` in the middle of a request, or whose request head takes longer than
    /// `headerTimeout` to arrive whole (a byte every few seconds keeps no connection for ever), gets a 408. A
    /// keep-alive connection silent for `idleTimeout` between requests is closed, with the instance connection it
    /// keeps; a long answer (server-sent events) is not idleness.
    private func checkSilence() {
        silenceCheck = nil
        guard let context, context.channel.isActive else { return }
        let now = NIODeadline.now()
        let silence = now - lastRead
        if let headStarted, exchange == nil, now - headStarted >= TimeAmount(limits.headerTimeout) {
            self.headStarted = nil
            requestStalled(context: context)
        } else if exchange.map({ !$0.state.requestEnded }) ?? (received.readableBytes > 0) {
            if silence >= TimeAmount(limits.requestTimeout) { requestStalled(context: context) }
        } else if exchange == nil, silence >= TimeAmount(limits.idleTimeout) {
            context.close(promise: nil)
            return
        }
        scheduleSilenceCheck(context: context)
    }
}
