// InstanceResponseReader: finds the parts of an instance's answers in the bytes of its connection: each
// head (status, framing, whether the instance keeps the connection open), the body as it arrives, and the
// end. Bodies are handed on as the instance framed them, so a proxied answer is copied, never re-encoded:
// decoding every answer into header strings and encoding it again cost more CPU than the rest of the proxy.
import NIOCore

/// An instance's response head: what the proxy needs to frame and rewrite it, and its bytes.
struct InstanceResponseHead {
    var status: Int
    /// The instance keeps the connection open after this answer.
    var keepAlive: Bool
    var framing: InstanceBodyFraming
    /// The instance sent a `Transfer-Encoding`, so its `Content-Length`, if any, does not count.
    var transferEncoded: Bool
    var isHTML: Bool
    /// Further hop-by-hop headers the `Connection` header names (lowercased); almost always none.
    var namedByConnection: [String]
    /// The head as received, from the status line to the blank line.
    var bytes: ByteBuffer

    var isInterim: Bool { (100..<200).contains(status) && status != 101 }
}

enum InstanceBodyFraming: Equatable {
    /// No body: the answer to a HEAD, a 1xx, 204 or 304.
    case none
    case length(Int)
    case chunked
    /// The body ends when the instance closes the connection.
    case untilClose
}

enum InstanceResponseError: Error, CustomStringConvertible, Equatable {
    case malformed(String)
    case headTooLarge
    case endedMidAnswer

    var description: String {
        switch self {
        case .malformed(let what): "it sent a malformed response (\(what))"
        case .headTooLarge: "its response head is larger than \(InstanceResponseReader.maxHeadBytes) bytes"
        case .endedMidAnswer: "the connection closed in the middle of its answer"
        }
    }
}

struct InstanceResponseReader {
    enum Part {
        case head(InstanceResponseHead)
        /// Body bytes: as framed by the instance, or only the data of its chunks when `dechunk` is set.
        case body(ByteBuffer)
        case end
    }

    static let maxHeadBytes = 80 * 1024
    private static let maxChunkLineBytes = 4096

    private enum State: Equatable {
        case head
        case length(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        /// After a 101 the bytes belong to the tunnel, not to HTTP.
        case switched
    }

    private var state = State.head
    private var endPending = false
    /// The request being answered is a HEAD: its answer has no body, whatever its headers say.
    var answeringHEAD = false
    /// Hand on only the data of chunks (for an HTTP/1.0 client), not their framing.
    var dechunk = false

    var hasSwitchedProtocols: Bool { state == .switched }

