// As the service runs: the daemon is an unprivileged user's (every DaemonHarness daemon is), and what it keeps is
// that user's alone. Other users on the host can read no config value, key, repository or release tree, and a CLI
// run by one of them is told whose daemon it is.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ServiceUserTests {
    @Test func everythingInTheDataDirectoryIsTheDaemonUsersAloneAndLooserModesAreTightenedAtStart() async throws {
        try await DaemonHarness.with { daemon, work in
            try await daemon.cli(["apps:create", "shop"])
            try await daemon.cli(["config:set", "shop", "SECRET=hunter2"])
            try await commitFixture("node-hello", into: work, message: "v2")
            #expect(try await daemon.push(work, app: "shop").status.succeeded)
            let database = daemon.data + "/slipway.sqlite"
            for path in [daemon.data, database, database + "-wal", database + "-shm", daemon.data + "/control.sock"] {
                #expect(mode(of: path) & 0o077 == 0, "\(path) is \(String(mode(of: path), radix: 8))")
            }
            #expect(looseModes(under: daemon.data).isEmpty, "\(looseModes(under: daemon.data))")

            // An older version, or a hand-made backup restored with cp, left modes others can read.
            await daemon.stop(leavingApps: true)
            chmod(daemon.data, 0o755)
            chmod(database, 0o644)
            chmod(daemon.data + "/repos", 0o755)
            let restarted = try await DaemonHarness(restartingIn: daemon)
            #expect(mode(of: daemon.data) == 0o700)
            #expect(mode(of: database) == 0o600)
            #expect(looseModes(under: daemon.data).isEmpty, "\(looseModes(under: daemon.data))")
            let log = try String(contentsOfFile: restarted.log, encoding: .utf8)
            #expect(log.contains("data directory tightened"), "\(log)")
            #expect(log.contains("data.modeBefore=755"), "\(log)")
            #expect(log.contains("data.pathsTightened=2"), "\(log)")
        }
    }

    @Test func theControlSocketIsOnlyForTheDaemonsUser() async throws {
        try await DaemonHarness.with { daemon, _ in
            #expect(mode(of: daemon.data + "/control.sock") == 0o600)
            #expect(!FileManager.default.fileExists(atPath: daemon.data + "/control.sock.new"))
            // Another user tries; that takes root, to be someone else.
            guard geteuid() == 0 else {
                print("not root: the control socket's modes were checked, no other user tried it")
                return
            }
            var cli = daemon.cliCommand(["apps"])
            cli.arguments = cli.arguments.map { $0 == "--reuid=\(daemon.user.uid)" ? "--reuid=65534" : $0 }
                .map { $0 == "--regid=\(daemon.user.gid)" ? "--regid=65534" : $0 }
            let refused = try await run(cli)
            #expect(refused.status == .exited(1))
            #expect(
                refused.output.hasSuffix(
                    "permission denied at \(daemon.data)/control.sock: run slipway as the user that runs `slipway serve`"
                ),
                "\(refused.output)"
            )
        }
    }

    private func mode(of path: String) -> mode_t {
        var status = stat()
        return lstat(path, &status) == 0 ? status.st_mode & 0o7777 : 0o7777
    }

    /// Paths under `root` that others than their owner may read, write or enter (symbolic links aside).
    private func looseModes(under root: String) -> [String] {
        let walker = FileManager.default.enumerator(atPath: root)
        return (walker?.allObjects as? [String] ?? []).filter { relative in
            var status = stat()
            guard lstat(root + "/" + relative, &status) == 0, status.st_mode & S_IFMT != S_IFLNK else { return false }
            return status.st_mode & 0o077 != 0
        }
    }
}
