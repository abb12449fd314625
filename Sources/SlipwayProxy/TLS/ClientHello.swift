// ClientHello: what the proxy reads from a TLS client's first message before any TLS handler exists: the host it
// asks for (SNI, RFC 6066) and the protocols it offers (ALPN, RFC 7301). The certificate is chosen from both: a host
// gets its own, and an ACME CA checking a TLS-ALPN-01 challenge (offering only `acme-tls/1`) gets the challenge's.
// Strangers write these bytes: every length is checked against what holds it, and anything else is `notAHello`.
import NIOCore

struct ClientHello: Equatable {
    /// The host name asked for, as sent (ASCII), if any.
    var serverName: String?
    /// The application protocols offered, in the client's order.
    var protocols: [String] = []

    enum Reading: Equatable {
        case incomplete
        case read(ClientHello)
        case notAHello
    }

    /// The largest TLS record (RFC 8446 5.1); a hello longer than one record is not read (as NIO's SNIHandler).
    static let maxRecordBytes = 1 << 14

    /// Reads the hello from the first TLS record at the start of `bytes`.
    static func read(_ bytes: ByteBuffer) -> Reading {
        var record = bytes
        guard let contentType = record.readInteger(as: UInt8.self) else { return .incomplete }
        guard contentType == 22 else { return .notAHello }
        guard let major = record.readInteger(as: UInt8.self), record.readInteger(as: UInt8.self) != nil,
            let length = record.readInteger(as: UInt16.self)
        else { return .incomplete }
        guard major == 3, length <= maxRecordBytes else { return .notAHello }
        guard var body = record.readSlice(length: Int(length)) else { return .incomplete }
        guard let hello = parse(&body) else { return .notAHello }
        return .read(hello)
    }

    /// The handshake message of one record: a ClientHello that fills it exactly.
    private static func parse(_ body: inout ByteBuffer) -> ClientHello? {
        guard body.readInteger(as: UInt8.self) == 1, let high = body.readInteger(as: UInt8.self),
            let low = body.readInteger(as: UInt16.self), Int(high) << 16 | Int(low) == body.readableBytes,
            body.readSlice(length: 2 + 32) != nil,
            body.readLengthPrefixed(UInt8.self) != nil,
            body.readLengthPrefixed(UInt16.self) != nil,
            body.readLengthPrefixed(UInt8.self) != nil
        else { return nil }
        var hello = ClientHello()
        guard body.readableBytes > 0 else { return hello }
        guard var extensions = body.readLengthPrefixed(UInt16.self), body.readableBytes == 0 else { return nil }
        while extensions.readableBytes > 0 {
            guard let kind = extensions.readInteger(as: UInt16.self),
                var data = extensions.readLengthPrefixed(UInt16.self)
            else { return nil }
            switch kind {
            case 0:
                guard var names = data.readLengthPrefixed(UInt16.self) else { return nil }
                while names.readableBytes > 0 {
                    guard let nameType = names.readInteger(as: UInt8.self),
                        let name = names.readLengthPrefixed(UInt16.self)
                    else { return nil }
                    if nameType == 0, hello.serverName == nil {
                        guard name.readableBytesView.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
                        hello.serverName = String(buffer: name)
                    }
                }
            case 16:
                guard var offered = data.readLengthPrefixed(UInt16.self) else { return nil }
                while offered.readableBytes > 0 {
                    guard let name = offered.readLengthPrefixed(UInt8.self), name.readableBytes > 0 else { return nil }
                    hello.protocols.append(String(decoding: name.readableBytesView, as: UTF8.self))
                }
            default:
                break
            }
        }
        return hello
    }
}

extension ByteBuffer {
    /// The bytes after a big-endian length of type `Length`, if all of them are there.
    fileprivate mutating func readLengthPrefixed<Length: FixedWidthInteger>(_: Length.Type) -> ByteBuffer? {
        let start = readerIndex
        guard let length = readInteger(as: Length.self), let slice = readSlice(length: Int(length)) else {
            moveReaderIndex(to: start)
            return nil
        }
        return slice
    }
}
