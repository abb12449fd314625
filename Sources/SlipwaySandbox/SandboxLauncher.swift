// SlipwaySandbox: the sandbox every process of an app's code runs in (its build, its release phase, its
// instances), made with bubblewrap, the sandbox under Flatpak, which needs no root where unprivileged user
// namespaces are enabled (as Debian enables them). The platform's own tools run as they are.
import Foundation
import SlipwayBasics

/// Starts each process of an app's code inside a bubblewrap sandbox that shows it the read-only system, the files
/// its purpose names and nothing else of the host; the platform's own tools start directly.
public struct SandboxLauncher: Launcher {
    let bubblewrap: String
    let system: SystemView
    let helpers: [String: String]

    public init(bubblewrap: String, system: SystemView, helpers: [String: String]) {
        self.bubblewrap = bubblewrap
        self.system = system
        self.helpers = helpers
    }

    public func run(
        _ command: Command,
        for purpose: LaunchPurpose,
        grace: Duration,
        onLine: @escaping @Sendable (String) -> Void
    ) async throws -> ExitStatus {
        try await Spawner.run(sandboxed(command, for: purpose), grace: grace, onLine: onLine)
    }

    public func start(_ command: Command, for purpose: LaunchPurpose, logFile: String) throws -> ChildProcess {
        try Spawner.start(sandboxed(command, for: purpose), logFile: logFile)
    }

    /// `command` as bubblewrap runs it for an app; the platform's own tools unchanged.
    func sandboxed(_ command: Command, for purpose: LaunchPurpose) -> Command {
        guard let tenant = purpose.tenant else { return command.markersInEnvironment }
        var outer = Command(
            bubblewrap,
            Bubblewrap.arguments(for: command, files: tenant.files, system: system, helpers: helpers),
            environment: command.environment
        )
        // On bwrap's own process, where a later daemon finds them; `--unsetenv` keeps them from the app.
        outer.environment.merge(command.markers) { _, marker in marker }
        return outer
    }
}
