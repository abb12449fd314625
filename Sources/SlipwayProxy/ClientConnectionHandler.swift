// ClientConnectionHandler: one client's keep-alive HTTP/1.1 connection. For each request it picks the
// app and its live set, claims an instance, forwards the request, streams the answer back, retries
// instances that cannot be reached, and turns a WebSocket handshake into a tunnel.
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

final class ClientConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let router: Router
    let noticeSettings: ReleaseNoticeSettings
    private let limits: ClientLimits
    private let silence: ClientSilenceTimer
    private var logger: Logger
    private(set) var context: ChannelHandlerContext?
    /// Where a proxied answer is written: below the response encoder, which only the proxy's own answers pass
    /// through. An instance's answer is already HTTP, and is copied to the client as it came.
    private var rawOutput: ChannelHandlerContext?
    /// A proxied answer's bytes gathered while one read of its instance is handed on, and written at once:
    /// one write for a small answer's head, body and end instead of three.
    private var outgoing: ByteBuffer?
    /// Bytes of a proxied answer were written and not flushed yet.
    private var unflushed = false
    /// Larger body pieces are written as they are, not copied.
    private static let gatherLimit = 16 * 1024
    private var clientIP: String?
    private var requestIDs = RequestIDSource()

    /// The request being answered. Requests pipelined behind it wait in `queued`.
    private(set) var exchange: Exchange?
    private var queued = CircularBuffer<HTTPServerRequestPart>()
    private var workingOffQueue = false
    /// The instance connection left open by the previous request, reused only for the same instance of the same set.
    private var pooled: UpstreamConnection?
    private var heldRead = false
    /// The answer is out and the proxy only reads to let the client finish sending before it closes.
    private var lingering = false
    private var exchangeCount = 0

    init(
        router: Router,
        noticeSettings: ReleaseNoticeSettings,
        limits: ClientLimits,
        silence: ClientSilenceTimer,
        logger: Logger
    ) {
        self.router = router
        self.noticeSettings = noticeSettings
        self.limits = limits
        self.silence = silence
        self.logger = logger
    }

    /// Adds the HTTP/1.1 server codec and a handler for one client connection.
    static func configure(
        _ channel: any Channel,
        router: Router,
        noticeSettings: ReleaseNoticeSettings,
        limits: ClientLimits,
        logger: Logger
    ) throws {
        var encoding = HTTPResponseEncoder.Configuration()
        encoding.automaticallySetFramingHeaders = false  // MessageRewriting frames each answer itself
        let silence = ClientSilenceTimer(limits: limits)
        try channel.pipeline.syncOperations.addHandlers([
            silence,
            HTTPResponseEncoder(configuration: encoding),
            ByteToMessageHandler(
                HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, limitConfiguration: limits.decoderLimits)
            ),
            ClientConnectionHandler(
                router: router,
                noticeSettings: noticeSettings,
                limits: limits,
                silence: silence,
                logger: logger
            ),
        ])
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        rawOutput = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self)
        clientIP = context.channel.remoteAddress?.ipAddress
        logger[metadataKey: "client.address"] = "\(clientIP ?? "unknown")"
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        rawOutput = nil
    }

    // MARK: Requests from the client

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        silence.unparsedBytes = false
        guard !lingering else { return }
        let part = unwrapInboundIn(data)
        if exchange?.requestEnded == true || !queued.isEmpty {
            queued.append(part)
            return
        }
        handle(part, context: context)
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            begin(head, context: context)
        case .body(let body):
            guard let exchange else { return }
            exchange.bodyBytes += body.readableBytes
            if let most = limits.maxBodyBytes, exchange.bodyBytes > most {
                refuseBody(of: exchange, context: context)
                return
            }
            // Without forwarding, the answer is settled (local, failed, or early) and the rest of the body is dropped.
            if let forwarding = exchange.forwarding {
                forwarding.unsent.append(body)
                if let connection = forwarding.connection { sendRequest(exchange, forwarding, on: connection) }
            }
        case .end(let trailers):
            silence.requestBodyPending = false
            guard let exchange else { return }
            exchange.requestEnded = true
            if let forwarding = exchange.forwarding {
                forwarding.trailers = trailers
                if let connection = forwarding.connection { sendRequest(exchange, forwarding, on: connection) }
            }
            finishIfDone(exchange, context: context)
        }
    }

    private func begin(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        exchangeCount += 1
        let exchange = Exchange(id: exchangeCount, request: head)
        self.exchange = exchange
        silence.requestBodyPending = true

        guard let host = head.headers.first(name: "host"), !host.isEmpty else {
            respond(
                .text(.badRequest, "This request has no Host header, so Slipway cannot tell which app it is for.\n"),
                to: exchange,
                context: context
            )
            return
        }
        guard head.method != .CONNECT else {
            respond(
                .text(.methodNotAllowed, "Slipway does not proxy CONNECT requests.\n"),
                to: exchange,
                context: context
            )
            return
        }
        if let refusal = limitRefusal(for: head) {
            exchange.keepAlive = false  // its body, if any, is not read
            respond(refusal, to: exchange, context: context)
            return
        }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let id = exchange.id
        let claim = router.claim(host: host, path: head.path, headers: head.headers) {
            handler.eventLoop.execute { handler.value.drainDeadlinePassed(exchangeID: id) }
        }
        switch claim {
        case .unknownHost(let host):
            respond(.unknownHost(host), to: exchange, context: context)
        case .noLiveRelease(let app):
            respond(.noLiveRelease(app), to: exchange, context: context)
        case .maintenance(let app):
            respond(.maintenance(app), to: exchange, context: context)
        case .endpoint(let app, let name, let live):
            serveEndpoint(name, app: app, live: live, exchange, context: context)
        case .claimed(let app, let claim):
            exchange.claim = claim
            let bodyIsChunked = head.headers.contains(name: "transfer-encoding")
            var upstreamHead = context.channel.allocator.buffer(capacity: 512)
            MessageRewriting.writeUpstreamRequestHead(
                for: head,
                rechunkingBody: bodyIsChunked,
                clientIP: clientIP,
                requestIDs: &requestIDs,
                into: &upstreamHead
            )
            let forwarding = Forwarding(app: app, claim: claim, head: upstreamHead, bodyIsChunked: bodyIsChunked)
            exchange.forwarding = forwarding
            guard let first = forwarding.attempts.current else {
                fail(exchange, forwarding, reason: "its release has no running instances", context: context)
                return
            }
            connect(exchange, forwarding, to: first, mayReuse: true, context: context)
        }
    }

    // MARK: Connections to instances

    private func connect(
        _ exchange: Exchange,
        _ forwarding: Forwarding,
        to upstream: Upstream,
        mayReuse: Bool,
        context: ChannelHandlerContext
    ) {
        if mayReuse, let idle = pooled, idle.set == ObjectIdentifier(forwarding.claim.set), idle.upstream == upstream,
            idle.channel.isActive
        {
            pooled = nil
            attach(idle, reused: true, exchange, forwarding, context: context)
            return
        }
        pooled?.close()
        pooled = nil

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
        connection.handler.reader.answeringHEAD = exchange.request.method == .HEAD
        connection.handler.reader.dechunk = false
        forwarding.connection = connection
        forwarding.reused = reused
        connection.handler.send(forwarding.head)
        sendRequest(exchange, forwarding, on: connection)
        resumeClientReads(context: context)
    }

    /// Sends the body parts that arrived since the last call, and the end once the client sent it.
    private func sendRequest(_ exchange: Exchange, _ forwarding: Forwarding, on connection: UpstreamConnection) {
        for body in forwarding.unsent where body.readableBytes > 0 {
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
        if exchange.requestEnded && !forwarding.endSent {
            if forwarding.bodyIsChunked {
                var last = connection.channel.allocator.buffer(capacity: 64)
                last.writeStaticString("0\r\n")
                for (name, value) in forwarding.trailers ?? [:] {
                    last.writeString("\(name): \(value)\r\n")
                }
                last.writeStaticString("\r\n")
                connection.handler.send(last)
            }
            forwarding.endSent = true
        }
        connection.handler.flush()
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

    /// Nothing answered: 502, with the last reason, to a client that has not seen a response head yet.
    private func fail(_ exchange: Exchange, _ forwarding: Forwarding, reason: String, context: ChannelHandlerContext) {
        exchange.forwarding = nil
        forwarding.connection?.close()
        log(.warning, "app not answering", forwarding, upstream: forwarding.attempts.lastTried, reason: reason)
        respond(.text(.badGateway, "\(forwarding.app) is not answering: \(reason).\n"), to: exchange, context: context)
    }

    // MARK: Events from instance connections

    var clientIsWritable: Bool { context?.channel.isWritable ?? false }

    func upstream(_ handler: UpstreamHandler, received part: InstanceResponseReader.Part) {
        guard let context, let rawOutput, let exchange, let forwarding = exchange.forwarding,
            let connection = forwarding.connection, connection.handler === handler
        else {
            // An idle instance connection must not speak; one that does is out of step, so drop it.
            if pooled?.handler === handler { pooled = nil }
            handler.close()
            return
        }
        switch part {
        case .head(let head):
            receivedHead(head, exchange, forwarding, handler: handler, context: context)
        case .body(let body):
            if forwarding.clientFraming.wrapsInChunks {
                outgoing.setOrWriteImmutableBuffer(MessageRewriting.chunkSizeLine(body.readableBytes))
                gather(body, into: rawOutput)
                outgoing.setOrWriteImmutableBuffer(ByteBuffer(staticString: "\r\n"))
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
                pooled?.close()
                pooled = connection
            } else {
                connection.close()
            }
            if forwarding.clientFraming.wrapsInChunks {
                outgoing.setOrWriteImmutableBuffer(ByteBuffer(staticString: "0\r\n\r\n"))
            }
            unflushed = false
            writeLast(NIOAny(outgoing.take() ?? ByteBuffer()), of: exchange, to: rawOutput)
        }
    }

    private func gather(_ body: ByteBuffer, into rawOutput: ChannelHandlerContext) {
        if body.readableBytes > Self.gatherLimit {
            writeOutgoing()
            rawOutput.write(NIOAny(body), promise: nil)
            unflushed = true
        } else {
            outgoing.setOrWriteImmutableBuffer(body)
        }
    }

    private func writeOutgoing() {
        guard let bytes = outgoing.take() else { return }
        rawOutput?.write(NIOAny(bytes), promise: nil)
        unflushed = true
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
        if case .length(let length) = head.framing, length <= Self.gatherLimit { expected += length }
        var clientHead = context.channel.allocator.buffer(capacity: expected)
        let framing = MessageRewriting.writeClientResponseHead(
            for: head,
            requestMethod: exchange.request.method,
            clientVersion: exchange.request.version,
            release: forwarding.claim.set.release,
            keepAlive: exchange.keepAlive,
            stickyCookie: stickyCookie(for: forwarding),
            into: &clientHead
        )
        if !head.isInterim {
            forwarding.clientFraming = framing
            handler.reader.dechunk = framing.dechunks
            if framing.closeAfter { exchange.keepAlive = false }
            exchange.responseHeadSent = true
        }
        if head.isInterim || forwarding.upgrading {
            rawOutput?.write(NIOAny(clientHead), promise: nil)
            context.flush()
        } else {
            outgoing = clientHead
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
        writeOutgoing()
        if unflushed {
            unflushed = false
            context?.flush()
        }
    }

    func upstreamBecameWritable(_ handler: UpstreamHandler) {
        if let context { resumeClientReads(context: context) }
    }

    func upstreamClosed(_ handler: UpstreamHandler) {
        if let idle = pooled, idle.handler === handler {
            pooled = nil
            return
        }
        writeOutgoing()
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
        // Cut off mid-answer: the client already has the head, so closing is the only honest signal left.
        log(
            .warning,
            "instance closed mid-response",
            forwarding,
            upstream: forwarding.attempts.lastTried,
            reason: reason
        )
        exchange.forwarding = nil
        exchange.releaseClaim()
        context.close(promise: nil)
    }

    // MARK: Answers to the client

    func respond(_ response: LocalResponse, to exchange: Exchange, context: ChannelHandlerContext) {
        // A client waiting for `100 Continue` never sends the body we would have to skip to reach its next request.
        if !exchange.requestEnded,
            exchange.request.headers["expect"].contains(where: { $0.lowercased() == "100-continue" })
        {
            exchange.keepAlive = false
        }
        let head = response.head(clientVersion: exchange.request.version, close: !exchange.keepAlive)
        exchange.responseHeadSent = true
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if response.sendsBody(to: exchange.request.method) {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: response.body)))), promise: nil)
        }
        writeEnd(of: exchange, trailers: nil, context: context)
    }

    func writeEnd(of exchange: Exchange, trailers: HTTPHeaders?, context: ChannelHandlerContext) {
        writeLast(wrapOutboundOut(.end(trailers)), of: exchange, to: context)
    }

    /// Writes the last bytes of an answer. The claim ends here: the instance has said all it will, and a drain
    /// need not wait for a slow client to read it. A connection that closes after the answer waits until the
    /// bytes are written, since closing drops what is not.
    private func writeLast(_ data: NIOAny, of exchange: Exchange, to output: ChannelHandlerContext) {
        exchange.releaseClaim()
        guard !exchange.keepAlive else {
            output.writeAndFlush(data, promise: nil)
            answered(exchange)
            return
        }
        let written = output.eventLoop.makePromise(of: Void.self)
        output.writeAndFlush(data, promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in self.answered(exchange) }
    }

    private func answered(_ exchange: Exchange) {
        exchange.responseDone = true
        guard self.exchange === exchange, let context else { return }
        if exchange.keepAlive {
            finishIfDone(exchange, context: context)
        } else if !exchange.requestEnded {
            closeLingering(context: context)
        } else {
            context.close(promise: nil)
        }
    }

    /// Closing while the client still sends would reset the connection, and a reset can destroy the answer
    /// before the client reads it (a 413, a 408). So the proxy stops writing, reads and drops what still comes
    /// for a moment, and only then closes, as nginx's lingering close does.
    private func closeLingering(context: ChannelHandlerContext) {
        lingering = true
        queued.removeAll()
        context.close(mode: .output, promise: nil)
        let channel = context.channel
        context.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        resumeClientReads(context: context)
    }

    /// 413 for a declared body over the limit (the parser already refused heads over theirs with 431).
    private func limitRefusal(for head: HTTPRequestHead) -> LocalResponse? {
        guard let most = limits.maxBodyBytes, let length = head.headers.first(name: "content-length").flatMap(Int.init),
            length > most
        else { return nil }
        return .bodyTooLarge(most)
    }

    /// A body that grew past the limit as it streamed (chunked, or longer than declared): 413. The instance never
    /// sees the end of the request.
    private func refuseBody(of exchange: Exchange, context: ChannelHandlerContext) {
        abandon(exchange, answering: .bodyTooLarge(limits.maxBodyBytes ?? 0), context: context)
    }

    /// A client that began a request and went silent: 408.
    private func requestStalled(context: ChannelHandlerContext) {
        guard !heldRead else { return }  // the proxy stopped reading, so the silence is not the client's
        guard let exchange else {
            respondWithoutRequest(.requestTimeout, context: context)
            return
        }
        guard !exchange.requestEnded else { return }
        abandon(exchange, answering: .requestTimeout, context: context)
    }

    /// Gives up a request the client is still sending: its instance connection closes, and the client gets
    /// `response` if no answer has started, else the connection is cut.
    private func abandon(_ exchange: Exchange, answering response: LocalResponse, context: ChannelHandlerContext) {
        let forwarding = exchange.forwarding
        exchange.forwarding = nil
        forwarding?.connection?.close()
        exchange.keepAlive = false
        if exchange.responseHeadSent || exchange.responseDone {
            exchange.releaseClaim()
            context.close(promise: nil)
        } else {
            respond(response, to: exchange, context: context)
        }
    }

    /// An answer to bytes that never became a request head (a stalled or malformed one): the connection closes after it.
    private func respondWithoutRequest(_ response: LocalResponse, context: ChannelHandlerContext) {
        exchangeCount += 1
        let placeholder = Exchange(
            id: exchangeCount,
            request: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
        )
        placeholder.requestEnded = true
        placeholder.keepAlive = false
        exchange = placeholder
        respond(response, to: placeholder, context: context)
    }

    /// A request is over when its answer was written and its body fully read; then the next one may start.
    private func finishIfDone(_ exchange: Exchange, context: ChannelHandlerContext) {
        guard self.exchange === exchange, exchange.responseDone, exchange.requestEnded else { return }
        self.exchange = nil
        guard !workingOffQueue else { return }  // the loop below, further up the stack, goes on
        workingOffQueue = true
        while self.exchange?.requestEnded != true, let part = queued.popFirst() {
            handle(part, context: context)
        }
        workingOffQueue = false
        resumeClientReads(context: context)
    }

    /// Past the drain deadline: the set has already let go of the claim; answer 504 if we still can.
    private func drainDeadlinePassed(exchangeID: Int) {
        guard let context, let exchange, exchange.id == exchangeID, let forwarding = exchange.forwarding else { return }
        exchange.forwarding = nil
        exchange.claim = nil
        forwarding.connection?.close()
        log(
            .warning,
            "request cut off at drain deadline",
            forwarding,
            upstream: forwarding.attempts.lastTried,
            reason: nil
        )
        if exchange.responseHeadSent {
            context.close(promise: nil)
        } else {
            respond(
                .text(.gatewayTimeout, "\(forwarding.app) did not answer before its old release was retired.\n"),
                to: exchange,
                context: context
            )
        }
    }

    // MARK: WebSocket tunnel

    /// The instance accepted the upgrade: from here on both connections carry raw bytes, glued together.
    private func becomeTunnel(
        _ exchange: Exchange,
        _ forwarding: Forwarding,
        _ connection: UpstreamConnection,
        context: ChannelHandlerContext
    ) {
        self.exchange = nil
        exchange.forwarding = nil
        pooled?.close()
        pooled = nil
        let clientChannel = context.channel
        let instanceChannel = connection.channel
        let set = forwarding.claim.set
        let (clientSide, instanceSide) = GlueHandler.pair()
        let goingAway = NIOLoopBound(clientSide, eventLoop: context.eventLoop)
        let tunnel = set.openTunnel(replacing: forwarding.claim.ticket) {
            goingAway.eventLoop.execute { goingAway.value.goAway() }
        }
        exchange.claim = nil
        log(.debug, "websocket tunnel opened", forwarding, upstream: connection.upstream, reason: nil)
        if let tunnel { clientSide.onClose = { set.tunnelClosed(tunnel) } }
        instanceSide.onClose = clientSide.onClose
        do {
            let client = context.pipeline.syncOperations
            let instance = instanceChannel.pipeline.syncOperations
            try client.addHandler(clientSide)
            try instance.addHandler(instanceSide)
            // A WebSocket may stay quiet for long; its liveness is the app's and the browser's business.
            client.removeHandler(silence, promise: nil)
            // Encoders go first, so the bytes the decoders hand over on removal pass through as they are.
            client.removeHandler(try client.handler(type: HTTPResponseEncoder.self), promise: nil)
            // Both hand the bytes that came after the handshake to the tunnel as they leave.
            let decodersRemoved = [
                client.removeHandler(try client.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)),
                instance.removeHandler(connection.handler),
            ]
            client.removeHandler(context: context, promise: nil)
            let handedOver = EventLoopFuture.andAllComplete(decodersRemoved, on: clientChannel.eventLoop)
            handedOver.assumeIsolated().whenComplete { _ in
                clientSide.start()
                instanceSide.start()
                // The set started draining during the handshake: the client got its 101, so it is told to go
                // away the proper way, and reconnects to the new release.
                if tunnel == nil { clientSide.goAway() }
            }
        } catch {
            logger.error("websocket tunnel setup failed", metadata: ["error": "\(error)"])
            clientChannel.close(promise: nil)
            instanceChannel.close(promise: nil)
        }
    }

    // MARK: Client channel events

    func channelInactive(context: ChannelHandlerContext) {
        if let exchange {
            endWait(of: exchange)
            exchange.releaseClaim()
            exchange.forwarding?.connection?.close()
            exchange.forwarding = nil
        }
        exchange = nil
        outgoing = nil
        pooled?.close()
        pooled = nil
        queued.removeAll()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError else {
            context.close(promise: nil)
            return
        }
        logger.info("malformed request", metadata: ["error": "\(error)"])
        let badRequest =
            error as? HTTPParserError == .headerOverflow
            ? LocalResponse.text(
                .requestHeaderFieldsTooLarge,
                "This request's URL and headers are larger than the \(limits.maxHeaderBytes) bytes allowed.\n"
            )
            : LocalResponse.text(.badRequest, "This request is not valid HTTP/1.1.\n")
        guard let exchange else {
            respondWithoutRequest(badRequest, context: context)
            return
        }
        // Nothing after the broken bytes can be parsed: finish what we can, then close.
        exchange.keepAlive = false
        guard !exchange.requestEnded else { return }
        exchange.forwarding?.connection?.close()
        exchange.forwarding = nil
        if exchange.responseHeadSent {
            exchange.releaseClaim()
            context.close(promise: nil)
        } else {
            respond(badRequest, to: exchange, context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            exchange?.forwarding?.connection?.handler.resumeReading()
        }
        context.fireChannelWritabilityChanged()
    }

    /// A keep-alive connection silent between requests is closed, with the instance connection it keeps;
    /// a long answer (server-sent events) is not idleness.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event as? ClientSilenceTimer.Event {
        case .idle:
            if exchange == nil && queued.isEmpty { context.close(promise: nil) }
        case .requestStalled:
            requestStalled(context: context)
        case nil:
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// Request backpressure: hold client reads while pipelined requests wait, while the instance connection is
    /// being made (the body waits in memory meanwhile), or while the instance cannot take more body.
    func read(context: ChannelHandlerContext) {
        if holdsClientReads {
            heldRead = true
        } else {
            context.read()
        }
    }

    private var holdsClientReads: Bool {
        if lingering { return false }
        if !queued.isEmpty { return true }
        guard let exchange, !exchange.requestEnded, let forwarding = exchange.forwarding else { return false }
        guard let connection = forwarding.connection else { return true }
        return !connection.handler.isWritable
    }

    private func resumeClientReads(context: ChannelHandlerContext) {
        if heldRead && !holdsClientReads {
            heldRead = false
            context.read()
        }
    }

    private func log(
        _ level: Logger.Level,
        _ message: Logger.Message,
        _ forwarding: Forwarding,
        upstream: Upstream?,
        reason: String?
    ) {
        var metadata: Logger.Metadata = [
            "app.name": "\(forwarding.app)",
            "release.version": "\(forwarding.claim.set.release.version)",
        ]
        if let upstream { metadata["upstream"] = "\(upstream)" }
        if let reason { metadata["reason"] = "\(reason)" }
        logger.log(level: level, message, metadata: metadata)
    }
}

extension LocalResponse {
    static func unknownHost(_ host: String) -> LocalResponse {
        .text(.notFound, "No app is served at \(host).\n")
    }

    static func bodyTooLarge(_ most: Int) -> LocalResponse {
        .text(.payloadTooLarge, "This request's body is larger than the \(most) bytes allowed.\n")
    }

    static let requestTimeout = LocalResponse.text(
        .requestTimeout,
        "This request did not arrive in time: the client stopped sending before it was complete.\n"
    )

    static func noLiveRelease(_ app: String) -> LocalResponse {
        .text(.serviceUnavailable, "\(app) has no live release yet: push to deploy it.\n")
    }

    /// A page a person reads, with `Retry-After` so crawlers and clients come back later.
    static func maintenance(_ app: String) -> LocalResponse {
        LocalResponse(
            status: .serviceUnavailable,
            headers: [
                "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", "Retry-After": "120",
            ],
            body: """
                <!doctype html><html lang="en"><head><meta charset="utf-8"><title>Down for maintenance</title>
                <meta name="viewport" content="width=device-width, initial-scale=1"></head>
                <body style="font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em">
                <h1>Down for maintenance</h1><p>\(app) is being worked on and will be back shortly.</p></body></html>

                """
        )
    }
}
