// The daemon runs one event loop per CPU it may run on: pinned to one CPU (taskset, systemd's CPUAffinity=),
// it runs one, since a second would only take turns with the first on that CPU; unpinned, one per CPU.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct EventLoopTests {
    @Test func aDaemonRunsOneEventLoopPerCPUItMayUse() async throws {
        try await DaemonHarness.with(pinnedTo: 0) { daemon, _ in
            let loops = try eventLoops(of: daemon.process.pid)
            #expect(loops == 1)
            #expect(try HTTPConnection(port: daemon.port).get("/", host: "nothing.localhost").status == 404)
        }
        try await DaemonHarness.with { daemon, _ in
            let loops = try eventLoops(of: daemon.process.pid)
            #expect(loops == CPUs.available)
        }
    }

    /// SwiftNIO names each thread of the daemon's event loop group NIO-SGLTN-<group>-#<loop>.
    private func eventLoops(of pid: pid_t) throws -> Int {
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
        return tasks.filter { task in
            let name = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/comm", encoding: .utf8)
            return name?.hasPrefix("NIO-SGLTN-") ?? false
        }.count
    }
}
