// ServiceUser: the unprivileged user that test daemons, their CLI calls and their git pushes run as, the way
// systemd/slipway.service runs the real daemon. Tests run as root in CI; a daemon run as root would hide every
// defect that only an ordinary user meets (a socket option that needs a capability, a file it cannot read).
import Foundation
import SlipwayBasics
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

public struct ServiceUser: Sendable {
    /// The user `scripts/test` creates when the tests run as root.
    public static let testUserName = "slipway-test"

    /// nil when the tests already run unprivileged: the daemon then runs as the tests' own user.
    public let name: String?
    public let uid: uid_t
    public let gid: gid_t

    /// Root itself, for the tests of a daemon started as root (which gives each app a host user of its own).
    public static let root = ServiceUser(name: nil, uid: 0, gid: 0)

    /// The daemons' user for this test run.
    public static let current: ServiceUser = {
        guard geteuid() == 0 else { return ServiceUser(name: nil, uid: getuid(), gid: getgid()) }
        // Tests write fixtures that this user must read, whatever umask the test runner came with.
        umask(0o022)
        guard let user = HostUser.named(testUserName) else {
            preconditionFailure("there is no user \(testUserName) to run test daemons as: scripts/test makes it")
        }
        return ServiceUser(name: testUserName, uid: user.uid, gid: user.gid)
    }()

    /// `command` run as this user, with no new privileges, as the service runs (a plain command when the tests
    /// are not root).
    public func command(_ command: Command) -> Command {
        guard name != nil else { return command }
        var wrapped = command
        wrapped.executable = "/usr/bin/setpriv"
        wrapped.arguments =
            ["--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "--no-new-privs", "--", command.executable]
            + command.arguments
        return wrapped
    }

    /// Makes `path` and everything under it this user's.
    public func own(_ path: String) throws {
        guard name != nil else { return }
        let walker = FileManager.default.enumerator(atPath: path)
        for item in [path] + (walker?.allObjects as? [String] ?? []).map({ path + "/" + $0 }) {
            guard lchown(item, uid, gid) == 0 else { throw ServiceUserError.cannotOwn(item, errno: errno) }
        }
    }

    /// Whether this user can reach and read `path` (and run it, with `executing`), from the modes of the path
    /// and of every folder above it.
    public func canRead(_ path: String, executing: Bool = false) -> Bool {
        var folders: [String] = []
        var folder = (path as NSString).deletingLastPathComponent
        while folder != "/" && !folder.isEmpty {
            folders.append(folder)
            folder = (folder as NSString).deletingLastPathComponent
        }
        return folders.allSatisfy { allows($0, 0o1) } && allows(path, executing ? 0o5 : 0o4)
    }

    /// Whether `path`'s mode grants this user the `wanted` bits (r=4, w=2, x=1).
    private func allows(_ path: String, _ wanted: mode_t) -> Bool {
        var status = stat()
        guard stat(path, &status) == 0 else { return false }
        let shift: mode_t = status.st_uid == uid ? 6 : status.st_gid == gid ? 3 : 0
        return (status.st_mode >> shift) & wanted == wanted
    }
}

public enum ServiceUserError: Error, CustomStringConvertible {
    case cannotOwn(String, errno: Int32)

    public var description: String {
        switch self {
        case .cannotOwn(let path, let code):
            "could not give \(path) to the test daemons' user: \(String(cString: strerror(code)))"
        }
    }
}
