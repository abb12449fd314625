// ClientConnectionHandler: one client's keep-alive HTTP/1.1 connection. For each request it picks the
// app and its live set, claims an instance, forwards the request, streams the answer back, retries
// instances that cannot be reached, turns a WebSocket handshake into a tunnel, and answers a client that
// goes silent or sends what is not a request.
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

final class ClientConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let router: Router
    let noticeSettings: ReleaseNoticeSettings
    private let limits: ClientLimits
    /// Flushes this connection's and its instance connections' writes at the end of the event loop's turn.
    private let sendBatch: SendBatch
    private var reader: ClientRequestReader
    /// Bytes read and not yet handed on: the start of a head, or requests pipelined behind the current one.
    private var received = ClientConnectionHandler.noBytes
    /// What `received` is once all of it was handed on, so a connection between requests keeps no read buffer.
    private static let noBytes = ByteBuffer()
    /// When the client last sent anything, for the 408 and idle deadlines.
    private var lastRead = NIODeadline.now()
    /// When the head being read began to arrive: a head has `headerTimeout` to arrive whole, however it trickles.
    private var headStarted: NIODeadline?
    private var silenceCheck: Scheduled<Void>?
    private var logger: Logger
    private(set) var context: ChannelHandlerContext?
    /// The client's channel, held while this handler is in its pipeline: asked whether it is writable on every
    /// read of an instance's answer, which through `context` would cost a lookup each time.
    private var channel: (any Channel)?
    /// Where a proxied answer is written: below the response encoder, which only the proxy's own answers pass
    /// through. An instance's answer is already HTTP, and is copied to the client as it came.
    private var rawOutput: ChannelHandlerContext?
    /// A proxied answer's bytes gathered while one read of its instance is handed on, and written at once:
    /// one write for a small answer's head, body and end instead of three.
    private var outgoing: ByteBuffer?
    /// `outgoing` begins with an answer head, in `spareAnswerHead`'s storage.
    private var outgoingHasHead = false
    /// The storage of the heads this connection writes, kept for the next request: once the socket has taken
    /// the bytes, nothing else holds it and it is written again without an allocation. Larger ones are let go.
    private var spareRequestHead = ByteBuffer()
    private var spareAnswerHead = ByteBuffer()
    private static let spareHeadLimit = 4096
    /// Bytes of a proxied answer were written and not flushed yet.
    private var unflushed = false
    /// Larger body pieces are written as they are, not copied.
    private static let gatherLimit = 16 * 1024
    private var client = ClientEndpoint(ip: nil, listenerPort: nil)
    private var requestIDs = RequestIDSource()
    /// What a drain's deadline calls to cut off one of this connection's requests, made once per connection.
    /// It holds this handler, so `handlerRemoved` lets go of it.
    private var tellCutOff: @Sendable (_ request: Int) -> Void = { _ in }

    /// The request being answered. Requests pipelined behind it wait, unread, in `received`.
    private(set) var exchange: Exchange?
    private var readingRequests = false
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
        sendBatch: SendBatch,
        logger: Logger
    ) {
        self.router = router
        self.noticeSettings = noticeSettings
        self.limits = limits
        self.sendBatch = sendBatch
        self.reader = ClientRequestReader(maxHeadBytes: limits.maxHeaderBytes)
        self.logger = logger
    }

    /// Adds the encoder of the proxy's own answers and a handler for one client connection.
    static func configure(
        _ channel: any Channel,
        router: Router,
        noticeSettings: ReleaseNoticeSettings,
        limits: ClientLimits,
        sendBatch: SendBatch,
        logger: Logger
    ) throws {
        var encoding = HTTPResponseEncoder.Configuration()
        encoding.automaticallySetFramingHeaders = false  // LocalResponse frames each answer itself
        try channel.pipeline.syncOperations.addHandlers([
            HTTPResponseEncoder(configuration: encoding),
            ClientConnectionHandler(
                router: router,
                noticeSettings: noticeSettings,
                limits: limits,
                sendBatch: sendBatch,
                logger: logger
            ),
        ])
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        channel = context.channel
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        tellCutOff = { id in handler.eventLoop.execute { handler.value.drainDeadlinePassed(exchangeID: id) } }
        rawOutput = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self)
        client = ClientEndpoint(
            ip: context.channel.remoteAddress?.ipAddress,
            listenerPort: context.channel.localAddress?.port
        )
        logger[metadataKey: "client.address"] = "\(client.ip ?? "unknown")"
        if context.channel.isActive { scheduleSilenceCheck(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        channel = nil
        rawOutput = nil
        tellCutOff = { _ in }
        silenceCheck?.cancel()
        silenceCheck = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        scheduleSilenceCheck(context: context)
        context.fireChannelActive()
    }

    // MARK: Requests from the client

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastRead = .now()
        guard !lingering else { return }
        var bytes = unwrapInboundIn(data)
        if received.readableBytes == 0 {
            received = bytes
        } else {
            received.writeBuffer(&bytes)
        }
        readRequests(context: context)
    }

    /// Hands on the parts of the current request found in `received`, and goes on with the requests behind it
    /// only once it has been answered: one request at a time, in order.
    private func readRequests(context: ChannelHandlerContext) {
        guard !readingRequests else { return }  // the loop further up the stack goes on
        readingRequests = true
        defer { readingRequests = false }
        defer { if received.readableBytes == 0 { received = Self.noBytes } }
        while !lingering, exchange?.requestEnded != true {
            // No timer is set here, which every request would pay for: the silence check always comes within
            // `headerTimeout` of the last read, which is no later than this head's deadline.
            if exchange == nil && received.readableBytes > 0 && headStarted == nil { headStarted = .now() }
            let part: ClientRequestReader.Part?
            do {
                part = try reader.next(from: &received)
            } catch {
                refuse(error, context: context)
                return
            }
            guard let part else { return }
            if case .head = part { headStarted = nil }
            handle(part, context: context)
        }
    }

    private func handle(_ part: ClientRequestReader.Part, context: ChannelHandlerContext) {
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
        case .end:
            guard let exchange else { return }
            exchange.requestEnded = true
            if let forwarding = exchange.forwarding {
                if let connection = forwarding.connection { sendRequest(exchange, forwarding, on: connection) }
            }
            finishIfDone(exchange, context: context)
        }
    }

    private func begin(_ head: ClientRequestHead, context: ChannelHandlerContext) {
        exchangeCount += 1
        let exchange = Exchange(id: exchangeCount, request: head)
        self.exchange = exchange

        guard let host = head.host, !host.isEmpty else {
            respond(
                .text(.badRequest, "This request has no Host header, so Slipway cannot tell which app it is for.\n"),
                to: exchange,
                context: context
            )
            return
        }
        guard !head.method.isCONNECT else {
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
        let claim = router.claim(
            host: host,
            path: head.path,
            // The exchange holds the head, so the cookie, read only for a sticky app, costs no copy of it.
            stickyCookie: exchange.request.cookie(named: Router.stickyCookieName),
            onDrainDeadline: DrainCutOff(request: exchange.id, tell: tellCutOff)
        )
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
            var upstreamHead = Self.reuse(&spareRequestHead, capacity: head.bytes.readableBytes + 256)
            MessageRewriting.writeUpstreamRequestHead(
                for: head,
                client: client,
                requestIDs: &requestIDs,
                into: &upstreamHead
            )
            let forwarding = Forwarding(
                app: app,
                claim: claim,
                head: upstreamHead,
                bodyIsChunked: head.framing == .chunked
            )
            Self.keep(upstreamHead, as: &spareRequestHead)
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
    private func sendRequest(
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
        if exchange.requestEnded && !forwarding.endSent {
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

    /// Nothing answered: 502, with the last reason, to a client that has not seen a response head yet.
    private func fail(_ exchange: Exchange, _ forwarding: Forwarding, reason: String, context: ChannelHandlerContext) {
        exchange.forwarding = nil
        forwarding.connection?.close()
        log(.warning, "app not answering", forwarding, upstream: forwarding.attempts.lastTried, reason: reason)
        respond(.text(.badGateway, "\(forwarding.app) is not answering: \(reason).\n"), to: exchange, context: context)
    }

    // MARK: Events from instance connections

    var clientIsWritable: Bool { channel?.isWritable ?? false }

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
            let answer = outgoing.take() ?? ByteBuffer()
            writeLast(NIOAny(answer), of: exchange, to: rawOutput)
            if outgoingHasHead { Self.keep(answer, as: &spareAnswerHead) }
            outgoingHasHead = false
        }
    }

    /// A buffer for a head, in `spare`'s storage when nothing else holds that any more.
    private static func reuse(_ spare: inout ByteBuffer, capacity: Int) -> ByteBuffer {
        var buffer = spare
        spare = ByteBuffer()
        buffer.clear(minimumCapacity: capacity)
        return buffer
    }

    /// Keeps a written head's storage as `spare`, unless it is too large to hold on an idle connection.
    private static func keep(_ head: ByteBuffer, as spare: inout ByteBuffer) {
        if head.capacity <= spareHeadLimit { spare = head }
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
        outgoingHasHead = false
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
        var clientHead = Self.reuse(&spareAnswerHead, capacity: expected)
        let framing = MessageRewriting.writeClientResponseHead(
            for: head,
            clientVersion: exchange.request.version,
            releaseVersion: forwarding.claim.set.version,
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
            // Sent at once, not with the turn's batch: a 101's tunnel removes the handler the batch flushes through.
            rawOutput?.write(NIOAny(clientHead), promise: nil)
            context.flush()
        } else {
            outgoing = clientHead
            outgoingHasHead = true
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
        if unflushed, let rawOutput {
            unflushed = false
            sendBatch.flush(rawOutput)
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
        if !exchange.requestEnded && exchange.request.expectsContinue { exchange.keepAlive = false }
        let head = response.head(clientVersion: exchange.request.version, close: !exchange.keepAlive)
        exchange.responseHeadSent = true
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
    private func writeLast(_ data: NIOAny, of exchange: Exchange, to output: ChannelHandlerContext) {
        exchange.releaseClaim()
        guard !exchange.keepAlive else {
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
        received = Self.noBytes
        context.close(mode: .output, promise: nil)
        let channel = context.channel
        context.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        resumeClientReads(context: context)
    }

    /// 413 for a declared body over the limit (the reader already refused heads over theirs with 431).
    private func limitRefusal(for head: ClientRequestHead) -> LocalResponse? {
        guard let most = limits.maxBodyBytes, case .length(let length) = head.framing, length > most else { return nil }
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
        let placeholder = Exchange(id: exchangeCount, request: .unread)
        placeholder.requestEnded = true
        placeholder.keepAlive = false
        exchange = placeholder
        respond(response, to: placeholder, context: context)
    }

    /// A request is over when its answer was written and its body fully read; then the next one may start.
    private func finishIfDone(_ exchange: Exchange, context: ChannelHandlerContext) {
        guard self.exchange === exchange, exchange.responseDone, exchange.requestEnded else { return }
        self.exchange = nil
        readRequests(context: context)
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
        let tunnel = set.openTunnel(replacing: forwarding.claim) {
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
        outgoingHasHead = false
        received = Self.noBytes
        pooled?.close()
        pooled = nil
        silenceCheck?.cancel()
        silenceCheck = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Bytes that are not a request the proxy passes on: answered with what is wrong, then the connection
    /// closes, since nothing after them can be read.
    private func refuse(_ error: ClientRequestError, context: ChannelHandlerContext) {
        logger.info("malformed request", metadata: ["error": "\(error)"])
        let refusal = LocalResponse.text(error.status, "\(error)\n")
        guard let exchange else {
            respondWithoutRequest(refusal, context: context)
            return
        }
        exchange.keepAlive = false
        exchange.forwarding?.connection?.close()
        exchange.forwarding = nil
        if exchange.responseHeadSent {
            exchange.releaseClaim()
            context.close(promise: nil)
        } else {
            respond(refusal, to: exchange, context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            exchange?.forwarding?.connection?.handler.resumeReading()
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: Silence

    /// One check per connection, never later than either deadline, so a busy connection costs a clock read per
    /// read and nothing per request: reads only move `lastRead` on.
    private func scheduleSilenceCheck(context: ChannelHandlerContext) {
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
        } else if exchange.map({ !$0.requestEnded }) ?? (received.readableBytes > 0) {
            if silence >= TimeAmount(limits.requestTimeout) { requestStalled(context: context) }
        } else if exchange == nil, silence >= TimeAmount(limits.idleTimeout) {
            context.close(promise: nil)
            return
        }
        scheduleSilenceCheck(context: context)
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
        guard let exchange else { return false }
        if exchange.requestEnded { return received.readableBytes > 0 }  // requests pipelined behind it wait unread
        guard let forwarding = exchange.forwarding else { return false }
        guard let connection = forwarding.connection else { return true }
        return !connection.channel.isWritable
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
            "release.version": "\(forwarding.claim.set.version)",
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
