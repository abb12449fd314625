// WebSocketFrameBoundaries: where the frames of one direction of a WebSocket tunnel begin and end (RFC 6455
// §5.2), read from their headers alone, so the proxy can put a close frame between two frames and never
// inside one. Payloads are skipped, never decoded or buffered.
import NIOCore

struct WebSocketFrameBoundaries {
    /// The header of the frame being read, while incomplete (at most 14 bytes).
    private var header: [UInt8] = []
    private var payloadLeft: UInt64 = 0
    /// Whether a close frame (opcode 8) has been read whole.
    private(set) var sawClose = false

    var atBoundary: Bool { header.isEmpty && payloadLeft == 0 }

    /// Follows `bytes`; with `stoppingAtBoundary`, stops at the first frame boundary. Returns how many bytes
    /// were followed: all of them, or those up to the boundary (0 when already at one).
    mutating func follow(_ bytes: ByteBufferView, stoppingAtBoundary: Bool) -> Int {
        if stoppingAtBoundary && atBoundary { return 0 }
        var index = bytes.startIndex
        while index < bytes.endIndex {
            if payloadLeft > 0 {
                let step = Int(min(payloadLeft, UInt64(bytes.endIndex - index)))
                index += step
                payloadLeft -= UInt64(step)
            } else {
                header.append(bytes[index])
                index += 1
                guard let payload = completedHeaderPayloadLength() else { continue }
                sawClose = sawClose || header[0] & 0x0f == 0x8
                header.removeAll(keepingCapacity: true)
                payloadLeft = payload
            }
            if stoppingAtBoundary && atBoundary { break }
        }
        return index - bytes.startIndex
    }

    /// The payload length once the header is whole; nil while more header bytes are due.
    private func completedHeaderPayloadLength() -> UInt64? {
        guard header.count >= 2 else { return nil }
        let shortLength = header[1] & 0x7f
        let lengthBytes = shortLength == 126 ? 2 : shortLength == 127 ? 8 : 0
        let maskBytes = header[1] & 0x80 != 0 ? 4 : 0
        guard header.count == 2 + lengthBytes + maskBytes else { return nil }
        guard lengthBytes > 0 else { return UInt64(shortLength) }
        return header[2..<(2 + lengthBytes)].reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// A close frame with status 1001 ("going away") and the reason, masked when it goes to the app (as a client's
    /// must be).
    static func goingAway(saying reason: GoingAwayReason, masked: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        let payload: [UInt8] = [0x03, 0xe9] + Array(reason.rawValue.utf8)
        var frame = allocator.buffer(capacity: 2 + 4 + payload.count)
        frame.writeInteger(UInt8(0x88))
        if masked {
            let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
            frame.writeInteger(UInt8(0x80) | UInt8(payload.count))
            frame.writeBytes(mask)
            frame.writeBytes(payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
        } else {
            frame.writeInteger(UInt8(payload.count))
            frame.writeBytes(payload)
        }
        return frame
    }
}
