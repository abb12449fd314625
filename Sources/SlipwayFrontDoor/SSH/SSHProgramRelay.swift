// SSHProgramRelay: one program run for an SSH session (git-receive-pack, git-upload-pack). Owns the
// child process and its three pipes: the session's data goes to the program's stdin, its stdout and
// stderr come back as channel data and extended data. Each side reads only while the other can
// take more, so a large push or clone streams through without piling up in memory.
import NIOCore
import NIOPosix
import NIOSSH
import SlipwayBasics

#if canImport(Glibc)
import Glibc
#endif

/// Lives on the session's event loop, as do its pipe channels.
final class SSHProgramRelay {
    /// How long a program gets between SIGTERM and SIGKILL when its session goes away.
    static let stopGrace: Duration = .seconds(5)

    private let child: ChildProcess
    private let sessions: SSHSessions
    private let eventLoop: any EventLoop
    private weak var session: SSHSessionHandler?
    /// Our ends of the program's stdin, stdout and stderr until `start` hands them to pipe channels.
    private let descriptors: (stdin: Int32, stdout: Int32, stderr: Int32)
    private var stdin: (any Channel)?
    private var lastInput: EventLoopFuture<Void>?
    private var outputs: [any Channel] = []
    private var readers: [ProgramOutputHandler] = []
    private var openOutputs = 2
    private var exitStatus: ExitStatus?
    private var reported = false

    /// Spawns `command` on three fresh pipes.
    init(
        _ command: Command,
        session: SSHSessionHandler,
        sessions: SSHSessions,
        eventLoop: any EventLoop
    ) throws {
        var pipes: [(read: Int32, write: Int32)] = []
        do {
            for _ in 0..<3 { pipes.append(try Spawner.pipe(for: command)) }
            child = try Spawner.spawn(command, stdin: pipes[0].read, stdout: pipes[1].write, stderr: pipes[2].write)
        } catch {
            for ends in pipes {
                Glibc.close(ends.read)
                Glibc.close(ends.write)
            }
            throw error
        }
        // Our copies of the child's ends would keep stdout and stderr from ever reaching end-of-file.
        Glibc.close(pipes[0].read)
        Glibc.close(pipes[1].write)
        Glibc.close(pipes[2].write)
        self.descriptors = (pipes[0].write, pipes[1].read, pipes[2].read)
        self.session = session
        self.sessions = sessions
        self.eventLoop = eventLoop
    }

    /// Starts relaying: the session hears `programStarted` once the pipes are wired (at once, on its own event
    /// loop, which is why this is not part of `init`), then `programFinished` once stdout and stderr have ended
    /// and the program has exited.
    func start() {
        watchExit()
        connect()
    }

    private func watchExit() {
        guard sessions.admit(child) else {
            terminate()
            return
        }
        let child = child
        let eventLoop = eventLoop
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        Task {
            let status = await child.waitForExit()
            eventLoop.execute { this.value.childExited(status) }
        }
    }

