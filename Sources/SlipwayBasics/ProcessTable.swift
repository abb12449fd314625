// ProcessTable: what /proc says about a process that may not be our child: its start time (which,
// with the pid, tells a process from a later one that reuses the pid), whether it still runs, and
// which processes carry given environment variables.
import Foundation

public enum ProcessTable {
    /// When `pid` started, in clock ticks since boot (field 22 of /proc/PID/stat), or nil if there is no such process.
    public static func startTime(of pid: pid_t) -> UInt64? {
        guard let fields = statFields(of: pid), fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }

    /// Whether `pid` is still the process that started at `startTime` and runs.
    public static func isRunning(_ pid: pid_t, startedAt start: UInt64) -> Bool {
        startTime(of: pid) == start && isRunning(pid)
    }

    /// Whether `pid` runs (a zombie has ended, even if nobody reaped it yet).
    public static func isRunning(_ pid: pid_t) -> Bool {
        guard let state = statFields(of: pid)?.first else { return false }
        return state != "Z" && state != "X"
    }

    /// A process whose environment carries some given variables.
    public struct Entry: Sendable, Equatable {
        public var pid: pid_t
        /// Its parent: a sandbox's init carries its outer process's environment, and is part of the same process.
        public var parent: pid_t
        public var processGroup: pid_t
        public var session: pid_t
        public var environment: [String: String]
    }

    /// The running processes (of this user: others' environments cannot be read) whose environment
    /// holds every one of `variables`, with those values.
    public static func processes(carrying variables: [String: String]) -> [Entry] {
        let wanted = variables.map { "\($0.key)=\($0.value)" }
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) }
        return pids.compactMap { pid in
            guard let data = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ")) else { return nil }
            let lines = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard wanted.allSatisfy(lines.contains), let fields = statFields(of: pid), fields.count > 3,
                fields[0] != "Z", let parent = pid_t(fields[1]), let group = pid_t(fields[2]),
                let session = pid_t(fields[3])
            else { return nil }
            var environment: [String: String] = [:]
            for line in lines {
                guard let equals = line.firstIndex(of: "=") else { continue }
                environment[String(line[..<equals])] = String(line[line.index(after: equals)...])
            }
            return Entry(pid: pid, parent: parent, processGroup: group, session: session, environment: environment)
        }
    }

    /// `pid` and every process under it, from each thread's list of children.
    public static func tree(from pid: pid_t) -> [pid_t] {
        var found: [pid_t] = []
        var next = [pid]
        while let process = next.popLast(), found.count < 4096 {
            found.append(process)
            for thread in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process)/task")) ?? [] {
                let children = ProcFile.text("/proc/\(process)/task/\(thread)/children") ?? ""
                next += children.split(separator: " ").compactMap { pid_t($0) }
            }
        }
        return found
    }

    /// What `pid` is, as far as signalling it goes.
    public enum Kind: Equatable {
        /// Any process: its process group holds everything it started.
        case plain
        /// Bubblewrap's outer process, whose sandbox's init (its child) leads a session and process group of its
        /// own, `group`, which holds the command and everything it starts.
        case sandbox(group: pid_t)
        /// Bubblewrap's outer process before its sandbox has a session of its own.
        case sandboxStarting
    }

    /// Whether `pid` is a bubblewrap sandbox's outer process and, if so, the process group of what runs inside.
    public static func kind(of pid: pid_t) -> Kind {
        guard let name = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8),
            name.trimmingCharacters(in: .whitespacesAndNewlines) == "bwrap"
        else { return .plain }
        let children = ProcFile.text("/proc/\(pid)/task/\(pid)/children") ?? ""
        guard let sandboxInit = children.split(separator: " ").first.flatMap({ pid_t($0) }),
            let fields = statFields(of: sandboxInit), fields.count > 2, let group = pid_t(fields[2]), group != pid
        else { return .sandboxStarting }
        return .sandbox(group: group)
    }

    /// Stops process groups that are not our children (so no waitpid): SIGTERM to each, then SIGKILL for what
    /// still runs after `grace`.
    public static func stop(processGroups: Set<pid_t>, grace: Duration) async {
        guard !processGroups.isEmpty else { return }
        for group in processGroups { kill(-group, SIGTERM) }
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline, processGroups.contains(where: isRunning) {
            try? await Task.sleep(for: .milliseconds(50))
        }
        for group in processGroups { kill(-group, SIGKILL) }
    }

    /// The fields of /proc/PID/stat after the command name (which may hold spaces): state first.
    private static func statFields(of pid: pid_t) -> [Substring]? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let nameEnd = stat.lastIndex(of: ")")
        else { return nil }
        return stat[stat.index(after: nameEnd)...].split(separator: " ")
    }
}
