// ListeningSockets: the TCP addresses a process and its descendants listen on, read from /proc, so that a health
// check can tell an app that is still starting from one that listens on another port than the one it was given.
import Foundation

public enum ListeningSockets {
    /// Where `pid` and every process under it listen, as `127.0.0.1:5000` or `[::]:8000`, sorted; empty when
    /// nothing listens or /proc cannot be read.
    public static func of(processTree pid: pid_t) -> [String] {
        var inodes: Set<UInt64> = []
        for process in ProcessTable.tree(from: pid) {
            let folder = "/proc/\(process)/fd"
            for fd in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: folder + "/" + fd),
                    target.hasPrefix("socket:["), let inode = UInt64(target.dropFirst(8).dropLast())
                else { continue }
                inodes.insert(inode)
            }
        }
        guard !inodes.isEmpty else { return [] }
        let table = ["/proc/net/tcp", "/proc/net/tcp6"].flatMap { listening(inTable: $0) }
        return Set(table.filter { inodes.contains($0.inode) }.map(\.address)).sorted()
    }

    /// The listening sockets of one of the kernel's TCP tables: each line's local address and inode.
    static func listening(inTable path: String) -> [(address: String, inode: UInt64)] {
        guard let text = ProcFile.text(path) else { return [] }
        return text.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: " ")
            // sl, local address, remote address, state (0A: listen), queues, timer, retransmits, uid, timeout, inode
            guard fields.count > 9, fields[3] == "0A", let inode = UInt64(fields[9]),
                let address = address(fromHex: fields[1])
            else { return nil }
            return (address, inode)
        }
    }

    /// `0100007F:1388` as `127.0.0.1:5000`; an IPv6 address as `[::1]:5000`. The kernel writes each 32-bit word of
    /// the address in the host's byte order.
    static func address(fromHex text: Substring) -> String? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1], radix: 16) else { return nil }
        let hex = parts[0]
        guard hex.count == 8 || hex.count == 32 else { return nil }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 8)
            guard let word = UInt32(hex[index..<next], radix: 16) else { return nil }
            withUnsafeBytes(of: word) { bytes += $0 }
            index = next
        }
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") + ":\(port)" }
        var storage = in6_addr()
        withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &storage, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        let text = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return "[\(String(decoding: text, as: UTF8.self))]:\(port)"
    }
}
