// CPUs: how many processors this process may run on, which sizes the event loops and boot batches.
import Foundation

public enum CPUs {
    /// The CPUs in this process's affinity mask (`taskset`, systemd's CPUAffinity=, a cpuset), read from
    /// `Cpus_allowed_list` in /proc/self/status; Foundation's processor counts count every online CPU instead.
    public static var available: Int {
        let fallback = max(1, ProcessInfo.processInfo.activeProcessorCount)
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") })
        else { return fallback }
        return count(list: line.dropFirst("Cpus_allowed_list:".count)) ?? fallback
    }

    /// `0-3,8,10-11` → 7; nil when the list does not read as one.
    static func count(list: Substring) -> Int? {
        var total = 0
        for range in list.split(separator: ",") {
            let bounds = range.split(separator: "-").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            switch bounds.count {
            case 1:
                guard bounds[0] != nil else { return nil }
                total += 1
            case 2:
                guard let low = bounds[0], let high = bounds[1], high >= low else { return nil }
                total += high - low + 1
            default: return nil
            }
        }
        return total > 0 ? total : nil
    }
}
