// ClientRequestReader: finds the requests in the bytes a client sends: each head (method, target, version,
// Host, body framing, keep-alive), the data of its body as it arrives, and its end. Strict wherever HTTP/1.1
// allows two readings, since a request the proxy reads one way and the app another is how one request is
// smuggled inside another: every line ends in CRLF, a body has exactly one framing, and a chunked body is
// taken apart here and framed anew for the instance. The head's bytes are kept and copied to the instance:
// decoding every head into strings and encoding it again cost more CPU than the rest of the request path.
import NIOCore
import NIOHTTP1

/// A client's request head: what the proxy needs to route, frame and rewrite it, and its bytes.
struct ClientRequestHead: Sendable {
    var method: HTTPMethod
    var uri: String
    var version: HTTPVersion
    /// The Host header's value; nil without one.
    var host: String?
    var framing: ClientBodyFraming
    /// The client keeps the connection open after this request: its version's default, or its Connection header.
    var keepAlive: Bool
    /// `Connection: upgrade` with an `Upgrade` header: the client wants to speak another protocol next.
    var upgrade: Bool
    /// An upgrade to the WebSocket protocol: the only one the proxy passes through.
    var isWebSocketUpgrade: Bool
    var expectsContinue: Bool
    /// Further hop-by-hop headers the `Connection` header names (lowercased); almost always none.
    var namedByConnection: [String]
    /// The head as received, from the request line to the blank line.
    var bytes: ByteBuffer
    /// The length of the request line's method, target and the spaces after each.
    var methodAndTargetLength: Int

    /// What stands for a request when bytes never made one (a stalled or malformed head).
    static let unread = ClientRequestHead(
        method: .GET,
        uri: "/",
        version: .http1_1,
        host: nil,
        framing: .length(0),
        keepAlive: false,
        upgrade: false,
        isWebSocketUpgrade: false,
        expectsContinue: false,
        namedByConnection: [],
        bytes: ByteBuffer(),
        methodAndTargetLength: 0
    )

    /// Nothing after such a request is HTTP, so the client connection closes after its answer unless it
    /// becomes a tunnel.
    var endsHTTPOnThisConnection: Bool { method.isCONNECT || upgrade }

    /// Safe to send twice: a request on a stale keep-alive connection may be retried even after its body went out.
    var isIdempotent: Bool {
        switch method {
        case .GET, .HEAD, .OPTIONS, .PUT, .DELETE: true
        default: false
        }
    }

    /// The path without its query string.
    var path: Substring { uri.requestPath }

    /// The trimmed values of the header lines called `name` (lowercase), in order.
    func values(of name: StaticString) -> [String] {
        bytes.withUnsafeReadableBytes { raw in
            var lines = HeadLines(raw)
            _ = lines.next()
            var values: [String] = []
            while let line = lines.next() {
                guard let field = try? HeadLines.field(of: line, in: raw),
                    UnsafeRawBufferPointer(rebasing: raw[field.name]).isCaseInsensitively(name)
                else { continue }
                values.append(String(decoding: raw[field.value], as: UTF8.self))
            }
            return values
        }
    }

    /// The value of the first cookie called `name` in the request's Cookie headers.
    func cookie(named name: String) -> Substring? {
        for header in values(of: "cookie") {
            for pair in header.split(separator: ";") {
                let pair = pair.drop(while: { $0 == " " })
                guard let equals = pair.firstIndex(of: "="), pair[..<equals] == name else { continue }
                return pair[pair.index(after: equals)...]
            }
        }
        return nil
    }
}

extension String {
    /// A request target's path, without its query string.
    var requestPath: Substring {
        firstIndex(of: "?").map { self[..<$0] } ?? self[...]
    }
}

enum ClientBodyFraming: Equatable, Sendable {
    /// `Content-Length` bytes; 0 without the header.
    case length(Int)
    case chunked
}

/// Why a client's bytes are not a request the proxy passes on; each is answered, then the connection closes.
enum ClientRequestError: Error, CustomStringConvertible, Equatable {
    case malformed(String)
    case headTooLarge(limit: Int)
    case unsupportedTransferEncoding
    case unsupportedVersion

    var status: HTTPResponseStatus {
        switch self {
        case .malformed: .badRequest
        case .headTooLarge: .requestHeaderFieldsTooLarge
        case .unsupportedTransferEncoding: .notImplemented
        case .unsupportedVersion: .httpVersionNotSupported
        }
    }

