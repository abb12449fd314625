import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct SpawnerTests {
    @Test func streamsEachLineOfStdoutAndStderrAsItComes() async throws {
        let lines = Transcript()
        let status = try await Spawner.run(
            Command("/bin/sh", ["-c", "echo one; echo two >&2; printf three"], environment: ["PATH": "/usr/bin:/bin"])
        ) { lines.append($0) }
        #expect(status == .exited(0))
        #expect(lines.text == "one\ntwo\nthree")
    }

    @Test("a line without end is cut at 64 KiB and says how much was left out, so reading it holds a bounded amount")
    func anEndlessLineIsCut() async throws {
        let lines = Transcript(keptBytesEachEnd: 1 << 30)
        let status = try await Spawner.run(
            Command(
                "/bin/sh",
                ["-c", "head -c 3000000 /dev/zero | tr '\\0' a; echo; echo next"],
                environment: ["PATH": "/usr/bin:/bin"]
            )
        ) { lines.append($0) }
        #expect(status == .exited(0))
        let text = lines.text.split(separator: "\n").map(String.init)
        #expect(text.count == 2)
        #expect(text.first?.hasPrefix(String(repeating: "a", count: Spawner.maximumLineBytes) + " [… ") == true)
        #expect(
            text.first?.hasSuffix(" [… \(3_000_000 - Spawner.maximumLineBytes) more bytes of this line left out]")
                == true
        )
        #expect(text.last == "next")
    }

    @Test func reportsTheExitStatusAndTheExplicitEnvironmentOnly() async throws {
        let (status, output) = try await DirectLauncher().output(
            of: Command("/bin/sh", ["-c", "echo \"[$GREETING][$HOME]\"; exit 7"], environment: ["GREETING": "hi"]),
            for: .platform
        )
        #expect(status == .exited(7))
        #expect(output == "[hi][]")
    }

    @Test func aMissingProgramIsOneClearError() async throws {
        let error = await #expect(throws: SpawnError.self) {
            try await DirectLauncher().output(
                of: Command("no-such-program-here", [], environment: ["PATH": "/usr/bin:/bin"]),
                for: .platform
            )
        }
        #expect(error?.description.contains("could not start no-such-program-here") == true)
    }

    @Test func stopReachesTheWholeProcessGroupEvenWhenTheLeaderIgnoresSIGTERM() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let pidFile = directory.path + "/grandchild.pid"
        // The shell ignores TERM; its background sleep is a grandchild in the same group.
        let child = try Spawner.start(
            Command("/bin/sh", ["-c", "trap '' TERM; sleep 300 & echo $! > \(pidFile); wait"], environment: [:]),
            logFile: directory.path + "/log"
        )
        var grandchild: pid_t = 0
        for _ in 0..<100 where grandchild == 0 {
            grandchild =
                pid_t(
                    (try? String(contentsOfFile: pidFile, encoding: .utf8))?.trimmingCharacters(
                        in: .whitespacesAndNewlines
                    ) ?? ""
                ) ?? 0
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(grandchild > 0)
        let status = await child.stop(grace: .milliseconds(300))
        #expect(status == .signalled(SIGKILL))
        #expect(child.exitStatus == status)
        // The grandchild got the group signal too (it may linger as a zombie of init; /proc tells).
        #expect(
            await eventually {
                let state = (try? String(contentsOfFile: "/proc/\(grandchild)/stat", encoding: .utf8))?
                    .split(separator: " ")[2]
                return state == nil || state == "Z"
            }
        )
    }

    @Test func cancellingARunStopsTheChild() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let started = directory.path + "/started"
        let task = Task {
            try await Spawner.run(
                Command("/bin/sh", ["-c", "touch \(started); exec sleep 30"], environment: [:]),
                grace: .seconds(1)
            ) { _ in }
        }
        #expect(await eventually { FileManager.default.fileExists(atPath: started) })
        task.cancel()
        // Stopped by the signal, not by sleeping its 30 s out.
        #expect(try await task.value == .signalled(SIGTERM))
    }
}

@Suite struct NameTests {
    @Test(arguments: ["shop", "a", "my-app-2", String(repeating: "a", count: 30)])
    func acceptsValidAppNames(_ name: String) throws {
        #expect(try AppName(validating: name).rawValue == name)
    }

    @Test(arguments: ["", "Shop", "2shop", "-shop", "shop_1", "shop.io", "../etc", String(repeating: "a", count: 31)])
    func refusesInvalidAppNamesWithTheRule(_ name: String) {
        let error = #expect(throws: NameError.self) { try AppName(validating: name) }
        #expect(error?.description.contains("lowercase letters, digits and dashes") == true)
    }

    @Test func readsReleasesWrittenEitherWay() throws {
        #expect(try ReleaseVersion(parsing: "v12").number == 12)
        #expect(try ReleaseVersion(parsing: "3").description == "v3")
        #expect(throws: NameError.self) { try ReleaseVersion(parsing: "v0") }
        #expect(throws: NameError.self) { try ReleaseVersion(parsing: "latest") }
    }
}

@Suite struct SpawnerDescriptorTests {
    @Test func aChildInheritsNoDescriptorButItsStandardThree() async throws {
        // A descriptor of ours without close-on-exec, as a careless library might leave one.
        let fd = open("/dev/null", O_RDONLY)
        defer { close(fd) }
        let (status, output) = try await DirectLauncher().output(
            of: Command("/bin/ls", ["/proc/self/fd"], environment: [:]),
            for: .platform
        )
        #expect(status == .exited(0))
        // ls itself opens one descriptor to read the directory.
        #expect(output.split(separator: "\n").map(String.init).sorted() == ["0", "1", "2", "3"])
    }
}
