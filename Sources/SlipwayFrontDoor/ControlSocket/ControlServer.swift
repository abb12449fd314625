// ControlServer: the daemon's side of the control socket (a Unix socket, mode 0600). Each
// connection carries one request; its output streams back as it is produced. A command runs
// until it ends or its client goes away (`logs -f` ends that way).
import Foundation
import Logging
import NIOCore
import NIOPosix
import SlipwayBasics
import SlipwayDeployer
import Synchronization

public enum ControlServerError: UserFacingError {
    case cannotListen(String, String)

    public var description: String {
        switch self {
        case .cannotListen(let path, let reason):
            "cannot open the control socket \(path): \(reason); check the data directory's permissions"
        }
    }
}

public final class ControlServer: Sendable {
    private let path: String
    private let dispatcher: CommandDispatcher
    private let gate: AccessGate
    private let logger: Logger

    public init(path: String, dispatcher: CommandDispatcher, gate: AccessGate, logger: Logger) {
        self.path = path
        self.dispatcher = dispatcher
        self.gate = gate
        self.logger = logger
    }

    /// Serves until the task is cancelled.
    public func run() async throws {
        // Only the daemon's own user may send it commands: the socket is made 0600 under a temporary name and
        // only then renamed into place, so there is no moment when another user could connect.
        let unready = path + ".new"
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(unixDomainSocketPath: unready, cleanupExistingSocketFile: true) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        guard chmod(unready, 0o600) == 0, rename(unready, path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? await server.channel.close()
            throw ControlServerError.cannotListen(path, reason)
        }
        logger.info("control socket listening", metadata: ["socket.path": "\(path)"])
        try await withTaskCancellationHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        } onCancel: {
            server.channel.close(promise: nil)
        }
    }

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var lines = LineReader(inbound.makeAsyncIterator())
                guard let line = try await lines.next() else { return }
                let send: @Sendable (ControlReply) async -> Void = { reply in
                    try? await outbound.write(ByteBuffer(bytes: Wire.encode(reply)))
                }
                guard let request = try? Wire.decode(ControlRequest.self, from: line) else {
                    await send(.stderr("slipway: malformed request on the control socket; use the slipway command\n"))
                    await send(.exit(2))
                    return
                }
                let plan: SSHPlan
                // The CLI sends the stdin a command reads with its request; `ssh-command` is asked for it.
                var given: [UInt8]?
                switch request {
                case .command(let arguments, let input):
                    plan = await dispatcher.plan(arguments, caller: .local)
                    given = Array(input ?? Data())
                case .push(let app, let ref, let revision, let pusher),
                    .pushing(let app, let ref, _, let revision, let pusher):
                    let stage: PushStage
                    if case .pushing(_, _, let previous, _, _) = request {
                        stage = .receiving(previous: previous)
                    } else {
                        stage = .received
                    }
                    await runUntilClientLeaves(&lines, send: send) { output in
                        await self.dispatcher.receivePush(
                            app: app,
                            ref: ref,
                            revision: revision,
                            key: pusher,
                            stage: stage,
                            output: output
                        ) { reason in await send(.rejection(reason)) }
                    }
                    return
                case .ssh(let line, let name, let variables):
                    plan = await gate.plan(for: line, keyName: name, environment: variables)
                }
                switch plan {
                case .program(let command):
                    await send(.exec(command))
                case .refuse(let message, let status):
                    await send(.stderr(message + "\n"))
                    await send(.exit(status))
                case .inProcess(let readsInput, let run):
                    var sent = given ?? []
                    if readsInput && given == nil {
                        await send(.sendInput)
                        guard let line = try await lines.next(),
                            let reply = try? Wire.decode(ControlInput.self, from: line)
                        else { return }
                        sent = Array(reply.data)
                    }
                    let input = sent
                    await runUntilClientLeaves(&lines, send: send) { output in await run(input, output) }
                }
            }
        } catch {
            logger.debug("control connection ended", metadata: ["error": "\(error)"])
        }
    }

    /// Runs `work` with its output streamed to the client, then sends its exit status. If the
    /// client closes the connection first, `work` is cancelled.
    private func runUntilClientLeaves(
        _ lines: inout LineReader,
        send: @escaping @Sendable (ControlReply) async -> Void,
        _ work: @escaping @Sendable (SessionOutput) async -> Int32
    ) async {
        let output = SessionOutput { bytes, stream in
            let text = String(decoding: bytes, as: UTF8.self)
            await send(stream == .standardOutput ? .stdout(text) : .stderr(text))
        }
        let running = Task { await send(.exit(await work(output))) }
        // The client closes once it has read the exit status, or earlier if it gave up.
        while (try? await lines.next()) != nil {}
        running.cancel()
        await running.value
    }
}