    var description: String {
        switch self {
        case .malformed(let what):
            "This request is not valid HTTP/1.1 (\(what))."
        case .headTooLarge(let limit):
            "This request's URL and headers are larger than the \(limit) bytes allowed."
        case .unsupportedTransferEncoding:
            "This request's Transfer-Encoding is not supported: send its body with a Content-Length or chunked."
        case .unsupportedVersion:
            "This request's HTTP version is not supported: send HTTP/1.1."
        }
    }
}

struct ClientRequestReader {
    enum Part {
        case head(ClientRequestHead)
        /// Body data, without any chunk framing.
        case body(ByteBuffer)
        case end
    }

    private static let maxChunkLineBytes = 4096

    private enum State: Equatable {
        case head
        case length(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(bytes: Int)
        /// The request is complete; the next part is its end.
        case ending
        /// After a request that switches protocols the bytes are not HTTP; after a refusal nothing is read.
        case stopped
    }

    /// The request line and headers together; more is answered 431.
    let maxHeadBytes: Int
    private var state = State.head
    private var stopsAfterRequest = false

    init(maxHeadBytes: Int) {
        self.maxHeadBytes = maxHeadBytes
    }

    /// The next part found in `buffer`, whose bytes it consumes; nil when more bytes are needed, or after a
    /// request that switched protocols. After an error it reads nothing more.
    mutating func next(from buffer: inout ByteBuffer) throws(ClientRequestError) -> Part? {
        do {
            return try readPart(from: &buffer)
        } catch {
            state = .stopped
            throw error
        }
    }

    private mutating func readPart(from buffer: inout ByteBuffer) throws(ClientRequestError) -> Part? {
        while true {
            switch state {
            case .head:
                return try readHead(from: &buffer)
            case .length(let remaining):
                guard let (data, left) = Self.data(upTo: remaining, from: &buffer) else { return nil }
                state = left == 0 ? .ending : .length(remaining: left)
                return .body(data)
            case .chunkSize:
                let tooLong = ClientRequestError.malformed("a chunk line too long")
                guard let line = try Self.line(in: buffer, longest: Self.maxChunkLineBytes, orElse: tooLong) else {
                    return nil
                }
                let size = try buffer.withUnsafeReadableBytes { raw throws(ClientRequestError) in
                    try Self.chunkSize(UnsafeRawBufferPointer(rebasing: raw[..<line.length]))
                }
                buffer.moveReaderIndex(forwardBy: line.next)
                state = size == 0 ? .trailers(bytes: 0) : .chunkData(remaining: size)
            case .chunkData(let remaining):
                guard let (data, left) = Self.data(upTo: remaining, from: &buffer) else { return nil }
                state = left == 0 ? .chunkDataEnd : .chunkData(remaining: left)
                return .body(data)
            case .chunkDataEnd:
                guard buffer.readableBytes >= 2 else { return nil }
                guard buffer.readInteger(as: UInt16.self) == 0x0D0A else {
                    throw .malformed("chunk data not followed by CRLF")
                }
                state = .chunkSize
            case .trailers(let seen):
                // Trailers are read and dropped, as nginx does: the body goes on re-framed, without them.
                let tooLarge = ClientRequestError.headTooLarge(limit: maxHeadBytes)
                guard let line = try Self.line(in: buffer, longest: maxHeadBytes - seen, orElse: tooLarge) else {
                    return nil
                }
                try buffer.withUnsafeReadableBytes { raw throws(ClientRequestError) in
                    guard line.length > 0 else { return }
                    do throws(HeadLines.Malformed) { _ = try HeadLines.field(of: 0..<line.length, in: raw) } catch {
                        throw .malformed("a bad trailer: \(error.what)")
                    }
                }
                buffer.moveReaderIndex(forwardBy: line.next)
                state = line.length == 0 ? .ending : .trailers(bytes: seen + line.next)
            case .ending:
                state = stopsAfterRequest ? .stopped : .head
                return .end
            case .stopped:
                return nil
            }
        }
    }

