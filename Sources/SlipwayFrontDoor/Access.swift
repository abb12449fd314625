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

/// Commands a deploy key may run on its own apps once an admin allowed it `permission` (`keys:allow`).
protocol OpenToDeployKeysAllowed: AppCommand {
    static var permission: KeyPermission { get }
}

/// Commands that read the caller's stdin to its end before running (`keys:add`).
protocol ReadsInput {}

public struct PermissionDenied: UserFacingError {
    var key: AccessKey
    var action: String
    var app: String?
    /// What an admin could allow the key so that it may (`keys:allow`).
    var grantable: KeyPermission?

    public var description: String {
        let scope =
            key.role == .admin
            ? "admin" : "deploy: " + (key.appNames.isEmpty ? "no apps" : key.appNames.joined(separator: ", "))
        return "permission denied: key \"\(key.name)\" (\(scope)) may not run \(action)"
            + (app.map { " on \($0)" } ?? "")
            + (grantable.map { "; an admin can allow it with `keys:allow \(key.name) \($0.rawValue)`" } ?? "")
    }
}

extension Caller {
    /// Throws PermissionDenied unless the caller may run `command`.
    func authorize(_ command: any ParsableCommand) throws {
        guard case .key(let key) = self, key.role != .admin else { return }
        let name = type(of: command).configuration.commandName ?? ""
        let app = (command as? any AppCommand)?.app
        let needed = (command as? any OpenToDeployKeysAllowed).map { type(of: $0).permission }
        let allowed = command is any OpenToDeployKeys || needed.map(key.allows.contains) == true
        guard allowed, let app, key.appNames.contains(app.rawValue) else {
            let grantable = !allowed && app.map { key.appNames.contains($0.rawValue) } == true
            throw PermissionDenied(key: key, action: name, app: app?.rawValue, grantable: grantable ? needed : nil)
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
extension RunCommand: OpenToDeployKeysAllowed {
    // A one-off command reads the app's config, secrets included, and writes its storage: more than a push does.
    static let permission = KeyPermission.run
}
extension StopCommand: OpenToDeployKeysAllowed {
    // Who may start one-off commands may stop them.
    static let permission = KeyPermission.run
}
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
extension CertsCommand: AppCommand {}
extension CertsAddCommand: AppCommand {}
extension CertsRemoveCommand: AppCommand {}
extension ProxyHTTPSCommand: AppCommand {}
extension DomainsAddCommand: AppCommand {}
extension DomainsRemoveCommand: AppCommand {}
extension MaintenanceOnCommand: AppCommand {}
extension EndpointsCommand: AppCommand {}
extension ProxyDrainCommand: AppCommand {}
extension ProxyStickyCommand: AppCommand {}
extension MaintenanceOffCommand: AppCommand {}
extension AppsDestroyCommand: AppCommand {}
