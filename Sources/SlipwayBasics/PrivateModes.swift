// PrivateModes: the data directory holds every app's config values, keys and code, so it and everything in it
// are its owner's alone: directories 0700 (0711 where a root daemon's app users must pass), files 0600 (0700
// when executable). New files get that from the
// process umask (see SlipwayCommand); what an older version or another tool left looser is tightened at start.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

public enum PrivateModes {
    /// What tightening changed: the root's mode before, when it was looser, and how many paths under it.
    public struct Tightened: Sendable, Equatable {
        public var rootModeBefore: mode_t?
        public var pathsBelow: Int

        public var changedAnything: Bool { rootModeBefore != nil || pathsBelow > 0 }
    }

    /// The umask under which everything Slipway creates is its user's alone.
    public static let umask: mode_t = 0o077

    /// Removes group and other permissions from `root` and everything under it. Symbolic links are neither
    /// followed nor changed (their own mode means nothing on Linux).
    /// With `keepingPassage`, folders keep the others' right to pass through them (`--x`, which lists nothing):
    /// a daemon running as root gives it to the folders above each app's own files, which the app's own user must
    /// reach (see SlipwaySandbox's AppFilesOwnership).
    public static func tighten(_ root: String, keepingPassage: Bool = false) -> Tightened {
        var tightened = Tightened(rootModeBefore: nil, pathsBelow: 0)
        if let mode = tighten(path: root, keepingPassage) { tightened.rootModeBefore = mode }
        guard let walker = FileManager.default.enumerator(atPath: root) else { return tightened }
        while let relative = walker.nextObject() as? String {
            if tighten(path: root + "/" + relative, keepingPassage) != nil { tightened.pathsBelow += 1 }
        }
        return tightened
    }

    /// The mode before, when it had to change.
    private static func tighten(path: String, _ keepingPassage: Bool) -> mode_t? {
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT != S_IFLNK else { return nil }
        let mode = status.st_mode & 0o7777
        let allowed: mode_t = keepingPassage && status.st_mode & S_IFMT == S_IFDIR ? 0o011 : 0
        guard mode & 0o077 & ~allowed != 0 else { return nil }
        return chmod(path, mode & ~(0o077 & ~allowed)) == 0 ? mode : nil
    }
}