    /// The next part found in `buffer`, whose bytes it consumes; nil when more bytes are needed.
    mutating func next(from buffer: inout ByteBuffer) throws(InstanceResponseError) -> Part? {
        if endPending {
            endPending = false
            return .end
        }
        switch state {
        case .head:
            return try readHead(from: &buffer)
        case .length(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            if count == remaining { finishAnswer() } else { state = .length(remaining: remaining - count) }
            return .body(buffer.readSlice(length: count)!)
        case .chunkSize, .chunkData, .chunkDataEnd, .trailers:
            return try readChunks(from: &buffer)
        case .untilClose:
            guard buffer.readableBytes > 0 else { return nil }
            return .body(buffer.readSlice(length: buffer.readableBytes)!)
        case .switched:
            return nil
        }
    }

    /// The instance closed its connection: the end of a body that runs until then, or an answer cut short.
    mutating func connectionClosed() throws(InstanceResponseError) -> Part? {
        switch state {
        case .untilClose:
            state = .head
            return .end
        case .head, .switched:
            return nil
        default:
            throw .endedMidAnswer
        }
    }

    private mutating func finishAnswer() {
        state = .head
        endPending = true
    }

    // MARK: Heads

    private mutating func readHead(from buffer: inout ByteBuffer) throws(InstanceResponseError) -> Part? {
        let taken: ByteBuffer?
        do { taken = try HeadLines.takeHead(from: &buffer, longest: Self.maxHeadBytes) } catch { throw .headTooLarge }
        guard let bytes = taken else { return nil }
        var head = try bytes.withUnsafeReadableBytes { raw throws(InstanceResponseError) in
            try Self.parseHead(raw, bytes: bytes, answeringHEAD: answeringHEAD)
        }
        switch head.framing {
        case .none:
            if head.status == 101 {
                state = .switched
                endPending = true
            } else if !head.isInterim {
                finishAnswer()
            }
        case .length(let count):
            if count == 0 { finishAnswer() } else { state = .length(remaining: count) }
        case .chunked:
            state = .chunkSize
        case .untilClose:
            state = .untilClose
            head.keepAlive = false
        }
        return .head(head)
    }

    private static func parseHead(
        _ raw: UnsafeRawBufferPointer,
        bytes: ByteBuffer,
        answeringHEAD: Bool
    ) throws(InstanceResponseError) -> InstanceResponseHead {
        var lines = HeadLines(raw)
        guard let statusLine = lines.next() else { throw .malformed("no status line") }
        // "HTTP/1.x NNN reason"
        let prefix = "HTTP/1.".utf8
        guard statusLine.count >= 12, raw[statusLine.lowerBound..<statusLine.lowerBound + 7].elementsEqual(prefix),
            let minor = raw[statusLine.lowerBound + 7].decimalDigit, raw[statusLine.lowerBound + 8] == UInt8(ascii: " ")
        else { throw .malformed("bad status line") }
        var status = 0
        for index in statusLine.lowerBound + 9..<statusLine.lowerBound + 12 {
            guard let value = raw[index].decimalDigit else { throw .malformed("bad status code") }
            status = status * 10 + value
        }
        guard status >= 100 else { throw .malformed("bad status code") }

        var contentLength: Int?
        var transferEncoded = false
        var chunkedLast = false
        var connection = ConnectionOptions()
        var isHTML = false
        while let line = lines.next() {
            let field: HeadLines.Field
            do { field = try HeadLines.field(of: line, in: raw) } catch { throw .malformed(error.what) }
            let name = UnsafeRawBufferPointer(rebasing: raw[field.name])
            let value = UnsafeRawBufferPointer(rebasing: raw[field.value])
            switch name.count {
            case 10 where name.isCaseInsensitively("connection"):
                connection.add(value)
            case 12 where name.isCaseInsensitively("content-type"):
                isHTML =
                    value.count >= 9 && UnsafeRawBufferPointer(rebasing: value[..<9]).isCaseInsensitively("text/html")
            case 14 where name.isCaseInsensitively("content-length"):
                guard let length = Int(decimal: value) else {
                    throw .malformed("bad Content-Length")
                }
                if let contentLength, contentLength != length { throw .malformed("conflicting Content-Length") }
                contentLength = length
            case 17 where name.isCaseInsensitively("transfer-encoding"):
                transferEncoded = true
                let lastComma = value.lastIndex(of: UInt8(ascii: ",")).map { $0 + 1 } ?? value.startIndex
                chunkedLast = UnsafeRawBufferPointer(rebasing: value[lastComma...]).trimmingWhitespace()
                    .isCaseInsensitively("chunked")
            default:
                break
            }
        }

        let framing: InstanceBodyFraming
        if answeringHEAD || status < 200 || status == 204 || status == 304 {
            framing = .none
        } else if transferEncoded {
            framing = chunkedLast ? .chunked : .untilClose
        } else if let contentLength {
            framing = .length(contentLength)
        } else {
            framing = .untilClose
        }
        return InstanceResponseHead(
            status: status,
            keepAlive: connection.keepsAlive(http11: minor >= 1),
            framing: framing,
            transferEncoded: transferEncoded,
            isHTML: isHTML,
            namedByConnection: connection.named,
            bytes: bytes
        )
    }

    // MARK: Chunked bodies

    /// Walks the chunk framing as far as the bytes go. Framed bodies are handed on in one slice per read;
    /// with `dechunk`, each piece of chunk data is a slice of its own and the framing is dropped.
    private mutating func readChunks(from buffer: inout ByteBuffer) throws(InstanceResponseError) -> Part? {
        var consumed = 0
        let readable = buffer.readableBytes
        while consumed < readable {
            switch state {
            case .chunkSize, .trailers:
                guard let line = try chunkLine(in: buffer, from: consumed) else { return handOn(consumed, &buffer) }
                consumed = line.next
                if state == .chunkSize {
                    state = line.size == 0 ? .trailers : .chunkData(remaining: line.size)
                } else if line.isEmpty {
                    state = .head
                    guard dechunk else {
                        endPending = true
                        return handOn(consumed, &buffer)
                    }
                    buffer.moveReaderIndex(forwardBy: consumed)
                    return .end
                }
            case .chunkData(let remaining):
                let count = min(remaining, readable - consumed)
                state = count == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - count)
                if dechunk {
                    buffer.moveReaderIndex(forwardBy: consumed)
                    return .body(buffer.readSlice(length: count)!)
                }
                consumed += count
            case .chunkDataEnd:
                let at = buffer.readerIndex + consumed
                if buffer.getInteger(at: at, as: UInt8.self) == UInt8(ascii: "\r") {
                    guard consumed + 1 < readable else { return handOn(consumed, &buffer) }
                    consumed += 1
                }
                guard buffer.getInteger(at: buffer.readerIndex + consumed, as: UInt8.self) == UInt8(ascii: "\n") else {
                    throw .malformed("chunk data not followed by CRLF")
                }
                consumed += 1
                state = .chunkSize
            default:
                preconditionFailure("readChunks outside a chunked body")
            }
        }
        return handOn(consumed, &buffer)
    }

    /// A chunk-size or trailer line starting `offset` bytes into `buffer`, once it is all there: the size
    /// (for a chunk-size line), whether the line is empty (the end of the trailers), and where the next begins.
    private func chunkLine(
        in buffer: ByteBuffer,
        from offset: Int
    ) throws(InstanceResponseError) -> (size: Int, isEmpty: Bool, next: Int)? {
        try buffer.withUnsafeReadableBytes { raw throws(InstanceResponseError) in
            let rest = UnsafeRawBufferPointer(rebasing: raw[offset...])
            guard let newline = rest.newline(from: 0) else {
                if rest.count > Self.maxChunkLineBytes { throw .malformed("chunk line too long") }
                return nil
            }
            var line = UnsafeRawBufferPointer(rebasing: rest[..<newline])
            if line.last == UInt8(ascii: "\r") { line = UnsafeRawBufferPointer(rebasing: line.dropLast()) }
            var size = 0
            if state == .chunkSize {
                // Chunk extensions (after ";") are passed on, not interpreted.
                let digits = UnsafeRawBufferPointer(rebasing: line.prefix { $0 != UInt8(ascii: ";") })
                guard let value = Int(hexadecimal: digits.trimmingWhitespace()) else {
                    throw .malformed("bad chunk size")
                }
                size = value
            }
            return (size, line.isEmpty, offset + newline + 1)
        }
    }

    /// The framed bytes walked so far, as one body part; with `dechunk` they are only framing, and dropped.
    private func handOn(_ consumed: Int, _ buffer: inout ByteBuffer) -> Part? {
        guard consumed > 0 else { return nil }
        guard !dechunk else {
            buffer.moveReaderIndex(forwardBy: consumed)
            return nil
        }
        return .body(buffer.readSlice(length: consumed)!)
    }
}
