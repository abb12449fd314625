// SSHServer: the embedded SSH listener. Owns the host key file, the TCP bootstrap, public-key
// authentication through the gate (one authenticator per connection, so each session knows its
// key), and shutdown: the listener closes, then every connection and every program it started.
import Crypto
import Logging
import NIOCore
import NIOPosix
import NIOSSH
import SlipwayBasics
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

public enum SSHServerError: UserFacingError {
    case couldNotReadHostKey(path: String, errno: Int32)
    case malformedHostKey(path: String)
    case couldNotSaveHostKey(path: String, errno: Int32)
    case couldNotListen(host: String, port: Int, reason: String)

    public var description: String {
        switch self {
        case .couldNotReadHostKey(let path, let code):
            "could not read the SSH host key \(path): \(String(cString: strerror(code))); check the data directory's permissions"
        case .malformedHostKey(let path):
            "the SSH host key \(path) is not a 32-byte Ed25519 seed; move it aside to have a new one made (clients will then see a changed host key)"
        case .couldNotSaveHostKey(let path, let code):
            "could not save the SSH host key to \(path): \(String(cString: strerror(code))); check the data directory's permissions"
        case .couldNotListen(let host, let port, let reason):
            "could not listen for SSH on \(host):\(port): \(reason); pass --ssh with another address or `off`"
        }
    }
}

/// How many sessions (commands, pushes, `logs -f`) one key, and one connection, may have open at once: one key
/// must not hold so many that everybody else's commands crawl.
public struct SSHLimits: Sendable, Equatable {
    public var sessionsPerKey: Int
    /// OpenSSH's MaxSessions.
    public var sessionsPerConnection: Int

    public init(sessionsPerKey: Int = 32, sessionsPerConnection: Int = 10) {
        self.sessionsPerKey = sessionsPerKey
        self.sessionsPerConnection = sessionsPerConnection
    }
}

public final class SSHServer: Sendable {
    private let host: String
    private let port: Int
    private let hostKey: NIOSSHPrivateKey
    private let gate: any SSHGate
    private let limits: SSHLimits
    private let logger: Logger

    /// Loads the host key from `hostKeyPath` (a raw 32-byte Ed25519 seed), or makes one on first start and saves
    /// it (mode 0600) with `<hostKeyPath>.pub` beside it, the public half as an OpenSSH line.
    public init(
        host: String,
        port: Int,
        hostKeyPath: String,
        gate: any SSHGate,
        limits: SSHLimits = SSHLimits(),
        logger: Logger
    ) throws {
        self.host = host
        self.port = port
        self.hostKey = NIOSSHPrivateKey(ed25519Key: try Self.loadOrCreateHostKey(at: hostKeyPath))
        self.gate = gate
        self.limits = limits
        self.logger = logger
    }

    /// `ssh-ed25519 AAAA…`, for clients' known_hosts.
    public var hostPublicKey: String { String(openSSHPublicKey: hostKey.publicKey) }

