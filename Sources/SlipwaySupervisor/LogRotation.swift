// LogRotation: keeps an instance's log file under a size. The instance writes the file itself (so it
// outlives the daemon), with O_APPEND: the file is copied aside and truncated in place, and the
// instance's next write lands at the start of the emptied file.
import Foundation

/// How big an instance's log may grow, and how many rotated copies (`web.1.log.1` newest) are kept.
public struct LogLimit: Sendable, Equatable {
    public var maxBytes: Int
    public var keep: Int

    public init(maxBytes: Int = 10 << 20, keep: Int = 3) {
        self.maxBytes = maxBytes
        self.keep = keep
    }

    /// Rotates `path` if it has grown past `maxBytes`; returns whether it did. Lines written between the copy and
    /// the truncation are lost, as with logrotate's copytruncate: the price of files the daemon does not hold.
    @discardableResult
    public func rotate(_ path: String) throws -> Bool {
        let files = FileManager.default
        guard let size = (try? files.attributesOfItem(atPath: path))?[.size] as? Int, size > maxBytes else {
            return false
        }
        try? files.removeItem(atPath: "\(path).\(keep)")
        for generation in stride(from: keep - 1, through: 1, by: -1)
        where files.fileExists(atPath: "\(path).\(generation)") {
            try files.moveItem(atPath: "\(path).\(generation)", toPath: "\(path).\(generation + 1)")
        }
        if keep > 0 { try files.copyItem(atPath: path, toPath: "\(path).1") }
        guard truncate(path, 0) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        return true
    }
}
