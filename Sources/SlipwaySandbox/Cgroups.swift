// Cgroups: the kernel's control groups that hold each instance to its limits (ProcessLimits). One group per
// instance, `<app>.<type>.<n>`, under a folder of this daemon's own: with cgroup v2 (Debian 12 under systemd) in
// the service's delegated subtree (the unit's Delegate=yes), the daemon itself moved to a leaf of it, as v2 wants;
// with cgroup v1 (as on hosts that mount it, like this one) under `slipway/<data directory's hash>` of each of the
// memory, cpu and pids hierarchies, which only root can write. The instance joins its groups before it runs
// anything (see SandboxLauncher), so nothing it starts escapes them.
import Foundation
import SlipwayBasics

#if canImport(Glibc)
import Glibc
#endif

public struct Cgroups: Sendable, Equatable {
    enum Layout: Sendable, Equatable {
        /// The folder holding each instance's group, with the memory, cpu and pids controllers on.
        case v2(String)
        /// The folder holding each instance's group, in each of the memory, cpu and pids hierarchies.
        case v1(memory: String, cpu: String, pids: String)
    }

    let layout: Layout

    public enum Outcome: Sendable, Equatable {
        case available(Cgroups)
        /// Why limits cannot be applied here, as a sentence ending in what to do.
        case unavailable(String)

        public var available: Cgroups? { if case .available(let cgroups) = self { cgroups } else { nil } }
        public var unavailableReason: String? { if case .unavailable(let reason) = self { reason } else { nil } }
    }

    /// Makes this daemon's folders, once at start, in the control groups mounted at `root`.
    public static func prepare(data: DataDirectory, root: String = "/sys/fs/cgroup") -> Outcome {
        let files = FileManager.default
        if files.fileExists(atPath: root + "/cgroup.controllers") {
            return prepareV2(root: root)
        }
        // The data directory's path as a short name: two daemons on one host keep their groups apart.
        let scope = "slipway/" + FNV1a.hex(data.root)
        let memory = root + "/memory"
        let cpu = root + "/cpu"
        let pids = root + "/pids"
        // A hierarchy's root has no limit files of its own (pids.max), so each is known by its controller's files.
        guard files.fileExists(atPath: memory + "/memory.limit_in_bytes"),
            files.fileExists(atPath: cpu + "/cpu.cfs_period_us"), files.fileExists(atPath: pids + "/cgroup.procs")
        else {
            return .unavailable(
                "this host mounts neither cgroup v2 nor the memory, cpu and pids hierarchies of cgroup v1"
                    + " at \(root): mount them to use limits"
            )
        }
        let layout = Layout.v1(memory: memory + "/" + scope, cpu: cpu + "/" + scope, pids: pids + "/" + scope)
        for folder in [memory, cpu, pids].map({ $0 + "/" + scope }) {
            do {
                try files.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                return .unavailable(
                    "cgroup v1 at \(root) can be written only by root (\(Self.reason(of: error))): run slipway serve"
                        + " as root, or on a host with cgroup v2 under systemd with Delegate=yes"
                )
            }
        }
        return .available(Cgroups(layout: layout))
    }

    private static func prepareV2(root: String) -> Outcome {
        let own =
            ((try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? "")
            .split(separator: "\n").first { $0.hasPrefix("0::") }.map { String($0.dropFirst(3)) } ?? ""
        let base = root + (own == "/" ? "" : own)
        let daemon = base + "/slipway-daemon"
        let controllers = "+memory +cpu +pids"
        do {
            if !base.hasSuffix("/slipway-daemon") {
                try FileManager.default.createDirectory(atPath: daemon, withIntermediateDirectories: true)
                // v2 lets only leaves hold processes: the daemon moves into one, so its group can hand on controllers.
                try "\(getpid())".write(toFile: daemon + "/cgroup.procs", atomically: false, encoding: .utf8)
            }
            let parent = base.hasSuffix("/slipway-daemon") ? (base as NSString).deletingLastPathComponent : base
            try controllers.write(toFile: parent + "/cgroup.subtree_control", atomically: false, encoding: .utf8)
            let appsFolder = parent + "/slipway-apps"
            try FileManager.default.createDirectory(atPath: appsFolder, withIntermediateDirectories: true)
            try controllers.write(toFile: appsFolder + "/cgroup.subtree_control", atomically: false, encoding: .utf8)
            return .available(Cgroups(layout: .v2(appsFolder)))
        } catch {
            return .unavailable(
                "cgroup v2 at \(base) cannot be delegated to Slipway (\(Self.reason(of: error))): run slipway serve"
                    + " under systemd with Delegate=yes (systemd/slipway.service has it), or as root"
            )
        }
    }

    /// The folders of instance `name`'s groups, made or updated with `limits`: its processes join each.
    func groups(for name: String, limits: ProcessLimits) throws -> [String] {
        switch layout {
        case .v2(let apps):
            let group = apps + "/" + name
            try FileManager.default.createDirectory(atPath: group, withIntermediateDirectories: true)
            try write(limits.memory.map(String.init) ?? "max", to: group + "/memory.max")
            try write(limits.memory == nil ? "max" : "0", to: group + "/memory.swap.max", optional: true)
            try write(
                limits.cpu.map { "\(Int(($0 * 100_000).rounded())) 100000" } ?? "max 100000",
                to: group + "/cpu.max"
            )
            try write(limits.pids.map(String.init) ?? "max", to: group + "/pids.max")
            return [group]
        case .v1(let memory, let cpu, let pids):
            let groups = [memory, cpu, pids].map { $0 + "/" + name }
            for group in groups {
                try FileManager.default.createDirectory(atPath: group, withIntermediateDirectories: true)
            }
            try write(limits.memory.map(String.init) ?? "-1", to: groups[0] + "/memory.limit_in_bytes")
            try write("100000", to: groups[1] + "/cpu.cfs_period_us")
            try write(
                limits.cpu.map { "\(Int(($0 * 100_000).rounded()))" } ?? "-1",
                to: groups[1] + "/cpu.cfs_quota_us"
            )
            try write(limits.pids.map(String.init) ?? "max", to: groups[2] + "/pids.max")
            return groups
        }
    }

    /// Removes the groups of `app`'s instances, once they are all stopped.
    func remove(app: AppName) {
        let folders: [String] =
            switch layout {
            case .v2(let apps): [apps]
            case .v1(let memory, let cpu, let pids): [memory, cpu, pids]
            }
        for folder in folders {
            let groups = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            for group in groups where group.hasPrefix(app.rawValue + ".") { rmdir(folder + "/" + group) }
        }
    }

    /// How many of instance `name`'s processes the kernel killed for memory so far.
    func memoryKills(of name: String) -> Int {
        let (path, prefix) =
            switch layout {
            case .v2(let apps): (apps + "/" + name + "/memory.events", "oom_kill ")
            case .v1(let memory, _, _): (memory + "/" + name + "/memory.oom_control", "oom_kill ")
            }
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) }
            ?? 0
    }

    private func write(_ value: String, to path: String, optional: Bool = false) throws {
        do {
            try value.write(toFile: path, atomically: false, encoding: .utf8)
        } catch  where optional {}
    }

    private static func reason(of error: any Error) -> String {
        (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
    }
}
