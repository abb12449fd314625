// The endpoints under an app's prefix, on a client connection: answers at once, and the two that wait for
// the next release (the event stream and the long-polled version) by watching the router, on this event loop.
import NIOCore
import NIOHTTP1

/// A request held open until the app's next release: an event stream, or a long poll.
final class ReleaseWait {
    let app: String
    let watch: Int
    let isStream: Bool
    /// The release this client was last told of, so a switch it already heard of is not told twice.
    var told: Int?
    /// The long poll's deadline, or the stream's next heartbeat.
    var timer: Scheduled<Void>?

    init(app: String, watch: Int, isStream: Bool) {
        self.app = app
        self.watch = watch
        self.isStream = isStream
    }
}

extension ClientConnectionHandler {
    func serveEndpoint(
        _ name: String,
        app: String,
        live: UpstreamSet?,
        _ exchange: Exchange,
        context: ChannelHandlerContext
    ) {
        let request = exchange.request
        let endpoint = ReleaseEndpoint(name: name)
        if let refusal = endpoint.refusal(of: request.method) {
            return respond(refusal, to: exchange, context: context)
        }
        switch endpoint {
        case .unknown(let name):
            respond(ReleaseEndpoint.unknownResponse(name), to: exchange, context: context)
        case .clientScript:
            respond(ReleaseEndpoint.clientScriptResponse(to: request), to: exchange, context: context)
        case .version:
            guard let live else { return respond(.noLiveRelease(app), to: exchange, context: context) }
            if let wait = ReleaseEndpoint.longPollWait(in: request, longest: noticeSettings.longestWait),
                ReleaseEndpoint.clientHas(live.release, request)
            {
                startLongPoll(exchange, app: app, wait: wait, context: context)
            } else {
                respond(
                    ReleaseEndpoint.versionResponse(to: request, release: live.release),
                    to: exchange,
                    context: context
                )
            }
        case .events:
            startEventStream(exchange, app: app, context: context)
        }
    }

    /// Registers with the router; every notice hops to this connection's event loop.
    private func watch(
        _ exchange: Exchange,
        app: String,
        isStream: Bool,
        context: ChannelHandlerContext
    ) -> (ReleaseWait, live: ReleaseStamp?) {
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let id = exchange.id
        let (watch, live) = router.watch(app: app) { notice in
            handler.eventLoop.execute { handler.value.heard(notice, exchangeID: id) }
        }
        let wait = ReleaseWait(app: app, watch: watch, isStream: isStream)
        exchange.releaseWait = wait
        return (wait, live)
    }

    private func startLongPoll(_ exchange: Exchange, app: String, wait: Duration, context: ChannelHandlerContext) {
        let (poll, live) = watch(exchange, app: app, isStream: false, context: context)
        guard let live, ReleaseEndpoint.clientHas(live, exchange.request) else {
            // A switch came between the claim and the watch: the client is already out of date.
            endWait(of: exchange)
            return answerVersion(live, app: app, to: exchange, context: context)
        }
        let id = exchange.id
        poll.timer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(wait)) {
            guard let exchange = self.exchange, exchange.id == id, let context = self.context else { return }
            self.endWait(of: exchange)
            self.answerVersion(live, app: app, to: exchange, context: context)
        }
    }

    private func startEventStream(_ exchange: Exchange, app: String, context: ChannelHandlerContext) {
        let (stream, live) = watch(exchange, app: app, isStream: true, context: context)
        stream.told = ReleaseEndpoint.lastEventID(in: exchange.request)
        exchange.state.closeAfterAnswer()
        exchange.state.answerStarts(clientAwaitsContinue: false)
        context.write(wrapOutboundOut(.head(ReleaseEndpoint.eventStreamHead(for: exchange.request))), promise: nil)
        writeStream(ReleaseEndpoint.streamPreamble, context: context)
        // A new client learns the live release at once; a reconnecting one only if it changed meanwhile.
        if let live { tell(live, on: stream, context: context) }
        context.flush()
        scheduleHeartbeat(on: stream, loop: context.eventLoop.assumeIsolated())
    }

    private func scheduleHeartbeat(on stream: ReleaseWait, loop: NIOIsolatedEventLoop) {
        stream.timer = loop.scheduleTask(in: TimeAmount(noticeSettings.heartbeat)) {
            guard let context = self.context, self.exchange?.releaseWait === stream else { return }
            self.writeStream(ReleaseEndpoint.heartbeat, context: context)
            context.flush()
            self.scheduleHeartbeat(on: stream, loop: loop)
        }
    }

    private func heard(_ notice: ReleaseNotice, exchangeID: Int) {
        guard let exchange, exchange.id == exchangeID, let wait = exchange.releaseWait, let context else { return }
        switch notice {
        case .live(let release) where wait.isStream:
            tell(release, on: wait, context: context)
            context.flush()
        case .live(let release):
            endWait(of: exchange)
            answerVersion(release, app: wait.app, to: exchange, context: context)
        case .ended where wait.isStream:
            endWait(of: exchange)
            writeEnd(of: exchange, context: context)
        case .ended:
            // Nothing new to tell: the client asks again, and hears then whether the app is still there.
            endWait(of: exchange)
            respond(
                LocalResponse(status: .notModified, headers: ["Cache-Control": "no-cache"], body: ""),
                to: exchange,
                context: context
            )
        }
    }

    private func tell(_ release: ReleaseStamp, on stream: ReleaseWait, context: ChannelHandlerContext) {
        guard stream.told != release.release else { return }
        stream.told = release.release
        writeStream(ReleaseEndpoint.event(for: release), context: context)
    }

    private func writeStream(_ text: String, context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
    }

    private func answerVersion(
        _ release: ReleaseStamp?,
        app: String,
        to exchange: Exchange,
        context: ChannelHandlerContext
    ) {
        guard let release else { return respond(.noLiveRelease(app), to: exchange, context: context) }
        respond(ReleaseEndpoint.versionResponse(to: exchange.request, release: release), to: exchange, context: context)
    }

    /// Stops watching and cancels the timers; the request's answer is then the caller's to finish.
    func endWait(of exchange: Exchange) {
        guard let wait = exchange.releaseWait else { return }
        exchange.releaseWait = nil
        router.unwatch(app: wait.app, id: wait.watch)
        wait.timer?.cancel()
    }
}
