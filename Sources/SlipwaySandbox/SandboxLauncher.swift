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
    /// When the daemon runs as root: the user each app's processes run as, and the data directory whose files
    /// they are given.
    let users: (AppUsers, data: String)?

    public init(bubblewrap: String, system: SystemView, helpers: [String: String], users: (AppUsers, data: String)?) {
        self.bubblewrap = bubblewrap
        self.system = system
        self.helpers = helpers
        self.users = users
    }

    public func run(
        _ command: Command,
        for purpose: LaunchPurpose,
        grace: Duration,
        onLine: @escaping @Sendable (String) -> Void
    ) async throws -> ExitStatus {
        try await Spawner.run(try sandboxed(command, for: purpose), grace: grace, onLine: onLine)
    }

    public func start(_ command: Command, for purpose: LaunchPurpose, logFile: String) throws -> ChildProcess {
        try Spawner.start(try sandboxed(command, for: purpose), logFile: logFile)
    }

    public func forget(_ app: AppName) throws {
        try users?.0.remove(app)
    }

    /// `command` as bubblewrap runs it for an app (as the app's own user when the daemon is root); the platform's
    /// own tools unchanged.
    func sandboxed(_ command: Command, for purpose: LaunchPurpose) throws -> Command {
        guard let tenant = purpose.tenant else { return command.markersInEnvironment }
        var arguments = Bubblewrap.arguments(for: command, files: tenant.files, system: system, helpers: helpers)
        var executable = bubblewrap
        if let (users, data) = users {
            let user = try users.user(for: tenant.app)
            AppFilesOwnership.prepare(tenant.files, for: user, within: data)
            // setpriv execs bubblewrap, so bwrap stays the process Slipway records and signals.
            arguments = AppUser.switchArguments(user) + [bubblewrap] + arguments
            executable = AppUser.setpriv
        }
        var outer = Command(executable, arguments, environment: command.environment)
        outer.isSandbox = true
        // On bwrap's own process, where a later daemon finds them; `--unsetenv` keeps them from the app.
        outer.environment.merge(command.markers) { _, marker in marker }
        return outer
    }
}
