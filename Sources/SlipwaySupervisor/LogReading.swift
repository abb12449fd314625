// LogReading: lines of an instance's log file for the pusher, `logs` and `logs -f`, read without holding more
// than `limit` bytes at once. The log is the app's to write: it may grow by a gigabyte between two reads, or
// hold one line without end.
import Foundation

public enum LogReading {
    public static let limit = 1 << 20

    /// The complete lines written since `offset`, and where the next read starts. A reader fallen more than a few
    /// reads behind skips ahead, with a line saying so; a line longer than `limit` is handed on cut. A file that
    /// shrank (rotated, replaced) is read from its start.
    public static func lines(of path: String, from offset: UInt64) -> (lines: [String], end: UInt64) {
        guard let handle = FileHandle(forReadingAtPath: path) else { return ([], offset) }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        var start = size < offset ? 0 : offset
        var skipped: [String] = []
        if size - start > 4 * UInt64(limit) {
            skipped = ["[… \(size - UInt64(limit) - start) bytes skipped: the app wrote faster than they were read]"]
            start = size - UInt64(limit)
        }
        let (lines, end) = read(handle, from: start)
        return (skipped + lines, end)
    }

    /// The last `count` complete lines, found in the file's last `limit` bytes, and the offset after them.
    public static func tail(of path: String, lines count: Int) -> (lines: [String], end: UInt64) {
        guard let handle = FileHandle(forReadingAtPath: path) else { return ([], 0) }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        let (lines, end) = read(handle, from: size > UInt64(limit) ? size - UInt64(limit) : 0)
        return (Array(lines.suffix(count)), end)
    }

    /// A read that starts in the middle of a line (the tail of a big file, a skip ahead) leaves that line's end
    /// out: it is not a line of its own, and has no time to be shown in order by.
    private static func read(_ handle: FileHandle, from offset: UInt64) -> ([String], UInt64) {
        var midLine = false
        if offset > 0, (try? handle.seek(toOffset: offset - 1)) != nil, let before = try? handle.read(upToCount: 1) {
            midLine = before.first != UInt8(ascii: "\n")
        }
        guard (try? handle.seek(toOffset: offset)) != nil, let data = try? handle.read(upToCount: limit), !data.isEmpty
        else { return ([], offset) }
        guard let lastNewline = data.lastIndex(of: UInt8(ascii: "\n")) else {
            // No end of line within `limit` bytes: handed on cut rather than waited for without end.
            guard data.count == limit else { return ([], offset) }
            return ([String(decoding: data, as: UTF8.self) + " [… line cut]"], offset + UInt64(data.count))
        }
        let complete = data[data.startIndex..<lastNewline]
        let lines = complete.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropFirst(
            midLine ? 1 : 0
        ).map { String(decoding: $0, as: UTF8.self) }
        return (lines, offset + UInt64(lastNewline - data.startIndex + 1))
    }
}
