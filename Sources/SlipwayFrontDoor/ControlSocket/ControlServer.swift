// ControlServer: the daemon's side of the control socket (a Unix socket, mode 0600). Each
// connection carries one request; its output streams back as it is produced.
import Foundation
import Logging
import NIOCore
import NIOPosix
import SlipwayBasics

public final class ControlServer: Sendable {
    private let path: String
    private let dispatcher: CommandDispatcher
    private let logger: Logger

    public init(path: String, dispatcher: CommandDispatcher, logger: Logger) {
        self.path = path
        self.dispatcher = dispatcher
        self.logger = logger
    }

    /// Serves until the task is cancelled.
    public func run() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        // Only the daemon's own user may send it commands.
        chmod(path, 0o600)
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
                var line = [UInt8]()
                for try await buffer in inbound {
                    line.append(contentsOf: buffer.readableBytesView)
                    if line.contains(UInt8(ascii: "\n")) { break }
                }
                guard let newline = line.firstIndex(of: UInt8(ascii: "\n")) else { return }
                let output = CommandOutput(outbound)
                do {
                    let request = try Wire.decode(ControlRequest.self, from: line[..<newline])
                    await output.finish(await dispatcher.handle(request, output: output))
                } catch {
                    output.error("slipway: malformed request on the control socket; use the slipway command")
                    await output.finish(2)
                }
            }
        } catch {
            logger.debug("control connection ended", metadata: ["error": "\(error)"])
        }
    }
}

/// What a command prints, sent to the client in order as it is produced. A client that went
/// away is ignored, never fatal.
public final class CommandOutput: Sendable {
    private let replies: AsyncStream<ControlReply>.Continuation
    private let sender: Task<Void, Never>

    init(_ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        let (stream, continuation) = AsyncStream.makeStream(of: ControlReply.self)
        replies = continuation
        sender = Task {
            for await reply in stream {
                try? await outbound.write(ByteBuffer(bytes: Wire.encode(reply)))
            }
        }
    }

    /// A line on the client's stdout.
    public func print(_ line: String) { replies.yield(.stdout(line + "\n")) }

    /// A line on the client's stderr.
    public func error(_ line: String) { replies.yield(.stderr(line + "\n")) }

    func finish(_ status: Int32) async {
        replies.yield(.exit(status))
        replies.finish()
        await sender.value
    }
}
