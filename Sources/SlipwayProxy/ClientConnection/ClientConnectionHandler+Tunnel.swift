// The WebSocket tunnel: once the instance accepts the upgrade, the client and instance connections carry raw
// bytes, glued together, and this handler leaves the client's pipeline. The tunnel is counted by its set, so a
// drain closes it gradually.
import Logging
import NIOCore
import NIOHTTP1

extension ClientConnectionHandler {
    /// The instance accepted the upgrade: from here on both connections carry raw bytes, glued together.
    func becomeTunnel(
        _ exchange: Exchange,
        _ forwarding: Forwarding,
        _ connection: UpstreamConnection,
        context: ChannelHandlerContext
    ) {
        self.exchange = nil
        exchange.forwarding = nil
        let clientChannel = context.channel
        let instanceChannel = connection.channel
        let set = forwarding.claim.set
        let (clientSide, instanceSide) = GlueHandler.pair()
        let goingAway = NIOLoopBound(clientSide, eventLoop: context.eventLoop)
        let tunnel = set.openTunnel(replacing: forwarding.claim) { reason in
            goingAway.eventLoop.execute { goingAway.value.goAway(saying: reason) }
        }
        exchange.claim = nil
        log(.debug, "websocket tunnel opened", forwarding, upstream: connection.upstream, reason: nil)
        if case .success(let tunnel) = tunnel { clientSide.onClose = { set.tunnelClosed(tunnel) } }
        instanceSide.onClose = clientSide.onClose
        do {
            let client = context.pipeline.syncOperations
            let instance = instanceChannel.pipeline.syncOperations
            try client.addHandler(clientSide)
            try instance.addHandler(instanceSide)
            client.removeHandler(try client.handler(type: HTTPResponseEncoder.self), promise: nil)
            // What the client sent after its handshake goes through the tunnel, as does what the app sent after
            // its 101, which the instance connection's handler hands on as it leaves. Leaving, this handler
            // also stops the silence deadlines: a WebSocket's liveness is the app's and the browser's business.
            if received.readableBytes > 0 { context.fireChannelRead(NIOAny(received)) }
            let handedOver = instance.removeHandler(connection.handler)
            client.removeHandler(context: context, promise: nil)
            handedOver.assumeIsolated().whenComplete { _ in
                clientSide.start()
                instanceSide.start()
                // The set started draining during the handshake: the client got its 101, so it is told to go
                // away the proper way, and reconnects to the new release.
                if case .failure(let reason) = tunnel { clientSide.goAway(saying: reason) }
            }
        } catch {
            logger.error("websocket tunnel setup failed", metadata: ["error": "\(error)"])
            clientChannel.close(promise: nil)
            instanceChannel.close(promise: nil)
        }
    }
}