/// Newline-separated lines from the inbound byte stream.
private struct LineReader {
    var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    var pending: [UInt8] = []

    init(_ iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) { self.iterator = iterator }

    /// The next line without its newline; nil when the client closed. Lines over 1 MiB end the connection.
    mutating func next() async throws -> [UInt8]? {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                defer { pending.removeSubrange(...newline) }
                return Array(pending[..<newline])
            }
            guard pending.count < 1 << 20, let buffer = try await iterator.next() else { return nil }
            pending.append(contentsOf: buffer.readableBytesView)
        }
    }
}

/// What a command prints, sent to its session in order as it is produced, without making the
/// command wait. A client that went away is ignored, never fatal. A client that reads more slowly than the
/// command prints (a build printing 300 MB to a `git push`) does not make the daemon hold it all: past
/// `maximumQueuedBytes` only the newest lines are held (`maximumHeldBytes` of them), and once the client has caught
/// up they follow a line saying how many were left out. The last lines, where a deploy's verdict is, always arrive.
public final class CommandOutput: Sendable {
    static let maximumQueuedBytes = 4 << 20
    static let maximumHeldBytes = 64 << 10

    private typealias Reply = (text: String, target: SessionOutput.Stream)

    private struct Queue {
        /// Handed to the sender and not written yet.
        var bytes = 0
        /// The newest lines, kept while the sender is too far behind.
        var held = NewestLines<Reply>(limit: CommandOutput.maximumHeldBytes) { $0.text.utf8.count }
    }

    /// Shared with the sender task, which takes off what it wrote and lets the held lines go.
    private final class Queued: Sendable {
        let queue = Mutex(Queue())
    }

    private let replies: AsyncStream<Reply>.Continuation
    private let sender: Task<Void, Never>
    private let queued = Queued()

    init(_ session: SessionOutput) {
        let (stream, continuation) = AsyncStream.makeStream(of: Reply.self)
        let queued = queued
        replies = continuation
        sender = Task {
            for await (text, target) in stream {
                await session.write(text, to: target)
                queued.queue.withLock { queue in
                    queue.bytes -= text.utf8.count
                    if queue.bytes <= Self.maximumQueuedBytes / 2 { Self.letGo(&queue, to: continuation) }
                }
            }
        }
    }

    /// A line on the client's stdout.
    public func print(_ line: String) { send(line + "\n", to: .standardOutput) }

    /// A line on the client's stderr.
    public func error(_ line: String) { send(line + "\n", to: .standardError) }

    private func send(_ text: String, to target: SessionOutput.Stream) {
        let size = text.utf8.count
        // Handed on under the lock, so that lines and the held ones keep their order.
        queued.queue.withLock { queue in
            // A line larger than the whole allowance still goes when nothing waits before it.
            if queue.held.isEmpty && (queue.bytes == 0 || queue.bytes + size <= Self.maximumQueuedBytes) {
                queue.bytes += size
                replies.yield((text, target))
            } else {
                queue.held.append((text, target))
            }
        }
    }

    /// Hands on the held lines, after a line saying how many were left out before them.
    private static func letGo(_ queue: inout Queue, to replies: AsyncStream<Reply>.Continuation) {
        guard !queue.held.isEmpty else { return }
        if queue.held.droppedLines > 0 {
            let note =
                "[… \(queue.held.droppedLines) lines left out here: they came faster than this connection took them]\n"
            queue.bytes += note.utf8.count
            replies.yield((note, .standardError))
        }
        for reply in queue.held.kept { replies.yield(reply) }
        queue.bytes += queue.held.bytes
        queue.held = Queue().held
    }

    /// Returns once everything printed so far has been handed on.
    func close() async {
        queued.queue.withLock { Self.letGo(&$0, to: replies) }
        replies.finish()
        await sender.value
    }
}
