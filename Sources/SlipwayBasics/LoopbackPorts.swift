// LoopbackPorts: free ports on 127.0.0.1 from below the kernel's ephemeral range, so that no outgoing
// connection can take one between the moment it is chosen and the moment its server binds it.
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Ports of a range handed out in turn, from a random start, each checked free by binding it.
///
/// A port found by binding port 0 comes from the ephemeral range, where the kernel also picks the local port of
/// every outgoing connection, the proxy's to other instances included. One of those can take the port before an
/// app that warms up for 30 s binds it, and the app then cannot start. Below that range only explicit binds
/// compete, and handing ports out in turn keeps two boots from being given the same one.
public final class LoopbackPorts: Sendable {
    public let range: Range<Int>
    private let next: Mutex<Int>

    public init(range: Range<Int>) {
        self.range = range
        next = Mutex(Int.random(in: range))
    }

    /// Where app instances listen: the 16,384 ports below the ephemeral range.
    public static let instances = LoopbackPorts(range: max(1024, ephemeral.lowerBound - 16384)..<ephemeral.lowerBound)

    /// The next port of the range that nothing holds; nil if none is free after a few thousand tries.
    public func take() -> Int? {
        for _ in 0..<min(range.count, 4096) {
            let port = next.withLock { port in
                defer { port = port + 1 == range.upperBound ? range.lowerBound : port + 1 }
                return port
            }
            if Self.isFree(port) { return port }
        }
        return nil
    }

    /// The kernel's ephemeral range (`net.ipv4.ip_local_port_range`), Linux's default if it cannot be read.
    public static let ephemeral: ClosedRange<Int> = {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        let bounds = text.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        guard bounds.count == 2, bounds[0] > 1024, bounds[0] <= bounds[1] else { return 32768...60999 }
        return bounds[0]...bounds[1]
    }()

    /// Nothing holds the port: not a listener, not a connection, not one in TIME_WAIT.
    static func isFree(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        return withAddress(port: port) { bind(descriptor, $0, $1) == 0 }
    }

    /// Calls `body` with the socket address 127.0.0.1:`port` and its length, as bind and connect take them.
    public static func withAddress<Result>(
        port: Int,
        _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result
    ) -> Result {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }
}
