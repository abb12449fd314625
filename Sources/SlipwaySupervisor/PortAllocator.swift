// PortAllocator: finds a free loopback port for a web instance.
import SlipwayBasics

#if canImport(Glibc)
import Glibc
#endif

public enum PortError: UserFacingError {
    case noFreePort(errno: Int32)

    public var description: String {
        switch self {
        case .noFreePort(let code):
            "no free port on 127.0.0.1 for a new instance: \(String(cString: strerror(code))); stop unused processes"
        }
    }
}

enum PortAllocator {
    /// Asks the kernel for an unused port by binding port 0, then releases it for the instance to bind.
    static func freePort() throws(PortError) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw .noFreePort(errno: errno) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
            }
        }
        guard bound else { throw .noFreePort(errno: errno) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
