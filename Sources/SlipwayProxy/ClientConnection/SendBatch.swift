// SendBatch: the connections of one event loop written to during the loop's current turn, flushed together
// once the turn's other events are handled. The requests and answers of a turn then leave in one burst, as
// HAProxy sends them: a client woken by one answer finds the others already there, and the app's instance
// finds several requests at once, so fewer sleeping processes are woken per request. Waking a process on
// another CPU was a large share of the proxy's kernel time per request (see Benchmarks/proxy-throughput.sh).
import NIOCore
import Synchronization

final class SendBatch {
    private let eventLoop: any EventLoop
    private var written: [ChannelHandlerContext] = []

    private init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Flushes what was written through `context` at the end of the current turn.
    func flush(_ context: ChannelHandlerContext) {
        if written.isEmpty { eventLoop.assumeIsolated().execute { self.send() } }
        written.append(context)
    }

    private func send() {
        // A flush can fail a connection, and its handlers may then write and ask for a flush: it joins this batch.
        var index = 0
        while index < written.count {
            written[index].flush()
            index += 1
        }
        written.removeAll(keepingCapacity: true)
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
