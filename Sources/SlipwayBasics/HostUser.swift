// HostUser: a user of this host, looked up with the reentrant getpwnam_r and getpwuid_r. getpwnam and getpwuid
// answer in one static buffer shared by every thread: two lookups at once can return each other's user, or none
// (an app user "missing from the host" in a test beside others was that).
import Foundation

#if canImport(Glibc)
import Glibc
#endif

public struct HostUser: Sendable, Equatable {
    public let name: String
    public let uid: uid_t
    public let gid: gid_t

    public static func named(_ name: String) -> HostUser? {
        lookup { entry, buffer, size, found in getpwnam_r(name, entry, buffer, size, found) }
    }

    public static func withID(_ uid: uid_t) -> HostUser? {
        lookup { entry, buffer, size, found in getpwuid_r(uid, entry, buffer, size, found) }
    }

    /// Runs one `_r` lookup with a buffer of the size the system suggests, twice as large while it is too small.
    private static func lookup(
        _ call: (
            UnsafeMutablePointer<passwd>, UnsafeMutablePointer<CChar>, Int,
            UnsafeMutablePointer<UnsafeMutablePointer<passwd>?>
        ) -> Int32
    ) -> HostUser? {
        var size = max(1024, sysconf(Int32(_SC_GETPW_R_SIZE_MAX)))
        while size <= 1 << 20 {
            var entry = passwd()
            var found: UnsafeMutablePointer<passwd>?
            var buffer = [CChar](repeating: 0, count: size)
            let (status, user) = buffer.withUnsafeMutableBufferPointer { bytes -> (Int32, HostUser?) in
                let status = call(&entry, bytes.baseAddress!, size, &found)
                guard status == 0, let found else { return (status, nil) }
                let name = String(cString: found.pointee.pw_name)
                return (status, HostUser(name: name, uid: found.pointee.pw_uid, gid: found.pointee.pw_gid))
            }
            guard status == ERANGE else { return user }
            size *= 2
        }
        return nil
    }
}
