// PushedFile: reads a file of a pushed tree that the daemon itself interprets (app.json, Procfile, .buildpacks).
// The tree is a tenant's: the file may be a gigabyte, a symbolic link to the host's files or to /dev/zero, or a
// FIFO that never ends, so only a regular file of at most `limit` bytes is read.
import Foundation

#if canImport(Glibc)
import Glibc
#endif

enum PushedFile {
    static let limit = 1 << 20

    /// The file's bytes, or nil when the tree has no such file.
    static func read(_ name: String, in directory: String) throws(BuildError) -> Data? {
        let fd = open(directory + "/" + name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            if errno == ELOOP { throw .pushedFileNotRegular(name) }
            throw .couldNotPrepare("could not read \(name): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { throw .pushedFileNotRegular(name) }
        guard status.st_size <= limit else { throw .pushedFileTooLarge(name, size: Int(status.st_size), limit: limit) }
        var data = Data(count: limit + 1)
        var total = 0
        while total <= limit {
            let count = data.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + total, limit + 1 - total) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            total += count
        }
        // It may have grown since fstat.
        guard total <= limit else { throw .pushedFileTooLarge(name, size: total, limit: limit) }
        return data.prefix(total)
    }
}
