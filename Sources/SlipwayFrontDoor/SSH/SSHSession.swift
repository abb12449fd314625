// SSHSessionHandler: one SSH session channel, from its first request to its exit status. Owns the
// request handling (exec and GIT_PROTOCOL only), the client's data until the command is ready for
// it, pacing that data to the program, and the ending order OpenSSH needs: the last write done,
// then exit-status, then EOF, then close.
import Logging
import NIOCore
import NIOSSH
import SlipwayBasics

final class SSHSessionHandler: ChannelDuplexHandler {
    typealias InboundIn = SSHChannelData
    typealias OutboundIn = SSHChannelData
    typealias OutboundOut = SSHChannelData

    static let maximumCommandBytes = 8 * 1024

    private typealias Run = @Sendable (_ input: [UInt8], _ output: SessionOutput) async -> Int32

    private enum Phase {
        /// Before `exec`: `env` requests are taken.
        case idle
        /// The gate is planning, or the program's pipes are being wired: the client's data waits.
        case waiting
        /// Collecting stdin to its end for an in-process command.
        case readingInput(Run)
        case inProcess
        case program
        /// The exit status is on its way, or the channel is gone.
        case finished
    }

    private let keyName: String
    private let gate: any SSHGate
    private let sessions: SSHSessions
    /// Set when a limit forbids this session: its command gets this line instead.
    private let refusal: String?
    private let eventLoop: any EventLoop
    private var logger: Logger
    private var context: ChannelHandlerContext?
    private var phase = Phase.idle
    private var environment: [String: String] = [:]
    private var pendingInput: [ByteBuffer] = []
    private var input: [UInt8] = []
    private var peerSentEOF = false
    private var readHeld = false
    private var lastWrite: EventLoopFuture<Void>?
    private var relay: SSHProgramRelay?
    private var task: Task<Void, Never>?