    /// Up to `remaining` bytes of body data from `buffer`, and how many are still to come; nil when it has none.
    private static func data(upTo remaining: Int, from buffer: inout ByteBuffer) -> (ByteBuffer, left: Int)? {
        guard buffer.readableBytes > 0 else { return nil }
        let count = min(remaining, buffer.readableBytes)
        return (buffer.readSlice(length: count)!, remaining - count)
    }

    /// A line at the start of `buffer` once it is all there: its length without the CRLF, and where the next
    /// begins. A line that is, or will be, longer than `longest` is refused with `tooLong`.
    private static func line(
        in buffer: ByteBuffer,
        longest: Int,
        orElse tooLong: ClientRequestError
    ) throws(ClientRequestError) -> (length: Int, next: Int)? {
        try buffer.withUnsafeReadableBytes { raw throws(ClientRequestError) in
            let newline = raw.newline(from: 0)
            guard (newline ?? raw.count) <= longest else { throw tooLong }
            guard let newline else { return nil }
            guard newline > 0, raw[newline - 1] == UInt8(ascii: "\r") else {
                throw .malformed("a line that does not end in CRLF")
            }
            return (newline - 1, newline + 1)
        }
    }

    /// The size on a chunk-size line. Extensions (after `;`) are allowed and dropped, since the body is
    /// framed anew; a control character in one is refused.
    private static func chunkSize(_ line: UnsafeRawBufferPointer) throws(ClientRequestError) -> Int {
        let digits = line.prefix { $0.hexadecimalDigit != nil }.count
        guard let size = Int(hexadecimal: UnsafeRawBufferPointer(rebasing: line[..<digits])) else {
            throw .malformed("a bad chunk size")
        }
        let rest = UnsafeRawBufferPointer(rebasing: line[digits...]).trimmingWhitespace()
        guard rest.isEmpty || rest.first == UInt8(ascii: ";") else { throw .malformed("a bad chunk size") }
        for byte in rest where (byte < 0x20 && byte != 0x09) || byte == 0x7f {
            throw .malformed("a control character in a chunk extension")
        }
        return size
    }

    // MARK: Heads

    private mutating func readHead(from buffer: inout ByteBuffer) throws(ClientRequestError) -> Part? {
        // Empty lines before a request line are ignored (RFC 9112, 2.2): some clients send one after a body.
        while buffer.readableBytes >= 2, buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A {
            buffer.moveReaderIndex(forwardBy: 2)
        }
        let taken: ByteBuffer?
        do { taken = try HeadLines.takeHead(from: &buffer, longest: maxHeadBytes) } catch {
            throw .headTooLarge(limit: maxHeadBytes)
        }
        guard let bytes = taken else { return nil }
        let head = try bytes.withUnsafeReadableBytes { raw throws(ClientRequestError) in
            try Self.parseHead(raw, bytes: bytes)
        }
        stopsAfterRequest = head.endsHTTPOnThisConnection
        switch head.framing {
        case .length(0): state = .ending
        case .length(let count): state = .length(remaining: count)
        case .chunked: state = .chunkSize
        }
        return .head(head)
    }

