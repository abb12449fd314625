// SlipwaySandbox: the sandbox every process of an app's code runs in (its build, its release phase, its
// instances), made with bubblewrap, the sandbox under Flatpak, which needs no root where unprivileged user
// namespaces are enabled (as Debian enables them). The platform's own tools run as they are.
import Foundation
import SlipwayBasics

#if canImport(Glibc)
import Glibc
#endif

/// Starts each process of an app's code inside a bubblewrap sandbox that shows it the read-only system, the files
/// its purpose names and nothing else of the host; the platform's own tools start directly.
public struct SandboxLauncher: Launcher {
    let bubblewrap: String
    let system: SystemView
    let helpers: [String: String]
    /// When the daemon runs as root: the user each app's processes run as, and the data directory whose files
    /// they are given.
    let users: (AppUsers, data: String)?
    /// Where instances with limits get their groups; nil where the host cannot limit them.
    let cgroups: Cgroups?

    public init(
        bubblewrap: String,
        system: SystemView,
        helpers: [String: String],
        users: (AppUsers, data: String)?,
        cgroups: Cgroups?
    ) {
        self.bubblewrap = bubblewrap
        self.system = system
        self.helpers = helpers
        self.users = users
        self.cgroups = cgroups
    }

    public func run(
        _ command: Command,
        for purpose: LaunchPurpose,
        grace: Duration,
        onLine: @escaping @Sendable (String) -> Void
    ) async throws -> ExitStatus {
        try await Spawner.run(try sandboxed(command, for: purpose), grace: grace, onLine: onLine)
    }

    /// An instance with limits joins its groups before anything of it runs, and an end by the kernel's memory
    /// killer is told as such.
    public func start(_ command: Command, for purpose: LaunchPurpose, logFile: String) throws -> ChildProcess {
        let sandbox = try sandboxed(command, for: purpose)
        guard let limited = purpose.limits, let cgroups else { return try Spawner.start(sandbox, logFile: logFile) }
        let groups = try cgroups.groups(for: limited.name, limits: limited.limits)
        let killsBefore = cgroups.memoryKills(of: limited.name)
        return try Spawner.start(Self.joining(groups, sandbox), logFile: logFile) { status in
            guard let memory = limited.limits.memory, status == .signalled(SIGKILL),
                cgroups.memoryKills(of: limited.name) > killsBefore
            else { return status }
            return .outOfMemory(limit: memory)
        }
    }

    public func command(_ command: Command, for purpose: LaunchPurpose) throws -> Command {
        let sandbox = try sandboxed(command, for: purpose)
        guard let limited = purpose.limits, let cgroups else { return sandbox }
        return Self.joining(try cgroups.groups(for: limited.name, limits: limited.limits), sandbox)
    }

    /// `command`, run by a shell that first moves itself into `groups`: what it execs stays in them.
    static func joining(_ groups: [String], _ command: Command) -> Command {
        var joined = command
        joined.executable = "/bin/sh"
        joined.arguments =
            [
                "-c",
                #"n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || exit 125; shift; n=$((n-1)); done; exec "$@""#,
                "sh", "\(groups.count)",
            ] + groups + [command.executable] + command.arguments
        return joined
    }

    public func forget(_ app: AppName) throws {
        cgroups?.remove(app: app)
        try users?.0.remove(app)
    }

    /// `command` as bubblewrap runs it for an app (as the app's own user when the daemon is root); the platform's
    /// own tools unchanged.
    func sandboxed(_ command: Command, for purpose: LaunchPurpose) throws -> Command {
        guard let tenant = purpose.tenant else { return command.markersInEnvironment }
        var outer = Command(
            bubblewrap,
            Bubblewrap.arguments(for: command, files: tenant.files, system: system, helpers: helpers),
            environment: command.environment
        )
        if let (users, data) = users {
            let user = try users.user(for: tenant.app)
            AppFilesOwnership.prepare(tenant.files, for: user, within: data)
            outer = user.running(outer)
        }
        outer.isSandbox = true
        // On bwrap's own process, where a later daemon finds them; `--unsetenv` keeps them from the app.
        outer.environment.merge(command.markers) { _, marker in marker }
        return outer
    }
}
