// The sandbox an app's code runs in, tried for real with bubblewrap: what a process inside sees of the host's
// files, processes and environment, what it may write, which capabilities it has, and that Slipway's signals
// still reach it. The bubblewrap command line is checked without running it for what must never be in it.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@testable import SlipwaySandbox

#if canImport(Glibc)
import Glibc
#endif

@Suite("The sandbox", .timeLimit(.minutes(1)))
struct SandboxTests {
    /// A data directory with a secret, an app tree and a cache beside it, as the daemon lays them out.
    struct Host {
        let root: TemporaryDirectory
        var data: String { root.path + "/data" }
        var tree: String { data + "/apps/shop/releases/2" }
        var cache: String { data + "/apps/shop/cache" }
        var secret: String { data + "/slipway.sqlite" }

        init() throws {
            root = try TemporaryDirectory()
            for folder in [tree, cache] {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            }
            try "config of every app\n".write(toFile: secret, atomically: true, encoding: .utf8)
            try "echo hello from the tree\n".write(toFile: tree + "/hello.sh", atomically: true, encoding: .utf8)
        }
    }

    let launcher: SandboxLauncher

    init() throws {
        let bubblewrap = try #require(
            ["/usr/bin/bwrap", "/bin/bwrap"].first { FileManager.default.isExecutableFile(atPath: $0) },
            "bubblewrap is installed (scripts/install-dependencies)"
        )
        launcher = SandboxLauncher(
            bubblewrap: bubblewrap,
            system: .ofHost(),
            helpers: ["serve-static": "/bin/true"],
            users: nil,
            cgroups: nil
        )
    }

    func shell(
        _ script: String,
        files: AppFiles,
        in directory: String? = nil,
        environment: [String: String] = [:],
        markers: [String: String] = [:]
    ) async throws -> (SlipwayBasics.ExitStatus, String) {
        let app = try AppName(validating: "shop")
        return try await launcher.output(
            of: Command(
                "/bin/sh",
                ["-c", script],
                environment: ["PATH": "/slipway:/usr/bin:/bin"].merging(environment) { $1 },
                workingDirectory: directory,
                markers: markers
            ),
            for: .instance(app, files, nil)
        )
    }

    @Test("a process sees its own files and the system, never the data directory around them")
    func filesystemView() async throws {
        let host = try Host()
        defer { host.root.remove() }
        let (status, text) = try await shell(
            "sh hello.sh; cat \(host.secret) || echo no-secret; ls \(host.data)/apps; ls /root /home 2>&1 | head -2;"
                + " test -x /usr/bin/env && echo system",
            files: AppFiles(readOnly: [host.tree]),
            in: host.tree
        )
        #expect(status.succeeded, "\(text)")
        #expect(text.contains("hello from the tree"))
        #expect(text.contains("no-secret") && !text.contains("config of every app"), "\(text)")
        #expect(text.contains("system"))
        #expect(!text.contains("cache"), "only the tree of the app is shown: \(text)")
    }

    @Test("a build writes its tree and cache; a running release's tree is read-only and /tmp is its own")
    func writableOnlyWhereGiven() async throws {
        let host = try Host()
        defer { host.root.remove() }
        let outside = "/tmp/slipway-sandbox-test-\(getpid())"
        try "host tmp\n".write(toFile: outside, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: outside) }

        let (built, buildText) = try await shell(
            "echo built > \(host.tree)/out && echo cached > \(host.cache)/c && cat \(outside) || echo own-tmp",
            files: AppFiles(writable: [host.tree, host.cache])
        )
        #expect(built.succeeded, "\(buildText)")
        #expect(try String(contentsOfFile: host.tree + "/out", encoding: .utf8) == "built\n")
        #expect(try String(contentsOfFile: host.cache + "/c", encoding: .utf8) == "cached\n")
        #expect(buildText.contains("own-tmp"), "the host's /tmp is not shown: \(buildText)")

        let (running, runText) = try await shell(
            "echo changed > \(host.tree)/out; echo scratch > /tmp/s && cat /tmp/s",
            files: AppFiles(readOnly: [host.tree])
        )
        #expect(running.succeeded, "\(runText)")
        #expect(runText.contains("Read-only file system"), "\(runText)")
        #expect(runText.contains("scratch"))
        #expect(try String(contentsOfFile: host.tree + "/out", encoding: .utf8) == "built\n")
    }

    @Test("a process sees only its own processes, has no capability and cannot gain one")
    func processesAndPrivileges() async throws {
        let (status, text) = try await shell(
            "ls /proc | grep -c '^[0-9]'; grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs)' /proc/self/status;"
                + " kill -0 \(getpid()) 2>/dev/null && echo reached-the-host || echo host-unreachable",
            files: AppFiles()
        )
        #expect(status.succeeded, "\(text)")
        let processes = Int(text.split(separator: "\n").first ?? "") ?? .max
        #expect(processes <= 4, "it saw \(processes) processes: \(text)")
        #expect(text.contains("CapEff:\t0000000000000000"), "\(text)")
        #expect(text.contains("CapPrm:\t0000000000000000"), "\(text)")
        #expect(text.contains("NoNewPrivs:\t1"), "\(text)")
        // Unprivileged (as the service runs), the user namespace leaves no capability even to bound. As root the
        // bounding set stays, though nothing in it can be gained with no permitted ones and no_new_privs.
        if geteuid() != 0 { #expect(text.contains("CapBnd:\t0000000000000000"), "\(text)") }
        #expect(text.contains("host-unreachable"), "\(text)")
    }

    @Test("the environment is the app's own: markers stay on the outer process, the helpers are on PATH")
    func environment() async throws {
        let (status, text) = try await shell(
            "env | sort; command -v serve-static",
            files: AppFiles(),
            environment: ["GREETING": "hi", "SLIPWAY_APP": "shop"],
            markers: ["SLIPWAY_DATA": "/var/lib/slipway", "SLIPWAY_APP": "shop"]
        )
        #expect(status.succeeded, "\(text)")
        #expect(text.contains("GREETING=hi"))
        #expect(text.contains("SLIPWAY_APP=shop"), "a marker the app is also given stays")
        #expect(!text.contains("SLIPWAY_DATA"), "\(text)")
        #expect(text.contains("/slipway/serve-static"))
    }

    @Test("stopping an instance signals the app inside: SIGTERM reaches its handler")
    func signalsReachTheApp() async throws {
        let host = try Host()
        defer { host.root.remove() }
        let log = host.root.path + "/instance.log"
        let app = try AppName(validating: "shop")
        let child = try launcher.start(
            Command(
                "/bin/sh",
                ["-c", "trap 'echo got TERM; exit 0' TERM; echo started; while true; do sleep 0.1; done"],
                environment: ["PATH": "/usr/bin:/bin"]
            ),
            for: .instance(app, AppFiles(readOnly: [host.tree]), nil),
            logFile: log
        )
        #expect(await eventually { (try? String(contentsOfFile: log, encoding: .utf8))?.contains("started") == true })
        let status = await child.stop(grace: .seconds(5))
        #expect(status == .exited(0), "the app's handler ended it")
        #expect(try String(contentsOfFile: log, encoding: .utf8).contains("got TERM"))
    }

    @Test("an app killed by a signal inside its sandbox is reported as killed by that signal")
    func killedBySignal() async throws {
        let (status, _) = try await shell("kill -KILL $$", files: AppFiles())
        #expect(status == .signalled(SIGKILL))
        let (exited, _) = try await shell("exit 3", files: AppFiles())
        #expect(exited == .exited(3))
    }

    @Test("no config value is on bubblewrap's command line, where every user of the host could read it")
    func secretsStayOffTheCommandLine() {
        let arguments = Bubblewrap.arguments(
            for: Command(
                "/bin/bash",
                ["-c", "npm start"],
                environment: ["DATABASE_URL": "postgres://user:hunter2@db/shop"],
                workingDirectory: "/data/apps/shop/releases/2",
                markers: ["SLIPWAY_DATA": "/data"]
            ),
            files: AppFiles(readOnly: ["/data/apps/shop/releases/2"]),
            system: .ofHost(),
            helpers: [:]
        )
        #expect(!arguments.joined(separator: " ").contains("hunter2"))
        #expect(arguments.suffix(4) == ["--", "/bin/bash", "-c", "npm start"])
        #expect(arguments.contains("--unsetenv") && arguments.contains("SLIPWAY_DATA"))
        #expect(!arguments.contains("/data"), "the data directory itself is never shown")
    }

    @Test("a host without bubblewrap, or whose kernel refuses it a sandbox, is told why in one line with what to do")
    func unavailable() async throws {
        let missing = await SandboxCheck.run(system: .ofHost(), searchPath: "/nonexistent")
        #expect(missing == .unavailable("bubblewrap is not installed: install it (apt-get install bubblewrap)"))

        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        // What bubblewrap says where unprivileged user namespaces are off.
        let refusing = "#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n"
        try refusing.write(toFile: folder.path + "/bwrap", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder.path + "/bwrap")
        let refused = await SandboxCheck.run(system: .ofHost(), searchPath: folder.path)
        #expect(
            refused
                == .unavailable(
                    "bubblewrap cannot make a sandbox here (bwrap: No permissions to creating new namespace): enable"
                        + " unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 and"
                        + " user.max_user_namespaces > 0)"
                )
        )
        let available = await SandboxCheck.run(system: .ofHost(), searchPath: "/usr/bin:/bin")
        #expect(available == .available(bubblewrap: "/usr/bin/bwrap"))
    }
}

