// ProxyHarness: a ProxyServer on 127.0.0.1:0 with its Router, plus the backends and clients a test
// starts through it, all stopped when the test's body returns or throws.
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

@testable import SlipwayProxy

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

final class ProxyHarness: Sendable {
    let router: Router
    let server: ProxyServer
    let port: Int
    private let backends = Mutex<[TestBackend]>([])
    private let clients = Mutex<[TestClient]>([])
    private let rawClients = Mutex<[RawClient]>([])

    static let quietLogger = Logger(label: "slipway.proxy.test") { _ in SwiftLogNoOpLogHandler() }

    private init(router: Router, server: ProxyServer, port: Int) {
        self.router = router
        self.server = server
        self.port = port
    }

    /// Runs `body` against a fresh proxy and stops everything it started, whatever happens.
    static func with(
        limits: ClientLimits = ClientLimits(),
        noticeSettings: ReleaseNoticeSettings = ReleaseNoticeSettings(),
        trustedProxies: TrustedProxies = .none,
        _ body: (ProxyHarness) async throws -> Void
    ) async throws {
        let router = Router()
        let server = ProxyServer(
            router: router,
            logger: quietLogger,
            group: TestLoops.group,
            limits: limits,
            noticeSettings: noticeSettings,
            trustedProxies: trustedProxies
        )
        let port = try await server.start(host: "127.0.0.1", port: 0)
        let harness = ProxyHarness(router: router, server: server, port: port)
        do {
            try await body(harness)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    func backend(_ name: String) async throws -> TestBackend {
        let backend = try await TestBackend.start(name: name)
        backends.withLock { $0.append(backend) }
        return backend
    }

    func client() async throws -> TestClient {
        let client = try await TestClient.connect(port: port)
        clients.withLock { $0.append(client) }
        return client
    }

    func rawClient(reading: Bool = true) async throws -> RawClient {
        let client = try await RawClient.connect(port: port, reading: reading)
        rawClients.withLock { $0.append(client) }
        return client
    }

    /// Routes `host` to `app` and makes a set of `backends` live as release `release`; returns the set replaced.
    @discardableResult
    func deploy(_ app: String, host: String, release: Int, to backends: [TestBackend]) -> UpstreamSet? {
        router.setHosts([host], for: app)
        return router.activate(makeSet(app, release: release, backends.map(\.upstream)), for: app)
    }

    func makeSet(_ app: String, release: Int, _ upstreams: [Upstream]) -> UpstreamSet {
        UpstreamSet(
            release: ReleaseStamp(
                app: app,
                release: release,
                commit: "c0ffee\(release)",
                deployedAt: Date(timeIntervalSince1970: 1_700_000_000 + Double(release))
            ),
            upstreams: upstreams
        )
    }

    func stop() async {
        for client in clients.withLock({ $0 }) { await client.close() }
        for client in rawClients.withLock({ $0 }) { await client.close() }
        await server.stop(finishingWithin: .zero)
        for backend in backends.withLock({ $0 }) { await backend.stop() }
    }
}

/// The proxy tests' own event loops: other test targets in the same process share the singleton group,
/// and a test there that blocks a loop must not stall these servers' timers.
enum TestLoops {
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
}

/// A loopback port bound but never listening: connecting to it is refused, and while this object lives no other
/// socket can take the port (a closed listener's port could be bound again by a test running in parallel).
final class RefusingPort: Sendable {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(descriptor, address, length) == 0 && getsockname(descriptor, address, &length) == 0
            }
        }
        guard descriptor >= 0, bound else { throw CouldNotReservePort() }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    var upstream: Upstream { Upstream(host: "127.0.0.1", port: port) }

    deinit { close(descriptor) }

    struct CouldNotReservePort: Error {}
}
