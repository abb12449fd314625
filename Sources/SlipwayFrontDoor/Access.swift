// Who is asking and what they may do. The host's own user (the control socket is mode 0600) may
// do everything; an SSH key may do what its role allows: `admin` everything, `deploy` push to and
// read its own apps and roll them back.
import ArgumentParser
import SlipwayBasics
import SlipwayStore

/// Who a command or push comes from.
public enum Caller: Sendable {
    /// The daemon's own user, through the control socket or a hook of a local push.
    case local
    case key(AccessKey)

    /// What a release records as its cause.
    public var name: String {
        switch self {
        case .local: "local"
        case .key(let key): key.name
        }
    }
}

/// A command about one app; authorization needs to know which.
protocol AppCommand {
    var app: AppName { get }
}

/// Commands a deploy key may run on its own apps.
protocol OpenToDeployKeys: AppCommand {}

/// Commands that read the caller's stdin to its end before running (`keys:add`).
protocol ReadsInput {}

public struct PermissionDenied: UserFacingError {
    var key: AccessKey
    var action: String
    var app: String?

    public var description: String {
        let scope =
            key.role == .admin
            ? "admin" : "deploy: " + (key.appNames.isEmpty ? "no apps" : key.appNames.joined(separator: ", "))
        return "permission denied: key \"\(key.name)\" (\(scope)) may not run \(action)"
            + (app.map { " on \($0)" } ?? "")
    }
}

extension Caller {
    /// Throws PermissionDenied unless the caller may run `command`.
    func authorize(_ command: any ParsableCommand) throws {
        guard case .key(let key) = self, key.role != .admin else { return }
        let name = type(of: command).configuration.commandName ?? ""
        let app = (command as? any AppCommand)?.app
        guard command is any OpenToDeployKeys, let app, key.appNames.contains(app.rawValue) else {
            throw PermissionDenied(key: key, action: name, app: app?.rawValue)
        }
    }

    /// Throws PermissionDenied unless the caller may push to (`receive`) or fetch from `app`'s repository.
    func authorizeRepository(of app: AppName, receive: Bool) throws {
        guard case .key(let key) = self, key.role != .admin else { return }
        guard receive, key.appNames.contains(app.rawValue) else {
            throw PermissionDenied(key: key, action: receive ? "git push" : "git fetch", app: app.rawValue)
        }
    }
}

// Which commands are about one app, and which of those a deploy key may run on its own apps.
extension ReleasesCommand: OpenToDeployKeys {}
extension ReleasesInfoCommand: OpenToDeployKeys {}
extension RollbackCommand: OpenToDeployKeys {}
extension PsCommand: OpenToDeployKeys {}
extension LogsCommand: OpenToDeployKeys {}
extension StorageCommand: OpenToDeployKeys {}
extension DeployCommand: AppCommand {}
extension BuildsCacheClearCommand: AppCommand {}
extension GitAtomicCommand: AppCommand {}
extension ReleasesKeepCommand: AppCommand {}
extension ConfigCommand: AppCommand {}
extension ConfigGetCommand: AppCommand {}
extension ConfigSetCommand: AppCommand {}
extension ConfigUnsetCommand: AppCommand {}
extension ScaleCommand: AppCommand {}
extension LimitsCommand: AppCommand {}
extension LimitsSetCommand: AppCommand {}
extension LimitsUnsetCommand: AppCommand {}
extension RestartCommand: AppCommand {}
extension OverlapCommand: AppCommand {}
extension DomainsCommand: AppCommand {}
extension DomainsAddCommand: AppCommand {}
extension DomainsRemoveCommand: AppCommand {}
extension MaintenanceOnCommand: AppCommand {}
extension EndpointsCommand: AppCommand {}
extension ProxyDrainCommand: AppCommand {}
extension ProxyStickyCommand: AppCommand {}
extension MaintenanceOffCommand: AppCommand {}
extension AppsDestroyCommand: AppCommand {}
