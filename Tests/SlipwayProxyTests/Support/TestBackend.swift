// TestBackend: a stand-in app instance on 127.0.0.1:0. It answers with its name, and on request
// delays, streams, echoes headers or bodies, hangs, or upgrades (at once or after `?delay=MS`) to a
// WebSocket that greets with a text frame and echoes the bytes it gets.
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SlipwayProxy
import Synchronization

final class TestBackend: Sendable {
    let name: String
    let port: Int
    private let listener: any Channel
    private let state: Shared

    /// What the connection handlers report back and what the test can trigger in them.
    final class Shared: Sendable {
        let requests = Mutex(0)
        let connections = Mutex<[ObjectIdentifier: any Channel]>([:])
        let heldStreams = Mutex<[@Sendable () -> Void]>([])
        let bytesStreamed = Mutex(0)
        /// WebSocket reads that began with a close frame (the proxy writes its close frame in one piece).
        let closeFramesReceived = Mutex(0)
    }

    private init(name: String, port: Int, listener: any Channel, state: Shared) {
        self.name = name
        self.port = port
        self.listener = listener
        self.state = state
    }

    static func start(name: String) async throws -> TestBackend {
        let state = Shared()
        let listener = try await ServerBootstrap(group: TestLoops.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                state.connections.withLock { $0[ObjectIdentifier(channel)] = channel }
                channel.closeFuture.whenComplete { _ in
                    _ = state.connections.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        HTTPResponseEncoder(),
                        ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)),
                        BackendHandler(name: name, state: state),
                    ])
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return TestBackend(name: name, port: listener.localAddress!.port!, listener: listener, state: state)
    }

    var upstream: Upstream { Upstream(host: "127.0.0.1", port: port) }

    /// Requests that reached this instance.
    var requestCount: Int { state.requests.withLock { $0 } }

    var openConnections: Int { state.connections.withLock { $0.count } }

    var closeFramesReceived: Int { state.closeFramesReceived.withLock { $0 } }

    /// Body bytes `/large` handed to its socket so far.
    var bytesStreamed: Int { state.bytesStreamed.withLock { $0 } }

    /// Lets every `/stream` response held open so far send its last part and end.
    func finishStreams() {
        let held = state.heldStreams.withLock { held in
            defer { held.removeAll() }
            return held
        }
        for finish in held { finish() }
    }

    /// Closes the listener and every accepted connection, as a stopped instance would.
    func stop() async {
        try? await listener.close()
        let open = state.connections.withLock { Array($0.values) }
        for channel in open { try? await channel.close() }
    }
}

