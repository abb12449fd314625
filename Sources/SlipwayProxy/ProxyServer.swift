// ProxyServer: the HTTP and HTTPS listeners in front of every app. It owns the listening sockets; each accepted
// connection gets the pipeline ClientPipelines makes: HTTP/1.1, or over TLS, HTTP/1.1 or HTTP/2.
import Logging
import NIOCore
import NIOExtras
import NIOPosix
import NIOSSL
import SlipwayTLS
import Synchronization

/// The HTTP listener.
public final class ProxyServer: Sendable {
    private let router: Router
    private let logger: Logger
    private let group: any EventLoopGroup
    private let limits: ClientLimits
    private let noticeSettings: ReleaseNoticeSettings
    private let trustedProxies: TrustedProxies
    /// Each listening socket, with the helper that tells its connections the daemon is stopping (HTTP/2 ones send
    /// GOAWAY): a helper collects one listener's connections.
    private let listeners = Mutex<[(channel: any Channel, quiescing: ServerQuiescingHelper)]>([])
    private let sendBatches = SendBatch.PerLoop()
    private let pools = UpstreamPool.PerLoop()

    public init(
        router: Router,
        logger: Logger,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        limits: ClientLimits = ClientLimits(),
        noticeSettings: ReleaseNoticeSettings = ReleaseNoticeSettings(),
        trustedProxies: TrustedProxies = .none
    ) {
        self.trustedProxies = trustedProxies
        self.router = router
        self.logger = logger
        self.group = group
        self.limits = limits
        self.noticeSettings = noticeSettings
    }

    /// Binds and starts serving, over TLS with the certificates `tls` serves when given; returns the bound port (port
    /// 0 picks one).
    public func start(host: String, port: Int, tls: ServedCertificates? = nil) async throws -> Int {
        let logger = self.logger
        let pipelines = ClientPipelines(
            router: router,
            noticeSettings: noticeSettings,
            limits: limits,
            trustedProxies: trustedProxies,
            sendBatches: sendBatches,
            pools: pools,
            logger: logger
        )
        let quiescing = ServerQuiescingHelper(group: group)
        let connections = ConnectionLimit(limits: limits, logger: logger)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 512)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        AcceptFailureLog(logger: logger), quiescing.makeServerChannelHandler(channel: channel),
                    ])
                }
            }
            // TCP level: `.socketOption(.tcp_nodelay)` is SOL_SOCKET's SO_DEBUG, refused to users without
            // CAP_NET_ADMIN, which closed every accepted connection of a daemon not run as root.
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard try connections.admit(channel, overTLS: tls != nil) else { return }
                    if let tls {
                        try pipelines.tls(channel, certificates: tls)
                    } else {
                        try pipelines.plain(channel)
                    }
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            throw ProxyError.cannotListen(host: host, port: port, reason: FailureReason.describe(error))
        }
        listeners.withLock { $0.append((channel, quiescing)) }
        let bound = channel.localAddress?.port ?? port
        logger.info(
            "proxy listening",
            metadata: ["proxy.address": "\(host):\(bound)", "proxy.scheme": "\(tls == nil ? "http" : "https")"]
        )
        return bound
    }

    /// Stops accepting and closes the listener; event streams and long polls end. Requests in flight get up to
    /// `timeout` to finish (see `Router.finishInFlight`). Every connection is told: an idle one closes, a busy one
    /// after its answer, an HTTP/2 one after GOAWAY and its open streams; they get a moment more to close.
    public func stop(finishingWithin timeout: Duration) async {
        router.endWatches()
        let stopping = listeners.withLock { listeners in
            defer { listeners = [] }
            return listeners
        }
        let quiesced = stopping.map { listener in
            let promise = group.any().makePromise(of: Void.self)
            listener.quiescing.initiateShutdown(promise: promise)
            return promise.futureResult
        }
        for listener in stopping { try? await listener.channel.close() }
        await router.finishInFlight(within: timeout)
        await Self.wait(for: EventLoopFuture.andAllComplete(quiesced, on: group.any()), atMost: .seconds(2))
    }

    /// Waits until `future` completes or `limit` passes, whichever comes first.
    private static func wait(for future: EventLoopFuture<Void>, atMost limit: Duration) async {
        let resumed = Mutex(false)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resume: @Sendable () -> Void = {
                if resumed.withLock({ done in
                    defer { done = true }
                    return !done
                }) {
                    continuation.resume()
                }
            }
            future.whenComplete { _ in resume() }
            future.eventLoop.scheduleTask(in: TimeAmount(limit)) { resume() }
        }
    }
}

/// What can go wrong when the proxy or the static site server starts.
public enum ProxyError: Error, CustomStringConvertible, Equatable {
    case cannotListen(host: String, port: Int, reason: String)
    case staticRootMissing(path: String)
    case staticRootOutsideApp(path: String, resolved: String)

    public var description: String {
        switch self {
        case .cannotListen(let host, let port, let reason):
            "cannot listen on \(host):\(port) (\(reason)): stop whatever uses that port or choose another with --http HOST:PORT"
        case .staticRootMissing(let path):
            "The static site folder \(path) does not exist: check that the build wrote it."
        case .staticRootOutsideApp(let path, let resolved):
            "The static site folder \(path) leads to \(resolved), outside the app: make \"root\" in static.json a "
                + "folder of the app, not a symbolic link out of it."
        }
    }
}
