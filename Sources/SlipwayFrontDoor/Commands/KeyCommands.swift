// The commands that manage who may come in over SSH: keys, keys:add, keys:remove, and
// keys:authorized-keys for hosts that keep their own sshd.
import ArgumentParser
import Foundation
import SlipwayBasics
import SlipwayDeployer
import SlipwayStore

/// A key's name: what releases record as their cause and what `permission denied` names.
public struct KeyName: Sendable, ExpressibleByArgument {
    public let rawValue: String

    /// 1-40 letters, digits, `.`, `_`, `@` and `-`, starting with a letter or digit: safe to put
    /// in an authorized_keys line and a log.
    public init?(argument: String) {
        guard (1...40).contains(argument.count), argument.first?.isLetter == true || argument.first?.isNumber == true,
            argument.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._@-".contains($0)) })
        else { return nil }
        rawValue = argument
    }
}

public struct KeysCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "List the SSH keys that may come in, with their roles."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Flag(help: "Print JSON.") var json = false

    public init() {}

    public func run(in context: CommandContext) async throws {
        let keys = try context.store.keys()
        if json {
            context.output.print(try JSON.encode(keys.map(KeySummary.init)))
            return
        }
        guard !keys.isEmpty else {
            context.output.print(
                "No keys yet. Add one with `slipway keys:add NAME --role admin < ~/.ssh/id_ed25519.pub`."
            )
            return
        }
        for key in keys {
            let scope =
                key.role == .admin
                ? "admin"
                : "deploy: " + key.appNames.joined(separator: ", ")
                    + (key.allows.isEmpty ? "" : "; allowed: " + key.allows.map(\.rawValue).joined(separator: ", "))
            context.output.print(
                key.name.padding(toLength: max(12, key.name.count + 2), withPad: " ", startingAt: 0)
                    + key.fingerprint + "  " + scope
            )
        }
    }
}

struct KeySummary: Codable {
    var name: String
    var role: String
    var apps: [String]
    var allows: [String]
    var fingerprint: String
    var createdAt: Date

    init(_ key: AccessKey) {
        name = key.name
        role = key.role.rawValue
        apps = key.appNames
        allows = key.allows.map(\.rawValue)
        fingerprint = key.fingerprint
        createdAt = key.createdAt
    }
}

extension KeyRole: ExpressibleByArgument {}

public struct KeysAddCommand: AdminCommand, ReadsInput {
    public static let configuration = CommandConfiguration(
        commandName: "keys:add",
        abstract: "Let an SSH key in, read from stdin (an OpenSSH .pub line).",
        discussion: "Example: slipway keys:add ci --role deploy --app shop < ci_key.pub"
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "A name for the key (letters, digits, . _ @ -).") var name: KeyName
    @Option(help: "admin (every command, every app) or deploy (push, releases, logs, ps, rollback of --app apps).")
    var role: KeyRole
    @Option(name: .customLong("app"), help: "An app a deploy key may reach; repeat for several.") var apps: [AppName] =
        []

    public init() {}

    public func validate() throws {
        if role == .deploy && apps.isEmpty { throw ValidationError("a deploy key needs at least one --app") }
        if role == .admin && !apps.isEmpty { throw ValidationError("an admin key reaches every app; drop --app") }
    }

    public func run(in context: CommandContext) async throws {
        let line = try PublicKeyLine(parsing: String(decoding: context.input, as: UTF8.self))
        for app in apps { _ = try context.store.app(app) }
        try context.store.addKey(
            AccessKey(name: name.rawValue, role: role, publicKey: line.key, fingerprint: line.fingerprint, apps: apps)
        )
        let scope = role == .admin ? "admin" : "deploy: " + apps.map(\.rawValue).joined(separator: ", ")
        context.output.print("Added key \(name.rawValue) (\(scope)) \(line.fingerprint)")
    }
}

public struct KeysRemoveCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "keys:remove",
        abstract: "Stop letting an SSH key in."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The key's name.") var name: KeyName

    public init() {}

    public func run(in context: CommandContext) async throws {
        try context.store.removeKey(named: name.rawValue)
        context.output.print("Removed key \(name.rawValue)")
    }
}

extension KeyPermission: ExpressibleByArgument {}

public struct KeysAllowCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "keys:allow",
        abstract: "Allow a deploy key more than its role: run (one-off commands in its apps, `run APP -- …`)."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The key's name.") var name: KeyName
    @Argument(help: "run.") var permission: KeyPermission

    public init() {}

    public func run(in context: CommandContext) async throws {
        try context.store.setKeyPermission(permission, allowed: true, for: name.rawValue)
        context.output.print(
            "Key \(name.rawValue) may now \(permission.rawValue) commands in its apps, with their config and storage"
        )
    }
}

public struct KeysDisallowCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "keys:disallow",
        abstract: "Take back what keys:allow gave a deploy key."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The key's name.") var name: KeyName
    @Argument(help: "run.") var permission: KeyPermission

    public init() {}

    public func run(in context: CommandContext) async throws {
        try context.store.setKeyPermission(permission, allowed: false, for: name.rawValue)
        context.output.print("Key \(name.rawValue) may no longer \(permission.rawValue) commands")
    }
}

public struct KeysAuthorizedKeysCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "keys:authorized-keys",
        abstract:
            "Print authorized_keys lines that send each key through `slipway ssh-command` (for hosts that keep sshd)."
    )
    @OptionGroup public var connection: ConnectionOptions

    public init() {}

    public func run(in context: CommandContext) async throws {
        let slipway = context.settings.data.bin + "/slipway"
        for key in try context.store.keys() {
            let command =
                "\(Self.shellQuoted(slipway)) ssh-command --data \(Self.shellQuoted(context.settings.data.root)) --key \(key.name)"
            let escaped = command.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(
                of: "\"",
                with: "\\\""
            )
            context.output.print("command=\"\(escaped)\",restrict \(key.publicKey) \(key.name)")
        }
    }

    /// sshd runs a forced command through the user's shell.
    static func shellQuoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