private final class BackendHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let name: String
    private let state: TestBackend.Shared
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var requestsOnConnection = 0
    private var largeRemaining = 0

    init(name: String, state: TestBackend.Shared) {
        self.name = name
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
            requestsOnConnection += 1
            state.requests.withLock { $0 += 1 }
        case .body(var part):
            body.writeBuffer(&part)
        case .end:
            guard let head else { return }
            self.head = nil
            answer(head, context: context)
        }
    }

    private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let parts = head.uri.split(separator: "?", maxSplits: 1)
        let path = String(parts.first ?? "")
        let query =
            parts.count > 1
            ? parts[1].split(separator: "&").reduce(into: [String: String]()) { query, pair in
                let kv = pair.split(separator: "=", maxSplits: 1)
                query[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
            } : [:]

        switch path {
        case "/slow":
            let delay = Int64(query["ms"] ?? "100") ?? 100
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) {
                self.respond(.ok, self.name, context: context)
            }
        case "/stream":
            context.write(
                wrapOutboundOut(
                    .head(
                        HTTPResponseHead(
                            version: .http1_1,
                            status: .ok,
                            headers: [
                                "Content-Type": "text/event-stream", "X-Backend": name,
                            ]
                        )
                    )
                ),
                promise: nil
            )
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "first\n")))), promise: nil)
            let handler = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            state.heldStreams.withLock {
                $0.append {
                    handler.eventLoop.execute {
                        let (this, context) = handler.value
                        context.write(
                            this.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "last\n")))),
                            promise: nil
                        )
                        context.writeAndFlush(this.wrapOutboundOut(.end(nil)), promise: nil)
                    }
                }
            }
        case "/ws":
            if let delay = query["delay"].flatMap(Int64.init) {
                context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) {
                    self.upgrade(head, context: context)
                }
            } else {
                upgrade(head, context: context)
            }
        case "/headers":
            let lines = head.headers.map { "\($0.name.lowercased()): \($0.value)\n" }.joined()
            respond(.ok, lines, context: context)
        case "/page":
            // A page with the new-version script, its tag's attributes given as `tag`, and a record of what the
            // page heard: loads (kept across reloads), the `slipway:new-version` events, cancelled when the
            // query says `prevent`, and a hidden tab when `sessionStorage.hidden` is set.
            let attributes = query["tag"].flatMap { $0.removingPercentEncoding } ?? ""
            let page = """
                <!doctype html><html><head><meta charset="utf-8"><title>\(name)</title><script>
                window.heard = []; sessionStorage.loads = (+sessionStorage.loads || 0) + 1;
                if (sessionStorage.hidden) Object.defineProperty(document, "visibilityState", {
                  configurable: true, get: function () { return "hidden"; } });
                addEventListener("slipway:new-version", function (event) {
                  heard.push(event.detail.version); if (/prevent/.test(location.search)) event.preventDefault(); });
                </script><script src="/_slipway/client.js" defer \(attributes)></script></head>
                <body><p id="page">\(name)</p></body></html>
                """
            respond(.ok, page, contentType: "text/html; charset=utf-8", context: context)
        case "/echo-body":
            respond(.ok, String(buffer: body), context: context)
        case "/status":
            let code = Int(query["code"] ?? "500") ?? 500
            respond(HTTPResponseStatus(statusCode: code), name, context: context)
        case "/health":
            respond(.ok, "ok \(name)", context: context)
        case "/large":
            largeRemaining = (Int(query["mb"] ?? "1") ?? 1) * 1024 * 1024
            context.write(
                wrapOutboundOut(
                    .head(
                        HTTPResponseHead(
                            version: .http1_1,
                            status: .ok,
                            headers: [
                                "Content-Length": "\(largeRemaining)", "X-Backend": name,
                            ]
                        )
                    )
                ),
                promise: nil
            )
            pumpLarge(context: context)
        case "/until-close":
            // An HTTP/1.0-style answer: no length, the body ends when the app closes the connection.
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_0, status: .ok))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "abc")))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "def")))), promise: nil)
            context.close(promise: nil)
        case "/not-http":
            // Bytes that are no HTTP answer, written below the response encoder.
            let raw = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self)
            raw?.writeAndFlush(NIOAny(ByteBuffer(string: "SSH-2.0-OpenSSH_9.2\r\n\r\n")), promise: nil)
        case "/hang":
            break  // never answers
        case "/drop-second":
            // Like an app whose keep-alive timer fired just as the proxy sent a second request.
            if requestsOnConnection >= 2 {
                context.close(promise: nil)
            } else {
                respond(.ok, name, context: context)
            }
        case "/die-\(name)":
            // Like an instance killed while it worked on this request: the connection ends with no answer.
            context.close(promise: nil)
        default:
            respond(.ok, name, context: context)
        }
    }

    /// Writes `/large` only while the socket takes it, like a well-behaved app server.
    private func pumpLarge(context: ChannelHandlerContext) {
        let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
        while largeRemaining > 0 && context.channel.isWritable {
            let part = chunk.getSlice(at: 0, length: min(chunk.readableBytes, largeRemaining))!
            largeRemaining -= part.readableBytes
            state.bytesStreamed.withLock { $0 += part.readableBytes }
            context.write(wrapOutboundOut(.body(.byteBuffer(part))), promise: nil)
            if largeRemaining == 0 { context.write(wrapOutboundOut(.end(nil)), promise: nil) }
        }
        context.flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && largeRemaining > 0 { pumpLarge(context: context) }
        context.fireChannelWritabilityChanged()
    }

    private func respond(
        _ status: HTTPResponseStatus,
        _ text: String,
        contentType: String = "text/plain",
        context: ChannelHandlerContext
    ) {
        let headers: HTTPHeaders = [
            "Content-Length": "\(text.utf8.count)", "Content-Type": contentType, "X-Backend": name,
        ]
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
            promise: nil
        )
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    /// Answers 101, then echoes raw bytes. A greeting goes out in the same flush as the 101, so the proxy
    /// must keep bytes its response decoder had already buffered.
    private func upgrade(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard head.headers["upgrade"].first?.lowercased() == "websocket" else {
            respond(.badRequest, "not an upgrade", context: context)
            return
        }
        let headers: HTTPHeaders = ["Upgrade": "websocket", "Connection": "Upgrade", "X-Backend": name]
        context.write(
            wrapOutboundOut(
                .head(
                    HTTPResponseHead(
                        version: .http1_1,
                        status: .switchingProtocols,
                        headers: headers
                    )
                )
            ),
            promise: nil
        )
        do {
            let pipeline = context.pipeline.syncOperations
            try pipeline.addHandler(EchoHandler(state: state))
            pipeline.removeHandler(try pipeline.handler(type: HTTPResponseEncoder.self), promise: nil)
            pipeline.removeHandler(
                try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self),
                promise: nil
            )
            pipeline.removeHandler(context: context, promise: nil)
            let greeting = Array("hello from \(name)\n".utf8)
            context.channel.writeAndFlush(ByteBuffer(bytes: [0x81, UInt8(greeting.count)] + greeting), promise: nil)
        } catch {
            context.close(promise: nil)
        }
    }
}

private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let state: TestBackend.Shared

    init(state: TestBackend.Shared) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if unwrapInboundIn(data).readableBytesView.first == 0x88 { state.closeFramesReceived.withLock { $0 += 1 } }
        context.writeAndFlush(data, promise: nil)
    }
}
