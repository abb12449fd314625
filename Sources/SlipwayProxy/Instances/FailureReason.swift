// FailureReason: turns the errors of a connection to an instance into the short phrase that ends a
// 502 body or a health check line ("connection refused", "timed out after 2s").
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum FailureReason {
    static let refused = "connection refused"

    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as NIOConnectionError:
            if let first = error.connectionErrors.first { return describe(first.error) }
            return "its address could not be resolved"
        case let error as IOError:
            switch error.errnoCode {
            case ECONNREFUSED: return refused
            case ECONNRESET: return "connection reset"
            case ETIMEDOUT: return "timed out"
            case EPIPE: return "connection closed"
            case EHOSTUNREACH, ENETUNREACH: return "unreachable"
            case EADDRINUSE: return "address already in use"
            case EADDRNOTAVAIL: return "address not available"
            case EACCES: return "permission denied"
            default: return "connection failed (errno \(error.errnoCode))"
            }
        case ChannelError.connectTimeout(let amount):
            return "connect timed out after \(describe(Duration(amount)))"
        case ChannelError.eof, ChannelError.ioOnClosedChannel, ChannelError.alreadyClosed:
            return "connection closed"
        case is HTTPParserError:
            return "it sent a malformed response"
        default:
            return String(describing: error)
        }
    }

    /// `2s`, `1.5s`, `250ms`: durations as a person reads them in a one-line message.
    static func describe(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        if milliseconds < 1000 { return "\(milliseconds)ms" }
        return "\(milliseconds / 1000).\(milliseconds % 1000 / 100)s"
    }
}
