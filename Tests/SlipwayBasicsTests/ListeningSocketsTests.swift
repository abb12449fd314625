// ListeningSockets reads the kernel's TCP tables and a process tree's sockets: where a process listens.
import Foundation
import Testing

@testable import SlipwayBasics

#if canImport(Glibc)
import Glibc
#endif

struct ListeningSocketsTests {
    @Test func addressesAreReadInTheKernelsByteOrder() {
        #expect(ListeningSockets.address(fromHex: "0100007F:1388") == "127.0.0.1:5000")
        #expect(ListeningSockets.address(fromHex: "00000000:1F90") == "0.0.0.0:8080")
        #expect(ListeningSockets.address(fromHex: "00000000000000000000000001000000:0050") == "[::1]:80")
        #expect(ListeningSockets.address(fromHex: "00000000000000000000000000000000:0016") == "[::]:22")
        #expect(ListeningSockets.address(fromHex: "zz:1") == nil)
        #expect(ListeningSockets.address(fromHex: "0100007F") == nil)
    }

    @Test func aProcessListeningIsFoundWhereItListensAndNowhereElse() throws {
        let before = ListeningSockets.of(processTree: getpid())
        let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(server) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        try #require(bound == 0 && listen(server, 1) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(server, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        let after = ListeningSockets.of(processTree: getpid())
        #expect(Set(after).subtracting(before) == ["127.0.0.1:\(port)"])
        #expect(ListeningSockets.of(processTree: 1 << 22).isEmpty, "no such process")
    }
}