/// cgroup v2 cannot run here (this host mounts v1, which the end-to-end limits test uses for real), so what Slipway
/// writes for v2 is checked against a folder laid out as the kernel lays out a delegated cgroup v2 subtree.
@Suite("Control groups v2, as written")
struct CgroupsV2Tests {
    @Test(
        "the daemon moves into a leaf, hands the controllers down, and each instance's limits are written in v2's terms"
    )
    func writtenAsV2Expects() throws {
        let folder = try TemporaryDirectory()
        defer { folder.remove() }
        let own =
            ((try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? "")
            .split(separator: "\n").first { $0.hasPrefix("0::") }.map { String($0.dropFirst(3)) } ?? "/"
        let base = folder.path + (own == "/" ? "" : own)
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(
            atPath: folder.path + "/cgroup.controllers",
            contents: Data("memory cpu pids".utf8)
        )

        let outcome = Cgroups.prepare(data: DataDirectory(root: "/var/lib/slipway"), root: folder.path)
        let cgroups = try #require(outcome.available, "\(outcome)")
        func read(_ path: String) -> String? { try? String(contentsOfFile: base + "/" + path, encoding: .utf8) }
        #expect(read("slipway-daemon/cgroup.procs") == "\(getpid())")
        #expect(read("cgroup.subtree_control") == "+memory +cpu +pids")
        #expect(read("slipway-apps/cgroup.subtree_control") == "+memory +cpu +pids")

        let groups = try cgroups.groups(
            for: "shop.web.1",
            limits: ProcessLimits(memory: 256 << 20, cpu: 1.5, pids: 512)
        )
        #expect(groups == [base + "/slipway-apps/shop.web.1"])
        #expect(read("slipway-apps/shop.web.1/memory.max") == "\(256 << 20)")
        #expect(read("slipway-apps/shop.web.1/memory.swap.max") == "0")
        #expect(read("slipway-apps/shop.web.1/cpu.max") == "150000 100000")
        #expect(read("slipway-apps/shop.web.1/pids.max") == "512")
        _ = try cgroups.groups(for: "shop.web.1", limits: ProcessLimits(memory: 64 << 20))
        #expect(read("slipway-apps/shop.web.1/cpu.max") == "max 100000", "a limit unset is lifted")
        #expect(read("slipway-apps/shop.web.1/pids.max") == "max")

        try "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n".write(
            toFile: base + "/slipway-apps/shop.web.1/memory.events",
            atomically: true,
            encoding: .utf8
        )
        #expect(cgroups.memoryKills(of: "shop.web.1") == 2)
    }
}
