// Specifications for the options on the proxy's accepted client sockets, read back from the kernel.
import Foundation
import Testing

@testable import SlipwayProxy

#if canImport(Glibc)
import Glibc
#endif

@Suite("Client socket options", .timeLimit(.minutes(1)))
struct SocketOptionTests {
    @Test(
        "an accepted client socket has TCP_NODELAY at the TCP level, and not SOL_SOCKET's SO_DEBUG of the same number"
    )
    func noDelayAtTheTCPLevel() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("web", host: "web.test", release: 1, to: [try await proxy.backend("web")])
            let raw = try await proxy.rawClient()
            try await raw.send("GET / HTTP/1.1\r\nHost: web.test\r\n\r\n")
            _ = try await raw.waitFor("\r\n\r\nweb")
            // The proxy runs in this process: its end of the connection is one of our descriptors.
            let clientPort = try #require(raw.localPort)
            let accepted = try #require(AcceptedSocket.find(localPort: proxy.port, peerPort: clientPort))
            #expect(accepted.option(Int32(IPPROTO_TCP), TCP_NODELAY) == 1)
            // SO_DEBUG needs CAP_NET_ADMIN: asking for it closed every connection of a daemon not run as root.
            #expect(accepted.option(SOL_SOCKET, SO_DEBUG) == 0)
        }
    }
}

/// One of this process's TCP sockets, found by its two ports.
private struct AcceptedSocket {
    let descriptor: Int32

    static func find(localPort: Int, peerPort: Int) -> AcceptedSocket? {
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for descriptor in descriptors.compactMap({ Int32($0) }) {
            if port(of: descriptor, getsockname) == localPort && port(of: descriptor, getpeername) == peerPort {
                return AcceptedSocket(descriptor: descriptor)
            }
        }
        return nil
    }

    private static func port(
        of descriptor: Int32,
        _ name: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32
    ) -> Int? {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { name(descriptor, $0, &length) == 0 }
        }
        guard named, address.sin_family == sa_family_t(AF_INET) else { return nil }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    func option(_ level: Int32, _ name: Int32) -> Int32 {
        var value: Int32 = -1
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(descriptor, level, name, &value, &length) == 0 ? value : -1
    }
}
