// WebSocketClient: just enough of RFC 6455 over a blocking socket to open a WebSocket through the
// proxy, send a text frame and read what comes back.
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

    deinit { close(fd) }

    /// Sends one masked text frame (as a client must).
    public func sendText(_ text: String) throws {
        let payload = Array(text.utf8)
        precondition(payload.count < 126, "short frames only")
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        try send(
            [0x81, 0x80 | UInt8(payload.count)] + mask + payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        )
    }

    /// The next frame from the server: its opcode (1 text, 8 close) and payload; nil once the connection
    /// closed. Throws `timedOut` after 20 s of silence.
    public func receive() throws -> (opcode: UInt8, payload: [UInt8])? {
        do {
            while buffer.count < 2 { try fill() }
            var length = Int(buffer[1] & 0x7f)
            var offset = 2
            if length == 126 {
                while buffer.count < 4 { try fill() }
                length = Int(buffer[2]) << 8 | Int(buffer[3])
                offset = 4
            }
            while buffer.count < offset + length { try fill() }
            let frame = (buffer[0] & 0x0f, Array(buffer[offset..<offset + length]))
            buffer.removeSubrange(..<(offset + length))
            return frame
        } catch HTTPClientError.closed {
            return nil
        }
    }

    private func send(_ bytes: [UInt8]) throws {
        let count = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard count == bytes.count else { throw HTTPClientError.closed }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { throw HTTPClientError.timedOut }
        guard count > 0 else { throw HTTPClientError.closed }
        buffer.append(contentsOf: chunk[0..<count])
    }
}

extension Array where Element == UInt8 {
    fileprivate func contains(sequence: [UInt8]) -> Bool { firstRange(of: sequence) != nil }
}
