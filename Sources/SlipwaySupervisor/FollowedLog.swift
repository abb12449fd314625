// FollowedLog: one log file followed by `logs -f`: the complete lines written since the last read, across the
// supervisor's rotations. A rotation copies the file to `<file>.1` (a new file each time) and empties it, so a new
// copy means the lines after the old offset are in the copy, and the file goes on from its start. Sizes alone
// missed a rotation whenever the emptied file had grown past the old offset by the next read (a busy host, a
// chatty app), and the follower skipped what came first.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

public struct FollowedLog: Sendable {
    public let path: String
    private var offset: UInt64
    /// Which rotated copy was there at the last read.
    private var copy: FileIdentity?

    /// Followed from `offset`, as a rotated copy there now already was.
    public init(path: String, from offset: UInt64) {
        self.path = path
        self.offset = offset
        copy = FileIdentity(of: path + ".1")
    }

    public mutating func read() -> [String] {
        var lines: [String] = []
        let now = FileIdentity(of: path + ".1")
        if let now, now != copy {
            lines = LogReading.lines(of: path + ".1", from: offset).lines
            offset = 0
        }
        copy = now
        let (read, end) = LogReading.lines(of: path, from: offset)
        offset = end
        return lines + read
    }
}

/// A file as itself, not its name: inode and change time (a removed file's inode can be reused at once; its new
/// file's change time is not the old one's).
struct FileIdentity: Equatable, Sendable {
    let inode: UInt64
    let changedSeconds: Int
    let changedNanoseconds: Int

    init?(of path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        inode = UInt64(info.st_ino)
        changedSeconds = info.st_ctim.tv_sec
        changedNanoseconds = info.st_ctim.tv_nsec
    }
}
