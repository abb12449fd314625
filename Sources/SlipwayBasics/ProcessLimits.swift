// ProcessLimits: how much of the host one instance of an app's process type may use: memory (bytes), CPU (in
// cores, fractions allowed) and processes. Written as `memory=256m cpu=1.5 pids=512`, read back the same way;
// every value is range-checked, since a tenant's admin types them and the kernel takes them as they are.
import Foundation

public struct ProcessLimits: Sendable, Codable, Equatable {
    public var memory: Int?
    public var cpu: Double?
    public var pids: Int?

    public init(memory: Int? = nil, cpu: Double? = nil, pids: Int? = nil) {
        self.memory = memory
        self.cpu = cpu
        self.pids = pids
    }

    public static let keys = ["memory", "cpu", "pids"]
    static let memoryRange = (4 << 20)...(1 << 40)
    static let cpuRange = 0.01...1024.0
    static let pidsRange = 8...4_194_304

    public var isEmpty: Bool { memory == nil && cpu == nil && pids == nil }

    /// These limits, with `other`'s wherever it sets one.
    public func overridden(by other: ProcessLimits) -> ProcessLimits {
        ProcessLimits(memory: other.memory ?? memory, cpu: other.cpu ?? cpu, pids: other.pids ?? pids)
    }

    /// `memory=256m cpu=1.5 pids=512`, the keys in that order, only those set.
    public var description: String {
        var parts: [String] = []
        if let memory { parts.append("memory=" + ByteSize.format(memory)) }
        if let cpu { parts.append("cpu=" + (cpu == cpu.rounded() ? String(Int(cpu)) : String(cpu))) }
        if let pids { parts.append("pids=\(pids)") }
        return parts.joined(separator: " ")
    }

    /// Reads `KEY=VALUE` words into limits.
    public init(parsing words: [String]) throws(LimitsError) {
        for word in words {
            guard let equals = word.firstIndex(of: "="), word.count <= 64 else { throw .malformed(word) }
            let key = String(word[..<equals])
            let value = String(word[word.index(after: equals)...])
            switch key {
            case "memory":
                guard let bytes = ByteSize.parse(value), Self.memoryRange.contains(bytes) else {
                    throw .outOfRange(word, "a size from 4m to 1024g, such as 256m")
                }
                memory = bytes
            case "cpu":
                guard let cores = Double(value), cores.isFinite, Self.cpuRange.contains(cores) else {
                    throw .outOfRange(word, "a number of CPUs from 0.01 to 1024, such as 1.5")
                }
                cpu = cores
            case "pids":
                guard let count = Int(value), Self.pidsRange.contains(count) else {
                    throw .outOfRange(word, "a number of processes from 8 to 4194304, such as 512")
                }
                pids = count
            default:
                throw .unknownKey(key)
            }
        }
    }
}

public enum LimitsError: UserFacingError, Equatable {
    case malformed(String)
    case unknownKey(String)
    case outOfRange(String, String)

    public var description: String {
        switch self {
        case .malformed(let word):
            "invalid limit \"\(word.prefix(64))\": write KEY=VALUE, such as memory=256m cpu=1.5 pids=512"
        case .unknownKey(let key):
            "unknown limit \"\(key.prefix(32))\": the limits are memory, cpu and pids"
        case .outOfRange(let word, let wanted):
            "invalid limit \"\(word)\": give \(wanted)"
        }
    }
}

/// Sizes as nginx writes them: bytes, or with k, m or g (binary units).
public enum ByteSize {
    public static func parse(_ text: String) -> Int? {
        let units: [Character: Int] = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30]
        let lowered = text.lowercased()
        let unit = lowered.last.flatMap { units[$0] }
        let digits = unit == nil ? lowered : String(lowered.dropLast())
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let number = Int(digits), number >= 0,
            number <= Int.max / (unit ?? 1)
        else { return nil }
        return number * (unit ?? 1)
    }

    /// `256m`, `2g`, `1536k`: a size as it is written.
    public static func format(_ bytes: Int) -> String {
        for (unit, factor) in [("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)] where bytes > 0 && bytes % factor == 0 {
            return "\(bytes / factor)\(unit)"
        }
        return "\(bytes)"
    }
}
