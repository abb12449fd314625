import Foundation
import Logging
import SlipwayBasics
import SlipwaySupervisor
import SlipwayTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct SupervisorTests {
    private func spec(_ command: String, in directory: TemporaryDirectory) throws -> InstanceSpec {
        InstanceSpec(
            app: try AppName(validating: "shop"),
            release: ReleaseVersion(2),
            processType: "web",
            command: command,
            directory: directory.path,
            environment: ["PATH": "/usr/bin:/bin", "GREETING": "hi"],
            logFile: directory.path + "/web.1.log"
        )
    }

    private func waitForLog(_ path: String, toContain text: String) async throws -> String {
        for _ in 0..<100 {
            let log = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            if log.contains(text) { return log }
            try await Task.sleep(for: .milliseconds(50))
        }
        return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    @Test func aLogOverItsLimitIsRotatedWhileTheInstanceKeepsWritingToIt() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let supervisor = Supervisor(
            stopGrace: .seconds(2),
            logLimit: LogLimit(maxBytes: 1000, keep: 2),
            launcher: DirectLauncher(),
            logger: Logger(label: "test")
        )
        let instance = try await supervisor.boot(
            try spec("i=0; while true; do echo \"line $i\"; i=$((i+1)); sleep 0.002; done", in: directory)
        )
        let rotating = Task { await supervisor.keepLogsRotated(every: .milliseconds(100)) }
        let log = instance.spec.logFile
        for _ in 0..<400 where !FileManager.default.fileExists(atPath: log + ".2") {
            try await Task.sleep(for: .milliseconds(50))
        }
        rotating.cancel()
        await rotating.value
        // The instance writes on after the last rotation: wait for a whole line in the emptied file.
        #expect(await eventually { (try? Data(contentsOf: URL(fileURLWithPath: log)))?.contains(10) == true })
        let current = try Data(contentsOf: URL(fileURLWithPath: log))
        await supervisor.stop(instance)

        #expect(FileManager.default.fileExists(atPath: log + ".2"))
        #expect(!FileManager.default.fileExists(atPath: log + ".3"), "only two rotated copies are kept")
        let older = try String(contentsOfFile: log + ".2", encoding: .utf8)
        let newer = try String(contentsOfFile: log + ".1", encoding: .utf8)
        // Each line as kept: `TIME v1 web.1| line N`.
        func numbers(_ text: String) -> [Int] {
            text.split(separator: "\n").compactMap { $0.split(separator: "| line ").last.flatMap { Int($0) } }
        }
        let (olderLast, newerFirst, newerLast) = (numbers(older).last, numbers(newer).first, numbers(newer).last)
        #expect(olderLast != nil && newerFirst != nil, "\(older.prefix(100)) / \(newer.prefix(100))")
        #expect((olderLast ?? .max) < (newerFirst ?? 0), "each copy holds later lines than the one before")
        // The instance writes on at the start of the emptied file: no hole of zeros where the old lines were.
        #expect(current.first != 0 && current.count < 20_000, "\(current.count) bytes")
        #expect((numbers(String(decoding: current, as: UTF8.self)).first ?? 0) > (newerLast ?? .max))
    }

    @Test func anInstanceGetsItsPortEnvironmentAndProfileScriptsAndLogsToItsFile() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(
            atPath: directory.path + "/.profile.d",
            withIntermediateDirectories: true
        )
        try "export FROM_PROFILE=yes\n".write(
            toFile: directory.path + "/.profile.d/app.sh",
            atomically: true,
            encoding: .utf8
        )
        let supervisor = Supervisor(stopGrace: .seconds(2), launcher: DirectLauncher(), logger: Logger(label: "test"))
        let instance = try await supervisor.boot(
            try spec("echo \"port=$PORT greeting=$GREETING profile=$FROM_PROFILE\"; sleep 60", in: directory)
        )
        let log = try await waitForLog(instance.spec.logFile, toContain: "port=")
        #expect(log.contains("port=\(instance.port!) greeting=hi profile=yes"))
        await supervisor.stop(instance)
        #expect(instance.exitStatus == .signalled(SIGTERM))
        #expect(
            kill(instance.pid, 0) != 0
                || (try? String(contentsOfFile: "/proc/\(instance.pid)/stat", encoding: .utf8))?.contains(" Z ") == true
        )
    }

    @Test func anInstanceThatIgnoresSIGTERMIsKilledAfterTheGracePeriod() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let supervisor = Supervisor(
            stopGrace: .milliseconds(500),
            launcher: DirectLauncher(),
            logger: Logger(label: "test")
        )
        let instance = try await supervisor.boot(
            try spec("trap '' TERM; echo ready; while true; do sleep 1; done", in: directory)
        )
        _ = try await waitForLog(instance.spec.logFile, toContain: "ready")
        let started = ContinuousClock.now
        await supervisor.stop(instance)
        #expect(instance.exitStatus == .signalled(SIGKILL))
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test func anInstanceThatExitsWhileBootingIsNotRestarted() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let events = Mutex<[InstanceEvent]>([])
        let supervisor = Supervisor(stopGrace: .seconds(1), launcher: DirectLauncher(), logger: Logger(label: "test")) {
            _,
            event in
            events.withLock { $0.append(event) }
        }
        let instance = try await supervisor.boot(try spec("echo 'DATABASE_URL is not set' >&2; exit 3", in: directory))
        for _ in 0..<100 where instance.exitStatus == nil { try await Task.sleep(for: .milliseconds(20)) }
        #expect(instance.exitStatus == .exited(3))
        #expect(supervisor.lastOutput(of: instance, lines: 5) == ["DATABASE_URL is not set"])
        #expect(events.withLock { $0.last } == .crashed(.exited(3), restartIn: nil))
    }

    @Test func aServingInstanceThatCrashesIsRestartedOnTheSamePort() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let supervisor = Supervisor(stopGrace: .seconds(1), launcher: DirectLauncher(), logger: Logger(label: "test"))
        let instance = try await supervisor.boot(try spec("echo \"up on $PORT\"; sleep 60", in: directory))
        _ = try await waitForLog(instance.spec.logFile, toContain: "up on")
        await supervisor.markServing(instance)
        let firstPID = instance.pid
        kill(firstPID, SIGKILL)
        for _ in 0..<100 where instance.pid == firstPID { try await Task.sleep(for: .milliseconds(50)) }
        #expect(instance.pid != firstPID)
        #expect(instance.exitStatus == nil)
        let log = try await waitForLog(instance.spec.logFile, toContain: "up on \(instance.port!)\nup on")
        #expect(log.components(separatedBy: "up on \(instance.port!)").count == 3)
        await supervisor.stop(instance)
    }
}