    /// Binds, reports the bound port (useful with port 0), and serves until the task is cancelled; then closes the
    /// listener, gives the commands and programs under way up to `timeout` to end (see `SSHSessions.finish`), and
    /// closes every connection and stops what is left before returning.
    public func run(
        finishingWithin timeout: Duration = .zero,
        onListening: @Sendable (Int) -> Void = { _ in }
    ) async throws {
        let sessions = SSHSessions(limits: limits)
        let (hostKey, gate, logger) = (self.hostKey, self.gate, self.logger)
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard sessions.admit(channel) else { return channel.close() }
                return channel.eventLoop.makeCompletedFuture {
                    try Self.configure(channel, hostKey: hostKey, gate: gate, sessions: sessions, logger: logger)
                }
            }
        let listener: any Channel
        do {
            listener = try await bootstrap.bind(host: host, port: port).get()
        } catch {
            throw SSHServerError.couldNotListen(host: host, port: port, reason: Self.reason(error))
        }
        let boundPort = listener.localAddress?.port ?? port
        logger.info("listening for SSH", metadata: ["address": "\(host):\(boundPort)"])
        onListening(boundPort)
        await withTaskCancellationHandler {
            try? await listener.closeFuture.get()
        } onCancel: {
            listener.close(promise: nil)
        }
        // This task is cancelled by now, and the wait must not be: it gets a task of its own.
        await Task { await sessions.finish(within: timeout) }.value
        logger.info("SSH server stopped")
    }

    /// Sets up one TCP connection: the SSH handler with its own authenticator, and session channels only.
    private static func configure(
        _ channel: any Channel,
        hostKey: NIOSSHPrivateKey,
        gate: any SSHGate,
        sessions: SSHSessions,
        logger: Logger
    ) throws {
        let authenticator = PublicKeyAuthenticator(gate: gate, eventLoop: channel.eventLoop)
        let configuration = SSHServerConfiguration(hostKeys: [hostKey], userAuthDelegate: authenticator)
        let openHere = NIOLoopBoundBox(0, eventLoop: channel.eventLoop)
        let ssh = NIOSSHHandler(role: .server(configuration), allocator: channel.allocator) { child, type in
            // Port forwarding and anything else but a session is refused; channels open only after authentication.
            guard case .session = type, let keyName = authenticator.keyName else {
                return child.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
            }
            // Over a limit the session still opens, so that its command is answered with a line saying why.
            let refusal = sessions.openSession(of: keyName, openOnConnection: openHere.value).map {
                "slipway: " + $0
            }
            if refusal == nil {
                openHere.value += 1
                child.closeFuture.whenComplete { _ in
                    openHere.value -= 1
                    sessions.closeSession(of: keyName)
                }
            }
            // Without remote half-closure the client's EOF (the end of a pushed pack) would close the channel.
            return child.setOption(ChannelOptions.allowRemoteHalfClosure, value: true).flatMapThrowing {
                let session = SSHSessionHandler(
                    keyName: keyName,
                    gate: gate,
                    sessions: sessions,
                    refusal: refusal,
                    eventLoop: child.eventLoop,
                    logger: logger
                )
                try child.pipeline.syncOperations.addHandler(session)
            }
        }
        try channel.pipeline.syncOperations.addHandlers(ssh, ConnectionErrorHandler(logger: logger))
        // A client that never authenticates does not keep its connection forever.
        let pending = NIOLoopBound(authenticator, eventLoop: channel.eventLoop)
        let timeout = channel.eventLoop.scheduleTask(in: .seconds(120)) {
            if pending.value.keyName == nil { channel.close(promise: nil) }
        }
        channel.closeFuture.whenComplete { _ in timeout.cancel() }
    }

    private static func reason(_ error: any Error) -> String {
        switch error {
        case let error as IOError: String(cString: strerror(error.errnoCode)).lowercased()
        case is SocketAddressError.UnknownHost, is SocketAddressError: "unknown host"
        default: "\(error)"
        }
    }

    private static func loadOrCreateHostKey(at path: String) throws -> Curve25519.Signing.PrivateKey {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            guard errno == ENOENT else { throw SSHServerError.couldNotReadHostKey(path: path, errno: errno) }
            return try createHostKey(at: path)
        }
        defer { Glibc.close(fd) }
        var seed = [UInt8](repeating: 0, count: 33)
        let count = seed.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count >= 0 else { throw SSHServerError.couldNotReadHostKey(path: path, errno: errno) }
        guard count == 32, let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed[..<32]) else {
            throw SSHServerError.malformedHostKey(path: path)
        }
        return key
    }

    private static func createHostKey(at path: String) throws -> Curve25519.Signing.PrivateKey {
        let key = Curve25519.Signing.PrivateKey()
        // O_EXCL: two servers starting at once must not overwrite each other's key.
        try write(Array(key.rawRepresentation), to: path, flags: O_EXCL, mode: 0o600)
        let publicLine = String(openSSHPublicKey: NIOSSHPrivateKey(ed25519Key: key).publicKey) + "\n"
        try write(Array(publicLine.utf8), to: path + ".pub", flags: O_TRUNC, mode: 0o600)
        return key
    }

    private static func write(_ bytes: [UInt8], to path: String, flags: Int32, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, mode)
        guard fd >= 0 else { throw SSHServerError.couldNotSaveHostKey(path: path, errno: errno) }
        defer { Glibc.close(fd) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw SSHServerError.couldNotSaveHostKey(path: path, errno: errno) }
    }
}

/// Accepts the keys the gate knows. One per connection, on its event loop; remembers the accepted key's name.
private final class PublicKeyAuthenticator: NIOSSHServerUserAuthenticationDelegate {
    private let gate: any SSHGate
    private let eventLoop: any EventLoop
    private(set) var keyName: String?

    init(gate: any SSHGate, eventLoop: any EventLoop) {
        self.gate = gate
        self.eventLoop = eventLoop
    }

    var supportedAuthenticationMethods: NIOSSHAvailableUserAuthenticationMethods { .publicKey }

    func requestReceived(
        request: NIOSSHUserAuthenticationRequest,
        responsePromise: EventLoopPromise<NIOSSHUserAuthenticationOutcome>
    ) {
        // NIOSSH passes on only requests whose signature it has verified; `none` and passwords are refused.
        guard case .publicKey(let offer) = request.request else {
            responsePromise.succeed(.failure)
            return
        }
        let (gate, user, publicKey) = (gate, request.username, String(openSSHPublicKey: offer.publicKey))
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.makeFutureWithTask { await gate.keyName(for: publicKey, user: user) }
            .map { name -> NIOSSHUserAuthenticationOutcome in
                guard let name else { return .failure }
                this.value.keyName = name
                return .success
            }
            .cascade(to: responsePromise)
    }
}

