// IPAddress: an IP address as the bytes it is made of, read from how it is written (`10.0.0.1`, `fd00::1`).
import Foundation

#if canImport(Glibc)
import Glibc
#endif

public enum IPAddress {
    /// The address's 4 or 16 bytes; an IPv4 address written in IPv6 (`::ffff:10.0.0.1`) as its 4; nil for anything
    /// that is not an address.
    public static func bytes(of text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        return bytes[0..<12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] ? Array(bytes[12...]) : bytes
    }
}
