// Reading requests: the client's bytes become request parts, one request at a time and in order; each head
// is checked against the limits and routed, and either answered here or claimed on an instance and forwarded.
import NIOCore
import NIOHTTP1

extension ClientConnectionHandler {
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
    func readRequests(context: ChannelHandlerContext) {
        guard !readingRequests else { return }  // the loop further up the stack goes on
        readingRequests = true
        defer { readingRequests = false }
        defer { if received.readableBytes == 0 { received = Self.noBytes } }
        while !lingering, exchange?.state.requestEnded != true {
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
                // Grown past the limit as it streamed (chunked, or longer than declared): the instance never
                // sees the end of the request.
                giveUp(exchange, answering: .bodyTooLarge(most), closing: true, context: context)
                return
            }
            // Without forwarding, the answer is settled (local, failed, or early) and the rest of the body is dropped.
            if let forwarding = exchange.forwarding {
                forwarding.unsent.append(body)
                if let connection = forwarding.connection { sendRequest(exchange, forwarding, on: connection) }
            }
        case .end:
            guard let exchange else { return }
            let next = exchange.state.requestEnds()
            if let forwarding = exchange.forwarding {
                if let connection = forwarding.connection { sendRequest(exchange, forwarding, on: connection) }
            }
            carryOut(next, after: exchange, context: context)
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
        // 413 for a declared body over the limit (the reader already refused heads over theirs with 431).
        if let most = limits.maxBodyBytes, case .length(let length) = head.framing, length > most {
            exchange.state.closeAfterAnswer()  // its body is not read
            respond(.bodyTooLarge(most), to: exchange, context: context)
            return
        }
        let claim = router.claim(
            host: host,
            path: head.path,
            overTLS: scheme == .https,
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
        case .redirectToHTTPS(let host, let port):
            respond(
                .redirect(to: "https://" + host + (port == 443 ? "" : ":\(port)") + head.uri),
                to: exchange,
                context: context
            )
        case .challengeAnswer(let keyAuthorization):
            respond(.text(.ok, keyAuthorization), to: exchange, context: context)
        case .claimed(let app, let claim, let hsts):
            exchange.claim = claim
            forward(exchange, head, app: app, claim: claim, strictTransportSecurity: hsts, context: context)
        }
    }
}
