// AppFilesOwnership: what an app's own user needs of the data directory before its sandbox starts: the files the
// sandbox is given belong to that user, and the folders above them, up to the data directory, may be passed
// through (0711: entered, never listed). Nothing else changes hands, so the database, keys, repositories and
// other apps' files stay root's or their own apps', unreadable to it.
import Foundation
import SlipwayBasics

#if canImport(Glibc)
import Glibc
#endif

enum AppFilesOwnership {
    static func prepare(_ files: AppFiles, for user: AppUser, within data: String) {
        for path in files.writable + files.readOnly where path.hasPrefix(data + "/") {
            var folder = (path as NSString).deletingLastPathComponent
            while folder.count >= data.count {
                passThrough(folder)
                folder = (folder as NSString).deletingLastPathComponent
            }
            own(path, by: user)
        }
    }

    private static func passThrough(_ folder: String) {
        var status = stat()
        guard stat(folder, &status) == 0, status.st_mode & 0o001 == 0 else { return }
        chmod(folder, (status.st_mode & 0o7777) | 0o711)
    }

    /// Hands `path` and everything under it to `user`, when the top is not the user's yet: a tree fresh from a
    /// checkout or a copy, which no process of the app has touched. Links are changed, never followed.
    private static func own(_ path: String, by user: AppUser) {
        var status = stat()
        guard lstat(path, &status) == 0, status.st_uid != user.uid else { return }
        lchown(path, user.uid, user.gid)
        guard let walker = FileManager.default.enumerator(atPath: path) else { return }
        while let relative = walker.nextObject() as? String {
            lchown(path + "/" + relative, user.uid, user.gid)
        }
    }
}
