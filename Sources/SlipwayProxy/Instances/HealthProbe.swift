// HealthProbe: one HTTP GET against a freshly booted instance, for the deployer's health checks,
// and the rule that decides whether its answer counts as healthy.
import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP GET against an instance, for the deployer's health checks (fresh connection, `Connection: close`), or
/// only a TCP connection (Dokku's `listening` check).
public enum HealthProbe {
    /// Whether the instance's port accepts a TCP connection within `timeout`.
    public static func connect(
        _ upstream: Upstream,
        timeout: Duration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async -> ProbeResult {
        let port = "TCP connect to port \(upstream.port)"
        do {
            let channel = try await ClientBootstrap(group: group).connectTimeout(TimeAmount(timeout))
                .connect(host: upstream.host, port: upstream.port).get()
            try? await channel.close()
            return ProbeResult(path: port, status: nil, body: "", failure: nil, connectOnly: true)
        } catch ChannelError.connectTimeout {
            return ProbeResult(
                path: port,
                status: nil,
                body: "",
                failure: "timed out after \(FailureReason.describe(timeout))",
                connectOnly: true
            )
        } catch {
            return ProbeResult(
                path: port,
                status: nil,
                body: "",
                failure: FailureReason.describe(error),
                connectOnly: true
            )
        }
    }

    /// The probe keeps this much of the body, enough for a content check.
    static let bodyLimit = 4096

    public static func get(
        _ upstream: Upstream,
        path: String,
        host: String,
        timeout: Duration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async -> ProbeResult {
        let loop = group.next()
        let answer = loop.makePromise(of: ProbeResult.Answer.self)
        let timedOut = "timed out after \(FailureReason.describe(timeout))"
        // One deadline for connect and answer together: the caller's startup budget is counted in wall time.
        let deadline = loop.scheduleTask(in: TimeAmount(timeout)) {
            answer.succeed(.failure(timedOut))
        }
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(TimeAmount(timeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ProbeHandler(answer: answer))
                }
            }
        let connecting: EventLoopFuture<any Channel>
        if let address = try? SocketAddress(ipAddress: upstream.host, port: upstream.port) {
            connecting = bootstrap.connect(to: address)
        } else {
            connecting = bootstrap.connect(host: upstream.host, port: upstream.port)
        }
        connecting.whenComplete { result in
            switch result {
            case .success(let channel):
                let head = HTTPRequestHead(
                    version: .http1_1,
                    method: .GET,
                    uri: path,
                    headers: ["Host": host, "Connection": "close", "User-Agent": "slipway-health-check"]
                )
                channel.write(HTTPClientRequestPart.head(head), promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                answer.futureResult.whenComplete { _ in channel.close(promise: nil) }
            case .failure(let error):
                if case ChannelError.connectTimeout = error {
                    answer.succeed(.failure(timedOut))
                } else {
                    answer.succeed(.failure(FailureReason.describe(error)))
                }
            }
        }
        // Every path succeeds the promise (an answer, a failure, or the deadline), so this does not throw.
        let result = (try? await answer.futureResult.get()) ?? .failure(timedOut)
        deadline.cancel()
        switch result {
        case .answered(let status, let body):
            return ProbeResult(path: path, status: status, body: body, failure: nil)
        case .failure(let reason):
            return ProbeResult(path: path, status: nil, body: "", failure: reason)
        }
    }
}

/// What one health check GET (or TCP connection) saw.
public struct ProbeResult: Sendable, Equatable, CustomStringConvertible {
    /// The path asked for; for a TCP connection, what was tried.
    public var path: String
    public var status: Int?
    /// The first 4 KiB of the body, UTF-8 lossy.
    public var body: String
    /// Why no answer came: "connection refused", "timed out after 2s", ...
    public var failure: String?
    /// Only a TCP connection was made (Dokku's `listening` check).
    public var connectOnly: Bool

    public init(path: String, status: Int?, body: String, failure: String?, connectOnly: Bool = false) {
        self.path = path
        self.status = status
        self.body = body
        self.failure = failure
        self.connectOnly = connectOnly
    }

    /// Nothing listens on the instance's port (yet).
    public var isRefused: Bool { failure == FailureReason.refused }

    /// Dokku's rule: a status 200-399, and the body contains `content` when given; a connection that was made,
    /// for a TCP check. `upgradeRequiredPasses`: a 426 counts too (the default check).
    public func passes(content: String?, upgradeRequiredPasses: Bool = false) -> Bool {
        guard failure == nil else { return false }
        if connectOnly { return true }
        guard let status, (200..<400).contains(status) || (upgradeRequiredPasses && status == 426) else {
            return false
        }
        guard let content, !content.isEmpty else { return true }
        return body.contains(content)
    }

    /// `GET / answered 500`, `GET /health: connection refused`, or `TCP connect to port 5000: connection refused`.
    public var description: String {
        if connectOnly { return path + ": " + (failure ?? "accepted") }
        if let failure { return "GET \(path): \(failure)" }
        return "GET \(path) answered \(status.map(String.init) ?? "nothing")"
    }

    enum Answer: Sendable {
        case answered(status: Int, body: String)
        case failure(String)
    }
}

/// Collects the status and the first bytes of the body, then completes the probe.
private final class ProbeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let answer: EventLoopPromise<ProbeResult.Answer>
    private var status: Int?
    private var body: ByteBuffer?

    init(answer: EventLoopPromise<ProbeResult.Answer>) {
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            body = context.channel.allocator.buffer(capacity: 0)
        case .body(var part):
            let room = HealthProbe.bodyLimit - (body?.readableBytes ?? 0)
            if room > 0, let slice = part.readSlice(length: min(room, part.readableBytes)) {
                body?.writeImmutableBuffer(slice)
            }
        case .end:
            complete()
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        complete()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if status == nil { answer.succeed(.failure(FailureReason.describe(error))) }
        context.close(promise: nil)
    }

    /// Later completions of the same promise are ignored by NIO; the first outcome wins.
    private func complete() {
        if let status {
            let text = body.map { String(decoding: $0.readableBytesView, as: UTF8.self) } ?? ""
            answer.succeed(.answered(status: status, body: text))
        } else {
            answer.succeed(.failure("the connection closed before an answer"))
        }
    }
}
