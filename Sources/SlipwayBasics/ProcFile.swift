// ProcFile: a /proc file read whole. The kernel says such files are empty, and Foundation's
// String(contentsOfFile:) then reads one page of them only: /proc/net/tcp was cut after its first 26 sockets.
import Foundation

public enum ProcFile {
    /// The file's text, read to its end; nil when it cannot be read.
    public static func text(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.readToEnd() else { return nil }
        return String(decoding: data ?? Data(), as: UTF8.self)
    }
}