/// Closes a connection on its first error (a protocol violation, a reset); the sessions end with it.
private final class ConnectionErrorHandler: ChannelInboundHandler {
    typealias InboundIn = Any

    private let logger: Logger

    init(logger: Logger) { self.logger = logger }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("SSH connection failed", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}

/// The live connections and programs of one server, so that shutting down can end them all.
final class SSHSessions: Sendable {
    private struct State {
        var connections: [ObjectIdentifier: any Channel] = [:]
        var sessionsByKey: [String: Int] = [:]
        var programs: [pid_t: ChildProcess] = [:]
        /// In-process commands under way, by number; a task is filed once it exists.
        var commands: [Int: Task<Void, Never>?] = [:]
        var nextCommand = 0
        var ended = false
    }

    private let state = Mutex(State())
    private let limits: SSHLimits

    init(limits: SSHLimits) {
        self.limits = limits
    }

    /// Counts a new session of `key` unless a limit forbids it; then says why.
    func openSession(of key: String, openOnConnection: Int) -> String? {
        guard openOnConnection < limits.sessionsPerConnection else {
            return "this connection already has \(openOnConnection) sessions open, the most one may have; "
                + "end one, or open another connection"
        }
        return state.withLock { state in
            let open = state.sessionsByKey[key, default: 0]
            guard open < limits.sessionsPerKey else {
                return "key \"\(key)\" already has \(open) sessions open, the most one key may have; "
                    + "end some (a `logs -f`, say) and try again"
            }
            state.sessionsByKey[key] = open + 1
            return nil
        }
    }

    func closeSession(of key: String) {
        state.withLock { state in
            let open = state.sessionsByKey[key, default: 1] - 1
            state.sessionsByKey[key] = open > 0 ? open : nil
        }
    }

    /// Tracks `connection` until it closes; false once the server is shutting down.
    func admit(_ connection: any Channel) -> Bool {
        let id = ObjectIdentifier(connection)
        let admitted = state.withLock { state in
            if !state.ended { state.connections[id] = connection }
            return !state.ended
        }
        if admitted {
            connection.closeFuture.whenComplete { _ in
                _ = self.state.withLock { $0.connections.removeValue(forKey: id) }
            }
        }
        return admitted
    }

    /// Tracks `program` until `remove`; false once the server is shutting down.
    func admit(_ program: ChildProcess) -> Bool {
        state.withLock { state in
            if !state.ended { state.programs[program.pid] = program }
            return !state.ended
        }
    }

    func remove(_ program: ChildProcess) {
        _ = state.withLock { $0.programs.removeValue(forKey: program.pid) }
    }

    /// Runs an in-process command as a task a shutdown can cancel and wait for; nil once shutting down.
    func run(_ command: @escaping @Sendable () async -> Void) -> Task<Void, Never>? {
        let number: Int? = state.withLock { state in
            guard !state.ended else { return nil }
            state.nextCommand += 1
            state.commands[state.nextCommand] = .some(nil)
            return state.nextCommand
        }
        guard let number else { return nil }
        let task = Task {
            await command()
            _ = self.state.withLock { $0.commands.removeValue(forKey: number) }
        }
        let cancelled = state.withLock { state in
            if state.commands[number] != nil { state.commands[number] = task }
            return state.ended
        }
        if cancelled { task.cancel() }
        return task
    }

    /// A graceful end: no new connections, programs or commands; the commands under way are cancelled (a deploy
    /// tells its client it was interrupted); then up to `timeout` for them and the programs under way (a push)
    /// to end and their clients to read the last words and hang up. What is left then is ended by `endAll`.
    func finish(within timeout: Duration) async {
        let commands = state.withLock { state in
            state.ended = true
            return state.commands.values.compactMap { $0 }
        }
        for command in commands { command.cancel() }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline, state.withLock({ !$0.programs.isEmpty || !$0.commands.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        let readingDeadline = min(deadline, ContinuousClock.now + .seconds(1))
        while ContinuousClock.now < readingDeadline, state.withLock({ !$0.connections.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        await endAll()
    }

    /// Closes every connection, then stops every program that has not ended with its session.
    func endAll() async {
        let (connections, programs) = state.withLock { state in
            state.ended = true
            return (Array(state.connections.values), Array(state.programs.values))
        }
        for connection in connections {
            connection.close(promise: nil)
            try? await connection.closeFuture.get()
        }
        await withDiscardingTaskGroup { group in
            for program in programs {
                group.addTask { _ = await program.stop(grace: SSHProgramRelay.stopGrace) }
            }
        }
    }
}
