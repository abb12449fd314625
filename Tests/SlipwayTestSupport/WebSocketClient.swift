// WebSocketClient: just enough of RFC 6455 over a blocking socket to open a WebSocket through the
// proxy or to Chromium's DevTools, send text frames and read back frames or whole messages.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

public final class WebSocketClient {
    private let fd: Int32
    private var buffer: [UInt8] = []

    /// Connects to 127.0.0.1:`port` and upgrades `path` on `host`; throws unless the answer is 101.
    public init(port: Int, host: String, path: String) throws {
        fd = try connectToLoopback(port: port, receiveTimeout: 20)
        try send(
            Array(
                ("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").utf8
            )
        )
        while !buffer.contains(sequence: [13, 10, 13, 10]) { try fill() }
        let end = buffer.firstRange(of: [13, 10, 13, 10])!
        let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
        buffer.removeSubrange(..<end.upperBound)
        guard head.hasPrefix("HTTP/1.1 101") else { throw HTTPClientError.malformed(head) }
    }

    /// Connects to a loopback `ws://` URL, such as DevTools' `ws://127.0.0.1:PORT/devtools/page/ID`.
    public convenience init(url: String) throws {
        guard let parts = URLComponents(string: url), parts.scheme == "ws", let host = parts.host,
            host == "127.0.0.1" || host == "localhost", let port = parts.port
        else { throw HTTPClientError.malformed(url) }
        let query = parts.percentEncodedQuery.map { "?" + $0 } ?? ""
        try self.init(port: port, host: "\(host):\(port)", path: parts.percentEncodedPath + query)
    }

    deinit { close(fd) }

    /// Sends one masked text frame (as a client must).
    public func sendText(_ text: String) throws {
        try sendFrame(opcode: 0x1, payload: Array(text.utf8))
    }

    /// The next frame from the server: its opcode (1 text, 8 close) and payload; nil once the connection
    /// closed. Throws `timedOut` after 20 s of silence.
    public func receive() throws -> (opcode: UInt8, payload: [UInt8])? {
        do {
            let frame = try readFrame(before: nil)
            return (frame.opcode, frame.payload)
        } catch HTTPClientError.closed {
            return nil
        }
    }

    /// The next whole text (1) or binary (2) message, its fragments joined, answering pings on the way;
    /// nil once the server closed. Throws `timedOut` unless the message is complete by `deadline`.
    public func receiveMessage(before deadline: ContinuousClock.Instant) throws -> (opcode: UInt8, payload: [UInt8])? {
        var message: (opcode: UInt8, payload: [UInt8])?
        do {
            while true {
                let frame = try readFrame(before: deadline)
                switch frame.opcode {
                case 0x0: message?.payload.append(contentsOf: frame.payload)
                case 0x8: return nil
                case 0x9: try sendFrame(opcode: 0xA, payload: frame.payload)
                case 0xA: break
                default: message = (frame.opcode, frame.payload)
                }
                // Control frames (opcode 8 and up) may come between a message's fragments.
                if frame.fin && frame.opcode < 0x8, let message { return message }
            }
        } catch HTTPClientError.closed {
            return nil
        }
    }

    /// One frame: whether it ends its message, its opcode and its payload.
    private typealias Frame = (fin: Bool, opcode: UInt8, payload: [UInt8])

    /// The next frame, waiting for it until `deadline` (without one, 20 s of silence at most).
    private func readFrame(before deadline: ContinuousClock.Instant?) throws -> Frame {
        while buffer.count < 2 { try fill(before: deadline) }
        var length = Int(buffer[1] & 0x7f)
        var offset = 2
        if length >= 126 {
            // 126: the length follows in 16 bits, 127: in 64 bits.
            offset += length == 126 ? 2 : 8
            while buffer.count < offset { try fill(before: deadline) }
            length = buffer[2..<offset].reduce(0) { $0 << 8 | Int($1) }
            guard length >= 0 else { throw HTTPClientError.malformed("a frame length over 2^63") }
        }
        while buffer.count < offset + length { try fill(before: deadline) }
        let frame = (buffer[0] & 0x80 != 0, buffer[0] & 0x0f, Array(buffer[offset..<offset + length]))
        buffer.removeSubrange(..<(offset + length))
        return frame
    }

    /// Sends one final frame, masked as a client must, with its length in as many bytes as it needs.
    private func sendFrame(opcode: UInt8, payload: [UInt8]) throws {
        var frame: [UInt8] = [0x80 | opcode]
        switch payload.count {
        case ..<126: frame.append(0x80 | UInt8(payload.count))
        case ..<65536: frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xff)]
        default: frame += [0x80 | 127] + (0..<8).reversed().map { UInt8(truncatingIfNeeded: payload.count >> ($0 * 8)) }
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        try send(frame + mask + payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
    }

    private func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            guard count > 0 else { throw HTTPClientError.closed }
            sent += count
        }
    }

    /// Reads what has arrived; with a deadline, waits for it no longer than that.
    private func fill(before deadline: ContinuousClock.Instant? = nil) throws {
        if let deadline { try waitForData(before: deadline) }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count < 0 && errno == EINTR { return }
        if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { throw HTTPClientError.timedOut }
        guard count > 0 else { throw HTTPClientError.closed }
        buffer.append(contentsOf: chunk[0..<count])
    }

    private func waitForData(before deadline: ContinuousClock.Instant) throws {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let milliseconds = max(0, ((deadline - .now) / .milliseconds(1)).rounded(.up))
            let ready = poll(&descriptor, 1, Int32(min(milliseconds, Double(Int32.max))))
            if ready > 0 { return }
            guard ready < 0 && errno == EINTR else { throw HTTPClientError.timedOut }
        }
    }
}

extension Array where Element == UInt8 {
    fileprivate func contains(sequence: [UInt8]) -> Bool { firstRange(of: sequence) != nil }
}
