// AnswerBytes: the buffers a client connection writes through, kept apart from the protocol logic that fills
// them. A proxied answer's bytes are gathered while one read of its instance is handed on and written at once
// (one write for a small answer's head, body and end instead of three), and the storage of the heads written
// is kept for the next request, so a keep-alive connection writes heads without an allocation.
import NIOCore

struct AnswerBytes {
    /// Larger body pieces are written as they are, not copied.
    static let gatherLimit = 16 * 1024
    /// Head storage larger than this is let go rather than held on an idle connection.
    private static let spareHeadLimit = 4096

    private var gathered: ByteBuffer?
    /// `gathered` begins with an answer head, in `spareAnswerHead`'s storage.
    private var gatheredHasHead = false
    private var spareRequestHead = ByteBuffer()
    private var spareAnswerHead = ByteBuffer()
    /// Bytes of a proxied answer were written and not flushed yet.
    var unflushed = false

    /// A buffer for a request head to an instance, in the last one's storage when the socket let go of it.
    mutating func requestHead(capacity: Int) -> ByteBuffer {
        Self.reuse(&spareRequestHead, capacity: capacity)
    }

    mutating func keepRequestHead(_ head: ByteBuffer) {
        Self.keep(head, as: &spareRequestHead)
    }

    /// A buffer for an answer head to the client, in the last one's storage when the socket let go of it.
    mutating func answerHead(capacity: Int) -> ByteBuffer {
        Self.reuse(&spareAnswerHead, capacity: capacity)
    }

    /// The answer's head, held so its body and end leave in the same write.
    mutating func gatherHead(_ head: ByteBuffer) {
        gathered = head
        gatheredHasHead = true
    }

    mutating func gather(_ bytes: ByteBuffer) {
        gathered.setOrWriteImmutableBuffer(bytes)
    }

    /// What was gathered, to be written now.
    mutating func takeGathered() -> ByteBuffer? {
        gatheredHasHead = false
        return gathered.take()
    }

    /// The answer's last bytes, to be written now; the head's storage is kept for the next answer.
    mutating func takeLast() -> ByteBuffer {
        unflushed = false
        let last = gathered.take() ?? ByteBuffer()
        if gatheredHasHead { Self.keep(last, as: &spareAnswerHead) }
        gatheredHasHead = false
        return last
    }

    mutating func connectionClosed() {
        gathered = nil
        gatheredHasHead = false
    }

    private static func reuse(_ spare: inout ByteBuffer, capacity: Int) -> ByteBuffer {
        var buffer = spare
        spare = ByteBuffer()
        buffer.clear(minimumCapacity: capacity)
        return buffer
    }

    private static func keep(_ head: ByteBuffer, as spare: inout ByteBuffer) {
        if head.capacity <= spareHeadLimit { spare = head }
    }
}
