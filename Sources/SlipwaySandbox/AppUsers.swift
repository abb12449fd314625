// AppUsers: when the daemon runs as root, each app's processes run as a host user of its own, never as root:
// `slipway-appN`, a system user with no home and no login shell, made with useradd the first time the app starts
// a process, recorded with the app (as Dokku keeps a user of its own for builds), and removed with the app. A name already on the host
// is never taken over, so two daemons on one host, or an app made again after it was destroyed, never share one.
import Foundation
import SlipwayBasics
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

public struct AppUser: Sendable, Equatable {
    public let name: String
    public let uid: uid_t
    public let gid: gid_t

    /// `command` run as this user, through setpriv (no other group, no way back to root), which execs it: the
    /// process stays the one Slipway started.
    func running(_ command: Command) -> Command {
        var switched = command
        switched.executable = "/usr/bin/setpriv"
        switched.arguments =
            ["--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "--no-new-privs", "--", command.executable]
            + command.arguments
        return switched
    }

    /// The user called `name` on this host, if there is one.
    public init?(named name: String) {
        guard let user = HostUser.named(name) else { return nil }
        self.name = name
        uid = user.uid
        gid = user.gid
    }
}

public enum AppUserError: UserFacingError {
    case couldNotCreate(String, output: String)
    case couldNotRemove(String, output: String)

    public var description: String {
        switch self {
        case .couldNotCreate(let name, let output):
            "could not create the host user \(name) for an app (useradd: \(output)); check that useradd works as root"
        case .couldNotRemove(let name, let output):
            "could not remove the host user \(name) of a destroyed app (userdel: \(output)); remove it with userdel"
        }
    }
}

public final class AppUsers: Sendable {
    private let users: Mutex<[AppName: AppUser]>
    private let record: @Sendable (AppName, String) throws -> Void

    /// `recorded`: the user names the store keeps, by app; `record` keeps a newly made one.
    public init(recorded: [AppName: String], record: @escaping @Sendable (AppName, String) throws -> Void) {
        users = Mutex(recorded.compactMapValues(AppUser.init(named:)))
        self.record = record
    }

    /// The user `app`'s processes run as, made and recorded the first time.
    public func user(for app: AppName) throws -> AppUser {
        try users.withLock { users in
            if let user = users[app] { return user }
            let user = try Self.create(comment: "Slipway app \(app)")
            try record(app, user.name)
            users[app] = user
            return user
        }
    }

    /// Removes the host user of a destroyed app, whose processes are all stopped.
    public func remove(_ app: AppName) throws {
        try users.withLock { users in
            guard let user = users.removeValue(forKey: app) else { return }
            let (status, said) = try Self.run("/usr/sbin/userdel", [user.name])
            guard status == 0 else { throw AppUserError.couldNotRemove(user.name, output: said) }
        }
    }

    /// Runs a user-administration tool to its end: its exit status and what it said.
    private static func run(_ tool: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, said.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    private static func create(comment: String) throws -> AppUser {
        var number = 1
        while true {
            let name = "slipway-app\(number)"
            number += 1
            guard AppUser(named: name) == nil else { continue }
            let (status, said) = try run(
                "/usr/sbin/useradd",
                [
                    "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                    "--user-group", "--comment", comment, name,
                ]
            )
            if let user = AppUser(named: name), status == 0 { return user }
            // Taken meanwhile by someone else: try the next name; anything else is a real failure.
            guard AppUser(named: name) != nil else { throw AppUserError.couldNotCreate(name, output: said) }
        }
    }
}
