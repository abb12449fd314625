// Test clients: a keep-alive HTTP/1.1 client (one request at a time, answers in full) and a raw TCP
// client for what HTTP clients hide: streamed parts as they arrive, WebSocket bytes, closes.
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

struct TestResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: String

    func header(_ name: String) -> String? { headers.first(name: name) }
}

struct ConnectionClosed: Error {}

/// A keep-alive HTTP/1.1 client on one connection: every request reuses it.
final class TestClient: Sendable {
    private let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    static func connect(port: Int) async throws -> TestClient {
        let channel = try await ClientBootstrap(group: TestLoops.group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector())
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        return TestClient(channel: channel)
    }

    func get(_ path: String, host: String, headers: HTTPHeaders = [:]) async throws -> TestResponse {
        try await send(method: .GET, path, host: host, headers: headers)
    }

    func send(
        method: HTTPMethod,
        _ path: String,
        host: String,
        headers: HTTPHeaders = [:],
        body: String? = nil
    ) async throws -> TestResponse {
        var headers = headers
        headers.replaceOrAdd(name: "Host", value: host)
        if let body { headers.replaceOrAdd(name: "Content-Length", value: "\(body.utf8.count)") }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        let answer = channel.eventLoop.makePromise(of: TestResponse.self)
        let channel = self.channel
        channel.eventLoop.execute {
            do {
                try channel.pipeline.syncOperations.handler(type: ResponseCollector.self).expect(answer)
            } catch {
                answer.fail(error)
                return
            }
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            if let body {
                channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil)
            }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).cascadeFailure(to: answer)
        }
        return try await answer.futureResult.get()
    }

    var isOpen: Bool { channel.isActive }

    func close() async {
        try? await channel.close()
    }
}

private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private var waiting = CircularBuffer<EventLoopPromise<TestResponse>>()
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()

    func expect(_ answer: EventLoopPromise<TestResponse>) {
        waiting.append(answer)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var part):
            body.writeBuffer(&part)
        case .end:
            guard let head, let answer = waiting.popFirst() else { return }
            answer.succeed(
                TestResponse(status: Int(head.status.code), headers: head.headers, body: String(buffer: body))
            )
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        while let answer = waiting.popFirst() { answer.fail(ConnectionClosed()) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Raw bytes over TCP: what arrived so far, and whether the other side closed.
final class RawClient: Sendable {
    private let channel: any Channel
    private let received: Received

    final class Received: Sendable {
        let bytes = Mutex<[UInt8]>([])
        let closed = Mutex(false)
    }

    struct Timeout: Error, CustomStringConvertible {
        var waitingFor: String
        var received: String
        var description: String { "timed out waiting for \(waitingFor); received so far: \(received.debugDescription)" }
    }

    private init(channel: any Channel, received: Received) {
        self.channel = channel
        self.received = received
    }

    /// With `reading: false` the client never reads, like a browser on a stalled network.
    static func connect(port: Int, reading: Bool = true) async throws -> RawClient {
        let received = Received()
        let channel = try await ClientBootstrap(group: TestLoops.group)
            .channelOption(.autoRead, value: reading)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RawCollector(received: received))
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        return RawClient(channel: channel, received: received)
    }

    /// The client's own port, which the proxy sees as its peer's.
    var localPort: Int? { channel.localAddress?.port }

    func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text))
    }

    func send(bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    var bytes: [UInt8] { received.bytes.withLock { $0 } }
    var text: String { String(decoding: bytes, as: UTF8.self) }
    var isClosed: Bool { received.closed.withLock { $0 } }

    /// Waits until the bytes received so far contain `needle`, and returns them.
    @discardableResult
    func waitFor(_ needle: String, timeout: Duration = .seconds(5)) async throws -> String {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            let text = self.text
            if text.contains(needle) { return text }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw Timeout(waitingFor: needle.debugDescription, received: text)
    }

    func waitForClose(timeout: Duration = .seconds(5)) async throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            if isClosed { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw Timeout(waitingFor: "the connection to close", received: text)
    }

    func close() async {
        try? await channel.close()
    }
}

private final class RawCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let received: RawClient.Received

    init(received: RawClient.Received) {
        self.received = received
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        received.bytes.withLock { $0.append(contentsOf: buffer.readableBytesView) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        received.closed.withLock { $0 = true }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
