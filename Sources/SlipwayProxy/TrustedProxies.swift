// TrustedProxies: the load balancers in front of Slipway (`--trusted-proxies CIDR,…`), which may tell the app where
// a request came from: their `X-Forwarded-For`, `-Proto`, `-Port`, `-Host` and `Forwarded` are passed on, with the
// balancer's own address added to `X-Forwarded-For`. From anyone else those headers are replaced, as ever.
import Foundation
import SlipwayBasics

public struct TrustedProxies: Sendable, Equatable {
    /// One network: its address bytes (4 or 16) and how many leading bits must match.
    struct Network: Sendable, Equatable {
        var bytes: [UInt8]
        var prefix: Int

        func contains(_ address: [UInt8]) -> Bool {
            guard address.count == bytes.count else { return false }
            for bit in 0..<prefix where (address[bit / 8] ^ bytes[bit / 8]) & (0x80 >> UInt8(bit % 8)) != 0 {
                return false
            }
            return true
        }
    }

    var networks: [Network]

    public static let none = TrustedProxies(networks: [])

    public var isEmpty: Bool { networks.isEmpty }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case invalid(String)

        public var description: String {
            switch self {
            case .invalid(let text):
                // Quoted as one line, whatever the value held.
                "\"\(String(text.unicodeScalars.prefix(60).map { $0.value < 0x20 || $0.value == 0x7f ? " " : Character($0) }))\" is not an IP address or network; give addresses or CIDR networks separated "
                    + "by commas, as 10.0.0.0/8,192.168.1.7,fd00::/8"
            }
        }
    }

    /// `10.0.0.0/8,192.168.1.7,fd00::/8`: addresses and CIDR networks, separated by commas; empty or `none` for none.
    public init(parsing text: String) throws(ParseError) {
        var networks: [Network] = []
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) })
        where !item.isEmpty && item != "none" {
            // `/8` alone has no address: empty parts are kept, so that it is refused, never read out of range.
            let parts = item.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard let address = parts.first, let bytes = IPAddress.bytes(of: address) else { throw .invalid(item) }
            let prefix = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
            guard let prefix, (0...bytes.count * 8).contains(prefix) else { throw .invalid(item) }
            networks.append(Network(bytes: bytes, prefix: prefix))
        }
        self.networks = networks
    }

    init(networks: [Network]) { self.networks = networks }

    /// Whether `address` (as the kernel gave it, or as a header wrote it) is one of the trusted proxies.
    public func contains(_ address: String) -> Bool {
        guard !networks.isEmpty, let bytes = IPAddress.bytes(of: address) else { return false }
        return networks.contains { $0.contains(bytes) }
    }

    /// The client a chain of proxies reached the app for: the rightmost address of `X-Forwarded-For` (with the
    /// peer added) that is not a trusted proxy, as nginx's real-ip module reads it; the leftmost if all are.
    func client(in chain: [String]) -> String? {
        chain.last { !contains($0) } ?? chain.first
    }
}
