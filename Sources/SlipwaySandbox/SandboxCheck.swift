// SandboxCheck: whether this host can sandbox apps, tried once at start by running a sandbox as the daemon
// would, and, where it cannot, the one line that says why and what to do.
import Foundation
import SlipwayBasics

#if canImport(Glibc)
import Glibc
#endif

public enum SandboxCheck {
    public enum Outcome: Sendable, Equatable {
        case available(bubblewrap: String)
        /// Why apps cannot be isolated here, as a sentence ending in what to do.
        case unavailable(String)
    }

    /// Runs `true` in a sandbox like the ones apps get: as `nobody` when the daemon is root, since apps then run
    /// as users of their own, for whom bubblewrap needs unprivileged user namespaces.
    public static func run(system: SystemView, searchPath: String) async -> Outcome {
        let found = searchPath.split(separator: ":").map { $0 + "/bwrap" }.first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard let bubblewrap = found else {
            return .unavailable("bubblewrap is not installed: install it (apt-get install bubblewrap)")
        }
        let probe = Command("/bin/true", [], environment: [:])
        let arguments = Bubblewrap.arguments(for: probe, files: AppFiles(), system: system, helpers: [:])
        do {
            var command = Command(bubblewrap, arguments, environment: [:])
            if geteuid() == 0, let nobody = AppUser(named: "nobody") { command = nobody.running(command) }
            let (status, text) = try await DirectLauncher().output(of: command, for: .platform)
            if status.succeeded { return .available(bubblewrap: bubblewrap) }
            let reason = text.split(separator: "\n").first.map(String.init) ?? "it \(status)"
            return .unavailable(
                "bubblewrap cannot make a sandbox here (\(reason)): enable unprivileged user namespaces"
                    + " (sysctl kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0)"
            )
        } catch {
            return .unavailable("bubblewrap could not be started (\(error.userMessage)): check its installation")
        }
    }
}
