// HeadLines and the byte helpers the HTTP/1 readers share (ClientRequestReader, InstanceResponseReader, and
// HTTP2StreamBridge reading answers back): the lines of a head found in place, without copying them into strings,
// tokens, and the Connection header's options.
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The lines of an HTTP head in its bytes, each without its line ending (CRLF, or a bare LF as RFC 9112
/// allows a recipient to accept), and the fields in them.
struct HeadLines {
    private let raw: UnsafeRawBufferPointer
    private var position = 0

    init(_ raw: UnsafeRawBufferPointer) { self.raw = raw }

    /// A head is, or will be, longer than allowed.
    struct TooLarge: Error {}

    /// A byte of a token (RFC 9110, 5.6.2), as a method and a header name are.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// The head at the start of `buffer`, up to and including its blank line, taken from it once it is all
    /// there; nil before. Throws as soon as it is, or must become, longer than `longest`.
    static func takeHead(from buffer: inout ByteBuffer, longest: Int) throws(TooLarge) -> ByteBuffer? {
        guard let length = buffer.withUnsafeReadableBytes({ headLength(in: $0) }) else {
            if buffer.readableBytes > longest { throw TooLarge() }
            return nil
        }
        guard length <= longest else { throw TooLarge() }
        return buffer.readSlice(length: length)!
    }

    /// The length of the head at the start of `raw`, up to and including its blank line, once it is all there.
    private static func headLength(in raw: UnsafeRawBufferPointer) -> Int? {
        var start = 0
        while let end = raw.newline(from: start) {
            // A line that is empty, or only a CR, ends the head.
            if end == start || (end == start + 1 && raw[start] == UInt8(ascii: "\r")) { return end + 1 }
            start = end + 1
        }
        return nil
    }

    /// The next non-empty line, as a range of `raw`.
    mutating func next() -> Range<Int>? {
        guard let newline = raw.newline(from: position) else { return nil }
        var end = newline
        let start = position
        position = end + 1
        if end > start && raw[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return end > start ? start..<end : nil
    }

    /// Where the name of a header line is (up to its colon), without checking it; nil if it has none.
    static func name(of line: Range<Int>, in raw: UnsafeRawBufferPointer) -> Range<Int>? {
        guard let colon = raw[line].firstIndex(of: UInt8(ascii: ":")), colon > line.lowerBound else { return nil }
        return line.lowerBound..<colon
    }

    struct Field {
        var name: Range<Int>
        var value: Range<Int>
    }

    /// What is wrong with a head, in a few words.
    struct Malformed: Error {
        var what: String
    }

    /// The name and the trimmed value of a header line. A folded line, a name with spaces or a control
    /// character in a value is refused: they are how one message is smuggled inside another.
    static func field(of line: Range<Int>, in raw: UnsafeRawBufferPointer) throws(Malformed) -> Field {
        guard let name = name(of: line, in: raw) else { throw Malformed(what: "a header line without a name") }
        let colon = name.upperBound
        for byte in raw[line.lowerBound..<colon] where byte <= 0x20 || byte >= 0x7f {
            throw Malformed(what: "a header name with a space or control character")
        }
        var start = colon + 1
        var end = line.upperBound
        while start < end && (raw[start] == 0x20 || raw[start] == 0x09) { start += 1 }
        while end > start && (raw[end - 1] == 0x20 || raw[end - 1] == 0x09) { end -= 1 }
        for byte in raw[start..<end] where (byte < 0x20 && byte != 0x09) || byte == 0x7f {
            throw Malformed(what: "a control character in a header value")
        }
        return Field(name: line.lowerBound..<colon, value: start..<end)
    }
}

extension UnsafeRawBufferPointer {
    /// Where the first LF at or after `start` is. Every head is scanned for its lines, so this is memchr's job.
    func newline(from start: Int) -> Int? {
        guard start < count, let base = baseAddress,
            let found = memchr(base + start, Int32(UInt8(ascii: "\n")), count - start)
        else { return nil }
        return base.distance(to: UnsafeRawPointer(found))
    }

    /// Without the spaces and tabs at its ends, as header values are read.
    func trimmingWhitespace() -> UnsafeRawBufferPointer {
        var start = startIndex
        var end = endIndex
        while start < end && (self[start] == 0x20 || self[start] == 0x09) { start += 1 }
        while end > start && (self[end - 1] == 0x20 || self[end - 1] == 0x09) { end -= 1 }
        return UnsafeRawBufferPointer(rebasing: self[start..<end])
    }
}

/// What a `Connection` header says: the three options the proxy acts on, and the further hop-by-hop
/// headers it names (lowercased).
struct ConnectionOptions {
    var close = false
    var keepAlive = false
    var upgrade = false
    var named: [String] = []

    /// Whether the connection stays open after this message: HTTP/1.1's default unless `close`, HTTP/1.0's
    /// only with `keep-alive`.
    func keepsAlive(http11: Bool) -> Bool {
        !close && (http11 || keepAlive)
    }

    /// Adds the tokens of one `Connection` header's value.
    mutating func add(_ value: UnsafeRawBufferPointer) {
        // Token by token in place: every answer has a Connection header, and splitting it allocated an array.
        var start = value.startIndex
        while start < value.endIndex {
            let end = value[start...].firstIndex(of: UInt8(ascii: ",")) ?? value.endIndex
            let token = UnsafeRawBufferPointer(rebasing: value[start..<end]).trimmingWhitespace()
            start = end + 1
            if token.isCaseInsensitively("close") {
                close = true
            } else if token.isCaseInsensitively("keep-alive") {
                keepAlive = true
            } else if token.isCaseInsensitively("upgrade") {
                upgrade = true
            } else if !token.isEmpty {
                named.append(String(decoding: token, as: UTF8.self).lowercased())
            }
        }
    }
}

extension UInt8 {
    var decimalDigit: Int? {
        self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") ? Int(self - UInt8(ascii: "0")) : nil
    }

    var hexadecimalDigit: Int? {
        switch self {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(self - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(self - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(self - UInt8(ascii: "A")) + 10
        default: nil
        }
    }
}

extension Int {
    /// A length: decimal digits only, at most 18 of them so that it fits.
    init?(decimal bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value = 0
        for byte in bytes {
            guard let digit = byte.decimalDigit else { return nil }
            value = value * 10 + digit
        }
        self = value
    }

    /// A chunk size: hexadecimal digits, at most 15 of them so that it fits.
    init?(hexadecimal bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty, bytes.count <= 15 else { return nil }
        var value = 0
        for byte in bytes {
            guard let digit = byte.hexadecimalDigit else { return nil }
            value = value << 4 | digit
        }
        self = value
    }
}