    private func connect() {
        let (eventLoop, this) = (eventLoop, NIOLoopBound(self, eventLoop: eventLoop))
        // The pipe channels share the session's event loop, so handlers may call into the relay directly.
        func bootstrap(_ makeHandler: @escaping @Sendable () -> any ChannelHandler) -> NIOPipeBootstrap {
            NIOPipeBootstrap(group: eventLoop).channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(makeHandler()) }
            }
        }
        let input = bootstrap { ProgramInputHandler(relay: this.value) }
            .takingOwnershipOfDescriptor(output: descriptors.stdin)
        let output = bootstrap { this.value.reader(for: .channel) }
            .takingOwnershipOfDescriptor(input: descriptors.stdout)
        let errors = bootstrap { this.value.reader(for: .stdErr) }
            .takingOwnershipOfDescriptor(input: descriptors.stderr)
        // A failed future may mean the channel already took and closed the descriptor, so none is closed again
        // here; the program is stopped instead, which ends its side of every pipe.
        input.and(output).and(errors).whenComplete { result in
            let relay = this.value
            switch result {
            case .success(let ((input, output), errors)):
                relay.stdin = input
                relay.outputs = [output, errors]
                relay.session?.programStarted()
            case .failure(let error):
                relay.terminate()
                relay.session?.programFailed(error)
            }
        }
    }

    private func reader(for type: SSHChannelData.DataType) -> ProgramOutputHandler {
        let reader = ProgramOutputHandler(relay: self, type: type)
        readers.append(reader)
        return reader
    }

    // MARK: Called by the session

    /// Whether the session may read more of the client's data: the program takes it, or it is gone and it is dropped.
    var acceptsInput: Bool { stdin.map { !$0.isActive || $0.isWritable } ?? true }

    func write(_ bytes: ByteBuffer) {
        guard let stdin else { return }
        let written = stdin.eventLoop.makePromise(of: Void.self)
        stdin.writeAndFlush(bytes, promise: written)
        lastInput = written.futureResult
    }

    /// The client's EOF: the program's stdin ends once what was written before has gone through. (An output-only
    /// pipe channel counts its input as shut, so even `close(mode: .output)` closes fully and drops queued writes.)
    func closeInput() {
        guard let stdin else { return }
        (lastInput ?? stdin.eventLoop.makeSucceededVoidFuture()).whenComplete { _ in stdin.close(promise: nil) }
    }

    func sessionBecameWritable() {
        for reader in readers { reader.resumeReading() }
    }

    /// Closes the pipes and, if the program still runs, stops its whole process group.
    func terminate() {
        for channel in outputs + [stdin].compactMap({ $0 }) { channel.close(promise: nil) }
        readers = []
        guard exitStatus == nil else { return }
        let child = child
        let sessions = sessions
        Task {
            _ = await child.stop(grace: SSHProgramRelay.stopGrace)
            sessions.remove(child)
        }
    }

    // MARK: Called by the pipe handlers

    fileprivate var sessionIsWritable: Bool { session?.isWritable ?? false }

    fileprivate func output(_ bytes: ByteBuffer, type: SSHChannelData.DataType) {
        session?.writeOutput(bytes, type: type)
    }

    fileprivate func outputEnded() {
        openOutputs -= 1
        reportIfDone()
    }

    fileprivate func inputWritabilityChanged() {
        session?.resumeReading()
    }

    private func childExited(_ status: ExitStatus) {
        exitStatus = status
        sessions.remove(child)
        reportIfDone()
    }

    private func reportIfDone() {
        guard !reported, openOutputs == 0, let exitStatus else { return }
        reported = true
        session?.programFinished(status: exitStatus.shellCode)
    }
}

/// Reads one of the program's output pipes into the session, and only while the session can send more.
private final class ProgramOutputHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer

    private weak var relay: SSHProgramRelay?
    private let type: SSHChannelData.DataType
    private var context: ChannelHandlerContext?
    private var readHeld = false

    init(relay: SSHProgramRelay, type: SSHChannelData.DataType) {
        self.relay = relay
        self.type = type
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        relay?.output(unwrapInboundIn(data), type: type)
    }

    func read(context: ChannelHandlerContext) {
        if relay?.sessionIsWritable ?? true {
            context.read()
        } else {
            readHeld = true
        }
    }

    func resumeReading() {
        guard readHeld, let context else { return }
        readHeld = false
        context.read()
    }

    // An input-only pipe channel closes itself at end-of-file (or on a read error).
    func channelInactive(context: ChannelHandlerContext) {
        relay?.outputEnded()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Reports the program's stdin writability to the session, which reads the client's data accordingly.
private final class ProgramInputHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private weak var relay: SSHProgramRelay?

    init(relay: SSHProgramRelay) { self.relay = relay }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        relay?.inputWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        relay?.inputWritabilityChanged()
        context.fireChannelInactive()
    }

    // A program that exits without reading all its input makes writes fail (EPIPE); the pipe closes and the rest
    // of the client's data is dropped.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
