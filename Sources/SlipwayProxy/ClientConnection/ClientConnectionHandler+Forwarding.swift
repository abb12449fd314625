// Forwarding: a claimed request goes to an instance over a new or pooled connection on the same event loop;
// instances that cannot be reached are retried while the request can be sent again unchanged; the instance's
// answer is copied back to the client as it came, its head rewritten, its bytes gathered into few writes.
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

extension ClientConnectionHandler {
    func forward(
        _ exchange: Exchange,
        _ head: ClientRequestHead,
        app: String,
        claim: UpstreamClaim,
        strictTransportSecurity: Int?,
        context: ChannelHandlerContext
    ) {
        var upstreamHead = answerBytes.requestHead(capacity: head.bytes.readableBytes + 256)
        MessageRewriting.writeUpstreamRequestHead(
            for: head,
            client: client,
            requestIDs: &requestIDs,
            into: &upstreamHead
        )
        let forwarding = Forwarding(app: app, claim: claim, head: upstreamHead, bodyIsChunked: head.framing == .chunked)
        forwarding.strictTransportSecurity = strictTransportSecurity
        answerBytes.keepRequestHead(upstreamHead)
        exchange.forwarding = forwarding
        guard let first = forwarding.attempts.current else {
            fail(exchange, forwarding, reason: "its release has no running instances", context: context)
            return
        }
        connect(exchange, forwarding, to: first, mayReuse: true, context: context)
    }

    // MARK: Connections to instances

