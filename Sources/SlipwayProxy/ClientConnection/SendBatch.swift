// SendBatch: the connections of one event loop written to during the loop's current turn, flushed together
// once the turn's other events are handled. The requests and answers of a turn then leave in one burst, as
// HAProxy sends them: a client woken by one answer finds the others already there, and the app's instance
// finds several requests at once, so fewer sleeping processes are woken per request. Waking a process on
// another CPU was a large share of the proxy's kernel time per request (see Benchmarks/proxy-throughput.sh).
// An HTTP/2 connection's streams are flushed first, and the connection once after them (`ConnectionFlush`): one
// TLS record and one write for the turn's answers on it, not one per stream.
import NIOCore
import Synchronization

final class SendBatch {
    private let eventLoop: any EventLoop
    private var written: [ChannelHandlerContext] = []
    /// HTTP/2 connections their streams asked to flush this turn, flushed after every stream is.
    private var connections: [ConnectionFlush] = []

    private init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Flushes what was written through `context` at the end of the current turn.
    func flush(_ context: ChannelHandlerContext) {
        if written.isEmpty && connections.isEmpty { eventLoop.assumeIsolated().execute { self.send() } }
        written.append(context)
    }

    private func flush(_ connection: ConnectionFlush) {
        if written.isEmpty && connections.isEmpty { eventLoop.assumeIsolated().execute { self.send() } }
        connections.append(connection)
    }

    private func send() {
        // A flush can fail a connection, and its handlers may then write and ask for a flush: it joins this batch.
        while !written.isEmpty || !connections.isEmpty {
            var index = 0
            while index < written.count {
                written[index].flush()
                index += 1
            }
            written.removeAll(keepingCapacity: true)
            let flushing = connections
            connections.removeAll(keepingCapacity: true)
            for connection in flushing { connection.flushNow() }
        }
    }

    /// In an HTTP/2 connection's pipeline, between TLS and the HTTP/2 handler: a flush waits for the end of the
    /// turn's batch, once however many streams asked.
    final class ConnectionFlush: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        private let batch: SendBatch
        private var context: ChannelHandlerContext?
        private var pending = false

        init(batch: SendBatch) {
            self.batch = batch
        }

        func handlerAdded(context: ChannelHandlerContext) {
            self.context = context
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            self.context = nil
        }

        func flush(context: ChannelHandlerContext) {
            guard !pending else { return }
            pending = true
            batch.flush(self)
        }

        /// What was written before a close (a GOAWAY, a stream's last frames) leaves before it, as it did when
        /// every flush went out at once.
        func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
            if pending { flushNow() }
            context.close(mode: mode, promise: promise)
        }

        fileprivate func flushNow() {
            pending = false
            context?.flush()
        }
    }

    /// The batch of each event loop, made on that loop when one of its connections first asks for it.
    final class PerLoop: Sendable {
        private let batches = Mutex<[ObjectIdentifier: NIOLoopBound<SendBatch>]>([:])

        func batch(on eventLoop: any EventLoop) -> SendBatch {
            batches.withLock { batches in
                if let batch = batches[ObjectIdentifier(eventLoop)] { return batch.value }
                let batch = SendBatch(eventLoop: eventLoop)
                batches[ObjectIdentifier(eventLoop)] = NIOLoopBound(batch, eventLoop: eventLoop)
                return batch
            }
        }
    }
}
