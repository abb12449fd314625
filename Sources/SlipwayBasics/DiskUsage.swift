// DiskUsage: how much a folder holds (`storage APP`), walked without following links, so a link an app made
// cannot make Slipway count (or reveal) what is outside its folder.
import Foundation

public struct DiskUsage: Sendable, Equatable, Codable {
    public var files: Int
    public var bytes: Int64

    /// What `folder` holds; nothing when it does not exist.
    public static func of(_ folder: String) -> DiskUsage {
        var usage = DiskUsage(files: 0, bytes: 0)
        guard let walker = FileManager.default.enumerator(atPath: folder) else { return usage }
        while walker.nextObject() != nil {
            guard let attributes = walker.fileAttributes, attributes[.type] as? FileAttributeType == .typeRegular
            else { continue }
            usage.files += 1
            usage.bytes += (attributes[.size] as? NSNumber)?.int64Value ?? 0
        }
        return usage
    }
}