    init(
        keyName: String,
        gate: any SSHGate,
        sessions: SSHSessions,
        refusal: String?,
        eventLoop: any EventLoop,
        logger: Logger
    ) {
        self.keyName = keyName
        self.gate = gate
        self.sessions = sessions
        self.refusal = refusal
        self.eventLoop = eventLoop
        self.logger = logger
        self.logger[metadataKey: "key"] = "\(keyName)"
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        // Extended data from the client has no meaning for a command.
        guard message.type == .channel, case .byteBuffer(let bytes) = message.data else { return }
        receive(bytes)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let request as SSHChannelRequestEvent.ExecRequest:
            exec(request.command, wantReply: request.wantReply)
        case let request as SSHChannelRequestEvent.EnvironmentRequest:
            // git sends GIT_PROTOCOL to ask for protocol v2; nothing else is passed on.
            guard case .idle = phase, request.name == "GIT_PROTOCOL" else {
                reply(false, wanted: request.wantReply)
                return
            }
            environment[request.name] = request.value
            reply(true, wanted: request.wantReply)
        case let request as SSHChannelRequestEvent.ShellRequest:
            reply(false, wanted: request.wantReply)
        case let request as SSHChannelRequestEvent.PseudoTerminalRequest:
            reply(false, wanted: request.wantReply)
        case let request as SSHChannelRequestEvent.SubsystemRequest:
            reply(false, wanted: request.wantReply)
        case ChannelEvent.inputClosed:
            peerSentEOF = true
            receiveEOF()
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { relay?.sessionBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    /// The client went away (or the session ended): whatever still runs for it is stopped.
    func channelInactive(context: ChannelHandlerContext) {
        phase = .finished
        task?.cancel()
        relay?.terminate()
        relay = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("SSH session failed", metadata: ["error": "\(error)"])
    }

    // MARK: Outbound: the client's data is read only as fast as the program takes it

    func read(context: ChannelHandlerContext) {
        if mayRead {
            context.read()
        } else {
            readHeld = true
        }
    }

    private var mayRead: Bool {
        switch phase {
        case .waiting: false
        case .program: relay?.acceptsInput ?? true
        case .idle, .readingInput, .inProcess, .finished: true
        }
    }

    /// Also called by the relay when the program's stdin can take more.
    func resumeReading() {
        guard readHeld, mayRead, let context else { return }
        readHeld = false
        context.read()
    }

    // MARK: The command

    private func exec(_ command: String, wantReply: Bool) {
        guard case .idle = phase else {
            reply(false, wanted: wantReply)
            return
        }
        reply(true, wanted: wantReply)
        if let refusal {
            refuse(refusal, status: 1)
            return
        }
        guard command.utf8.count <= Self.maximumCommandBytes else {
            refuse("command too long (over 8 KiB)", status: 1)
            return
        }
        logger.info("SSH exec", metadata: ["command": "\(command)"])
        phase = .waiting
        let gate = gate
        let keyName = keyName
        let environment = environment
        let eventLoop = eventLoop
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        task = Task {
            let plan = await gate.plan(for: command, keyName: keyName, environment: environment)
            eventLoop.execute { this.value.start(plan) }
        }
    }

    private func start(_ plan: SSHPlan) {
        guard case .waiting = phase else { return }
        switch plan {
        case .refuse(let message, let status):
            refuse(message, status: status)
        case .inProcess(readsInput: true, let run):
            phase = .readingInput(run)
            replayPendingInput()
        case .inProcess(readsInput: false, let run):
            // Not waiting for the client's EOF: `ssh host cmd` from a terminal never sends one.
            pendingInput = []
            runInProcess(run, input: [])
        case .program(let command):
            logger.debug("starting program", metadata: ["program": "\(command.displayLine)"])
            do {
                let relay = try SSHProgramRelay(command, session: self, sessions: sessions, eventLoop: eventLoop)
                self.relay = relay
                relay.start()
            } catch {
                refuse(error.userMessage, status: 127)
            }
        }
    }

    private func receive(_ bytes: ByteBuffer) {
        switch phase {
        case .waiting:
            pendingInput.append(bytes)
        case .readingInput:
            guard input.count + bytes.readableBytes <= maximumCommandInput else {
                refuse("input too long (over 64 KiB)", status: 1)
                return
            }
            input += bytes.readableBytesView
        case .program:
            relay?.write(bytes)
        case .idle, .inProcess, .finished:
            break
        }
    }

    private func receiveEOF() {
        switch phase {
        case .readingInput(let run): runInProcess(run, input: input)
        case .program: relay?.closeInput()
        // While waiting, `peerSentEOF` is replayed after the buffered data.
        case .idle, .waiting, .inProcess, .finished: break
        }
    }

    private func replayPendingInput() {
        let pending = pendingInput
        pendingInput = []
        for bytes in pending { receive(bytes) }
        if peerSentEOF { receiveEOF() }
        resumeReading()
    }

    private func runInProcess(_ run: @escaping Run, input: [UInt8]) {
        phase = .inProcess
        self.input = []
        let eventLoop = eventLoop
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        // Each write completes once NIOSSH has taken it, so all output precedes the exit status.
        let output = SessionOutput { bytes, stream in
            let type: SSHChannelData.DataType = stream == .standardOutput ? .channel : .stdErr
            try? await eventLoop.flatSubmit { this.value.writeOutput(ByteBuffer(bytes: bytes), type: type) }.get()
        }
        task = sessions.run {
            let status = await run(input, output)
            eventLoop.execute { this.value.finish(status) }
        }
        if task == nil { refuse("slipway: the server is shutting down; try again in a moment", status: 1) }
    }

    // MARK: Called by the program relay

    var isWritable: Bool { context?.channel.isWritable ?? false }

    @discardableResult
    func writeOutput(_ bytes: ByteBuffer, type: SSHChannelData.DataType) -> EventLoopFuture<Void> {
        guard let context else { return eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
        let promise = eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(SSHChannelData(type: type, data: .byteBuffer(bytes))), promise: promise)
        lastWrite = promise.futureResult
        return promise.futureResult
    }

    func programStarted() {
        guard case .waiting = phase else { return }
        phase = .program
        replayPendingInput()
    }

    func programFailed(_ error: any Error) {
        relay = nil
        refuse(error.userMessage, status: 127)
    }

    func programFinished(status: Int32) {
        relay?.terminate()
        relay = nil
        finish(status)
    }

    // MARK: Ending

    private func reply(_ success: Bool, wanted: Bool) {
        guard wanted, let context else { return }
        let event: Any = success ? ChannelSuccessEvent() : ChannelFailureEvent()
        context.triggerUserOutboundEvent(event, promise: nil)
    }

    /// `message` on stderr, then `status`.
    private func refuse(_ message: String, status: Int32) {
        writeOutput(ByteBuffer(string: message + "\n"), type: .stdErr)
        finish(status)
    }

    private func finish(_ status: Int32) {
        guard let context else { return }
        if case .finished = phase { return }
        phase = .finished
        // Anything held back is delivered (and dropped), so a client EOF NIOSSH already has is seen below.
        resumeReading()
        let channel = context.channel
        let this = NIOLoopBound(self, eventLoop: eventLoop)
        let exitStatus = SSHChannelRequestEvent.ExitStatus(exitStatus: Int(UInt32(bitPattern: status)))
        logger.info("SSH exec ended", metadata: ["status": "\(status)"])
        // exit-status goes out at once while data waits for the client's window, and close drops queued data:
        // hence this order.
        (lastWrite ?? channel.eventLoop.makeSucceededVoidFuture())
            .flatMap { channel.triggerUserOutboundEvent(exitStatus) }
            .flatMap {
                // NIOSSH 0.15.1 fails our EOF after the client's ("Sent EOF out of sequence"); close implies it.
                this.value.peerSentEOF ? channel.eventLoop.makeSucceededVoidFuture() : channel.close(mode: .output)
            }
            .whenComplete { _ in channel.close(promise: nil) }
    }
}