    private static func parseHead(
        _ raw: UnsafeRawBufferPointer,
        bytes: ByteBuffer
    ) throws(ClientRequestError) -> ClientRequestHead {
        var lines = HeadLines(raw)
        guard let requestLine = lines.next(), requestLine.lowerBound == 0 else {
            throw .malformed("no request line")
        }
        try requireCRLF(after: requestLine, in: raw)

        // method SP request-target SP HTTP-version, each part strictly what it may be.
        var index = 0
        while index < requestLine.upperBound && HeadLines.isTokenByte(raw[index]) { index += 1 }
        guard index > 0, index < requestLine.upperBound, raw[index] == UInt8(ascii: " ") else {
            throw .malformed("a bad method")
        }
        let method = HTTPMethod(rawValue: String(decoding: raw[..<index], as: UTF8.self))
        let targetStart = index + 1
        index = targetStart
        while index < requestLine.upperBound && raw[index] > 0x20 && raw[index] != 0x7f { index += 1 }
        guard index > targetStart, index < requestLine.upperBound, raw[index] == UInt8(ascii: " ") else {
            throw .malformed("a bad request target")
        }
        let uri = String(decoding: raw[targetStart..<index], as: UTF8.self)
        let methodAndTargetLength = index + 1
        let version = try parseVersion(
            UnsafeRawBufferPointer(rebasing: raw[methodAndTargetLength..<requestLine.upperBound])
        )

        var host: String?
        var contentLength: Int?
        var transferEncoded = false
        var connection = ConnectionOptions()
        var upgradeHeader = false
        var webSocket = false
        var expectsContinue = false
        while let line = lines.next() {
            try requireCRLF(after: line, in: raw)
            let field: HeadLines.Field
            do { field = try HeadLines.field(of: line, in: raw) } catch { throw .malformed(error.what) }
            let name = UnsafeRawBufferPointer(rebasing: raw[field.name])
            let value = UnsafeRawBufferPointer(rebasing: raw[field.value])
            switch name.count {
            case 4 where name.isCaseInsensitively("host"):
                guard host == nil else { throw .malformed("more than one Host header") }
                host = String(decoding: value, as: UTF8.self)
            case 6 where name.isCaseInsensitively("expect"):
                expectsContinue = expectsContinue || value.isCaseInsensitively("100-continue")
            case 7 where name.isCaseInsensitively("upgrade"):
                upgradeHeader = true
                webSocket = webSocket || String(decoding: value, as: UTF8.self).lowercased().contains("websocket")
            case 10 where name.isCaseInsensitively("connection"):
                connection.add(value)
            case 14 where name.isCaseInsensitively("content-length"):
                guard contentLength == nil else { throw .malformed("more than one Content-Length header") }
                guard let length = Int(decimal: value) else {
                    throw .malformed("a bad Content-Length")
                }
                contentLength = length
            case 17 where name.isCaseInsensitively("transfer-encoding"):
                guard !transferEncoded else { throw .malformed("more than one Transfer-Encoding header") }
                transferEncoded = true
                guard value.isCaseInsensitively("chunked") else { throw .unsupportedTransferEncoding }
            default:
                break
            }
        }
        // The blank line that ends the head, too, is a CRLF.
        guard raw.count >= 2, raw[raw.count - 2] == UInt8(ascii: "\r") else {
            throw .malformed("a line that does not end in CRLF")
        }
        if transferEncoded {
            // Either would let the proxy and the app disagree on where this body ends (RFC 9112, 6.1).
            guard contentLength == nil else { throw .malformed("both Content-Length and Transfer-Encoding") }
            guard version == .http1_1 else { throw .malformed("Transfer-Encoding in an HTTP/1.0 request") }
        }
        if let named = connection.named.first(where: Self.framesOrRoutes) {
            // The app would frame or route the request without it, and so disagree with the proxy (smuggling).
            throw .malformed("a Connection header naming \(named), which the proxy needs to pass on")
        }
        let upgrade = connection.upgrade && upgradeHeader
        return ClientRequestHead(
            method: method,
            uri: uri,
            version: version,
            host: host,
            framing: transferEncoded ? .chunked : .length(contentLength ?? 0),
            keepAlive: connection.keepsAlive(http11: version == .http1_1),
            upgrade: upgrade,
            isWebSocketUpgrade: upgrade && webSocket,
            expectsContinue: expectsContinue,
            namedByConnection: connection.named,
            bytes: bytes,
            methodAndTargetLength: methodAndTargetLength
        )
    }

    /// A header that frames or routes the request, or that the proxy sets: no `Connection` header may remove it.
    private static func framesOrRoutes(_ name: String) -> Bool {
        ["content-length", "transfer-encoding", "host", "x-request-id"].contains(name)
            || Array(name.utf8).withUnsafeBytes(MessageRewriting.isSetByProxy)
    }

    private static func parseVersion(_ bytes: UnsafeRawBufferPointer) throws(ClientRequestError) -> HTTPVersion {
        guard bytes.count == 8, bytes.starts(with: "HTTP/".utf8), bytes[6] == UInt8(ascii: "."),
            let major = bytes[5].decimalDigit, let minor = bytes[7].decimalDigit
        else { throw .malformed("a bad HTTP version") }
        guard major == 1, minor <= 1 else { throw .unsupportedVersion }
        return minor == 1 ? .http1_1 : .http1_0
    }

    private static func requireCRLF(after line: Range<Int>, in raw: UnsafeRawBufferPointer) throws(ClientRequestError) {
        guard raw[line.upperBound] == UInt8(ascii: "\r") else { throw .malformed("a line that does not end in CRLF") }
    }

}