    private func connect(
        _ exchange: Exchange,
        _ forwarding: Forwarding,
        to upstream: Upstream,
        mayReuse: Bool,
        context: ChannelHandlerContext
    ) {
        if mayReuse, let idle = pool.take(set: ObjectIdentifier(forwarding.claim.set), upstream: upstream) {
            attach(idle, reused: true, exchange, forwarding, context: context)
            return
        }

        forwarding.attempt += 1
        let attempt = forwarding.attempt
        let exchangeID = exchange.id
        // Same event loop as the client: the two handlers call each other directly, without locks.
        let bootstrap = ClientBootstrap(group: context.eventLoop)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try UpstreamHandler.configure(channel) }
            }
        let connecting: EventLoopFuture<any Channel>
        if let address = try? SocketAddress(ipAddress: upstream.host, port: upstream.port) {
            connecting = bootstrap.connect(to: address)
        } else {
            connecting = bootstrap.connect(host: upstream.host, port: upstream.port)
        }
        connecting.assumeIsolated().whenComplete { result in
            self.connected(result, to: upstream, exchangeID: exchangeID, attempt: attempt)
        }
    }

    private func connected(
        _ result: Result<any Channel, any Error>,
        to upstream: Upstream,
        exchangeID: Int,
        attempt: Int
    ) {
        guard let context, let exchange, exchange.id == exchangeID, let forwarding = exchange.forwarding,
            forwarding.attempt == attempt
        else {
            // The request ended (client gone, drain deadline) while we were connecting.
            if case .success(let channel) = result { channel.close(promise: nil) }
            return
        }
        switch result {
        case .success(let channel):
            guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamHandler.self) else {
                channel.close(promise: nil)
                fail(exchange, forwarding, reason: "its connection could not be set up", context: context)
                return
            }
            let connection = UpstreamConnection(
                channel: channel,
                handler: handler,
                set: ObjectIdentifier(forwarding.claim.set),
                upstream: upstream
            )
            attach(connection, reused: false, exchange, forwarding, context: context)
        case .failure(let error):
            let reason = FailureReason.describe(error)
            log(.notice, "instance connection failed", forwarding, upstream: upstream, reason: reason)
            retry(exchange, forwarding, reason: reason, afterStalePooledConnection: false, context: context)
        }
    }

    private func attach(
        _ connection: UpstreamConnection,
        reused: Bool,
        _ exchange: Exchange,
        _ forwarding: Forwarding,
        context: ChannelHandlerContext
    ) {
        guard connection.channel.isActive else {
            retry(
                exchange,
                forwarding,
                reason: "connection closed",
                afterStalePooledConnection: reused,
                context: context
            )
            return
        }
        connection.handler.owner = self
        connection.handler.reader.answeringHEAD = exchange.request.method.isHEAD
        connection.handler.reader.dechunk = false
        forwarding.connection = connection
        forwarding.reused = reused
        connection.handler.send(forwarding.head)
        sendRequest(exchange, forwarding, on: connection, afterHead: true)
        resumeClientReads(context: context)
    }

    /// Sends the body parts that arrived since the last call, and the end once the client sent it; flushes what
    /// was written at the end of the turn, the head included when it was just written (`afterHead`).
    func sendRequest(
        _ exchange: Exchange,
        _ forwarding: Forwarding,
        on connection: UpstreamConnection,
        afterHead: Bool = false
    ) {
        var wrote = afterHead
        for body in forwarding.unsent where body.readableBytes > 0 {
            wrote = true
            if forwarding.bodyIsChunked {
                connection.handler.send(MessageRewriting.chunkSizeLine(body.readableBytes))
                connection.handler.send(body)
                connection.handler.send(ByteBuffer(staticString: "\r\n"))
            } else {
                connection.handler.send(body)
            }
            forwarding.noteSent(body)
        }
        forwarding.unsent.removeAll(keepingCapacity: true)
        if exchange.state.requestEnded && !forwarding.endSent {
            if forwarding.bodyIsChunked {
                connection.handler.send(ByteBuffer(staticString: "0\r\n\r\n"))
                wrote = true
            }
            forwarding.endSent = true
        }
        if wrote, let instance = connection.handler.context { sendBatch.flush(instance) }
    }

    private func retry(
        _ exchange: Exchange,
        _ forwarding: Forwarding,
        reason: String,
        afterStalePooledConnection stale: Bool,
        context: ChannelHandlerContext
    ) {
        forwarding.connection = nil
        guard let next = forwarding.attempts.next(afterStalePooledConnection: stale) else {
            fail(exchange, forwarding, reason: reason, context: context)
            return
        }
        forwarding.rewind()
        connect(exchange, forwarding, to: next, mayReuse: false, context: context)
    }

    /// Nothing answered: 502, with the last reason.
    private func fail(_ exchange: Exchange, _ forwarding: Forwarding, reason: String, context: ChannelHandlerContext) {
        log(.warning, "app not answering", forwarding, upstream: forwarding.attempts.lastTried, reason: reason)
        giveUp(
            exchange,
            answering: .text(.badGateway, "\(forwarding.app) is not answering: \(reason).\n"),
            closing: false,
            context: context
        )
    }

    // MARK: Events from instance connections

    func upstream(_ handler: UpstreamHandler, received part: InstanceResponseReader.Part) {
        guard let context, let rawOutput, let exchange, let forwarding = exchange.forwarding,
            let connection = forwarding.connection, connection.handler === handler
        else {
            // An idle instance connection must not speak; one that does is out of step, so drop it.
            _ = pool.forget(handler)
            handler.close()
            return
        }
        switch part {
        case .head(let head):
            receivedHead(head, exchange, forwarding, handler: handler, context: context)
        case .body(let body):
            if forwarding.clientFraming.wrapsInChunks {
                answerBytes.gather(MessageRewriting.chunkSizeLine(body.readableBytes))
                gather(body, into: rawOutput)
                answerBytes.gather(ByteBuffer(staticString: "\r\n"))
            } else {
                gather(body, into: rawOutput)
            }
        case .end:
            if forwarding.upgrading {
                becomeTunnel(exchange, forwarding, connection, context: context)
                return
            }
            exchange.forwarding = nil
            forwarding.connection = nil
            if forwarding.instanceKeepsAlive && forwarding.endSent {
                pool.put(connection)
            } else {
                connection.close()
            }
            if forwarding.clientFraming.wrapsInChunks {
                answerBytes.gather(ByteBuffer(staticString: "0\r\n\r\n"))
            }
            writeLast(NIOAny(answerBytes.takeLast()), of: exchange, to: rawOutput)
        }
    }

    private func gather(_ body: ByteBuffer, into rawOutput: ChannelHandlerContext) {
        if body.readableBytes > AnswerBytes.gatherLimit {
            writeGathered()
            rawOutput.write(NIOAny(body), promise: nil)
            answerBytes.unflushed = true
        } else {
            answerBytes.gather(body)
        }
    }

    private func writeGathered() {
        guard let bytes = answerBytes.takeGathered() else { return }
        rawOutput?.write(NIOAny(bytes), promise: nil)
        answerBytes.unflushed = true
    }

    private func receivedHead(
        _ head: InstanceResponseHead,
        _ exchange: Exchange,
        _ forwarding: Forwarding,
        handler: UpstreamHandler,
        context: ChannelHandlerContext
    ) {
        forwarding.responseStarted = true
        forwarding.replay = nil
        if head.status == 101 {
            guard exchange.request.isWebSocketUpgrade else {
                fail(exchange, forwarding, reason: "it switched protocols unasked", context: context)
                return
            }
            forwarding.upgrading = true
        }
        forwarding.instanceKeepsAlive = head.keepAlive
        var expected = head.bytes.readableBytes + 256
        if case .length(let length) = head.framing, length <= AnswerBytes.gatherLimit { expected += length }
        var clientHead = answerBytes.answerHead(capacity: expected)
        let framing = MessageRewriting.writeClientResponseHead(
            for: head,
            clientVersion: exchange.request.version,
            releaseVersion: forwarding.claim.set.version,
            keepAlive: exchange.state.keepAlive,
            stickyCookie: stickyCookie(for: forwarding),
            overTLS: scheme == .https,
            strictTransportSecurity: forwarding.strictTransportSecurity,
            into: &clientHead
        )
        if !head.isInterim {
            forwarding.clientFraming = framing
            handler.reader.dechunk = framing.dechunks
            if framing.closeAfter { exchange.state.closeAfterAnswer() }
            exchange.state.answerStarts(clientAwaitsContinue: false)
        }
        if head.isInterim || forwarding.upgrading {
            // Sent at once, not with the turn's batch: a 101's tunnel removes the handler the batch flushes through.
            rawOutput?.write(NIOAny(clientHead), promise: nil)
            context.flush()
        } else {
            answerBytes.gatherHead(clientHead)
        }
    }

    /// The pin to set when the answering instance is not the one the client's cookie already names.
    private func stickyCookie(for forwarding: Forwarding) -> String? {
        guard let pin = forwarding.claim.stickyPin, let answering = forwarding.attempts.currentIndex,
            pin != .kept(answering)
        else { return nil }
        return forwarding.claim.set.stickyCookieValue(instance: answering)
    }

    func upstreamReadComplete(_ handler: UpstreamHandler) {
        writeGathered()
        if answerBytes.unflushed, let rawOutput {
            answerBytes.unflushed = false
            sendBatch.flush(rawOutput)
        }
    }

    func upstreamBecameWritable(_ handler: UpstreamHandler) {
        if let context { resumeClientReads(context: context) }
    }

    func upstreamClosed(_ handler: UpstreamHandler) {
        if pool.forget(handler) { return }
        writeGathered()
        guard let context, let exchange, let forwarding = exchange.forwarding,
            forwarding.connection?.handler === handler
        else { return }
        forwarding.connection = nil
        let reason = handler.failure.map(FailureReason.describe) ?? "the connection closed before an answer"
        if !forwarding.responseStarted {
            if forwarding.mayRetryAfterStaleConnection(idempotent: exchange.request.isIdempotent) {
                retry(exchange, forwarding, reason: reason, afterStalePooledConnection: true, context: context)
            } else if forwarding.mayRetryElsewhere(idempotent: exchange.request.isIdempotent) {
                retry(exchange, forwarding, reason: reason, afterStalePooledConnection: false, context: context)
            } else {
                fail(exchange, forwarding, reason: reason, context: context)
            }
            return
        }
        log(
            .warning,
            "instance closed mid-response",
            forwarding,
            upstream: forwarding.attempts.lastTried,
            reason: reason
        )
        giveUp(
            exchange,
            answering: .text(.badGateway, "\(forwarding.app) stopped answering: \(reason).\n"),
            closing: true,
            context: context
        )
    }
}
