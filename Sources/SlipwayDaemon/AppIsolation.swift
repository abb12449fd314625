// AppIsolation: how apps' code is kept from the platform and from each other on this host, chosen once at
// start: in a bubblewrap sandbox (the default), or, where the host cannot make one or `--sandbox off` says so,
// as the daemon's own user. What the apps' processes start from (their base environment) follows from it.
import Foundation
import Logging
import SlipwayBasics
import SlipwaySandbox
import SlipwayStore

#if canImport(Glibc)
import Glibc
#endif

struct AppIsolation {
    static let serveStatic = "serve-static"
    /// This binary, which is also the static buildpack's `serve-static`.
    static let executable =
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]

    let launcher: any Launcher
    let baseEnvironment: [String: String]
    /// Said in every push's output while apps are not isolated though the operator did not turn the sandbox off.
    let warning: String?
    /// What the daemon's "serving" log line says of it.
    let summary: String
    /// Why instances cannot be held to limits here, if they cannot.
    let limitsUnavailable: String?

    /// What `STACK` says to buildpacks: none of Heroku's images, the host's own system (see buildpacks/README.md).
    static let stack = "slipway"

    static let noSandbox = "limits are applied to sandboxed apps only, and apps here are not sandboxed"

    /// The daemon's own programs: its PATH with `<data>/bin` first, so a push's hook finds `slipway`; its HOME.
    static func platformEnvironment(_ data: DataDirectory) -> [String: String] {
        let inherited = ProcessInfo.processInfo.environment
        var environment = ["PATH": data.bin + ":" + systemPath, "LANG": inherited["LANG"] ?? "C.UTF-8"]
        environment["HOME"] = inherited["HOME"]
        return environment
    }

    private static var systemPath: String {
        ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    }

    /// Chooses for this host. `store` keeps the host user of each app when the daemon runs as root.
    static func choose(sandbox: Bool, data: DataDirectory, store: AppDatabase, logger: Logger) async -> AppIsolation {
        let unisolated = platformEnvironment(data).merging(["STACK": stack]) { $1 }
        guard sandbox else {
            return AppIsolation(
                launcher: DirectLauncher(),
                baseEnvironment: unisolated,
                warning: nil,
                summary: "off: apps run as the daemon's user",
                limitsUnavailable: Self.noSandbox
            )
        }
        let system = SystemView.ofHost()
        switch await SandboxCheck.run(system: system, searchPath: systemPath) {
        case .available(let bubblewrap):
            let cgroups = Cgroups.prepare(data: data)
            // Inside, nothing of the data directory: no `<data>/bin` on PATH, only the helpers the sandbox shows.
            // HOME is the sandbox's private /tmp, where tools may keep what they like.
            let environment = [
                "PATH": Bubblewrap.helperDirectory + ":" + systemPath, "HOME": "/tmp",
                "LANG": unisolated["LANG"] ?? "C.UTF-8", "STACK": stack,
            ]
            return AppIsolation(
                launcher: SandboxLauncher(
                    bubblewrap: bubblewrap,
                    system: system,
                    helpers: [serveStatic: executable],
                    // Root's processes would be root in their sandbox too: each app gets a user of its own.
                    users: geteuid() == 0
                        ? (
                            AppUsers(recorded: (try? store.userNames()) ?? [:]) { app, name in
                                try store.setUserName(name, of: app)
                            }, data: data.root
                        ) : nil,
                    cgroups: cgroups.available
                ),
                baseEnvironment: environment,
                warning: nil,
                summary: "on (\(bubblewrap))" + (geteuid() == 0 ? ", each app as a user of its own" : ""),
                limitsUnavailable: cgroups.unavailableReason
            )
        case .unavailable(let reason):
            let warning =
                "apps on this host are not isolated from the platform or each other: \(reason)"
                + " (or pass --sandbox off to accept that)"
            logger.warning("\(warning)")
            return AppIsolation(
                launcher: DirectLauncher(),
                baseEnvironment: unisolated,
                warning: warning,
                summary: "unavailable: apps run as the daemon's user",
                limitsUnavailable: Self.noSandbox
            )
        }
    }
}
