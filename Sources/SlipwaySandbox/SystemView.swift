// SystemView: what a sandboxed process sees of the host's system: its programs and libraries (`/usr`, the
// merged-/usr links or directories `/bin`, `/lib`…, `/opt`) and its configuration (`/etc`), read-only, as
// Flatpak shows a runtime and systemd's ProtectSystem=strict shows the host. Nothing else of the host's
// filesystem: no home directories, no /var, no /run but the resolver's files, and never the data directory.
import Foundation

public struct SystemView: Sendable, Equatable {
    /// Host paths shown read-only at the same place.
    public var readOnly: [String]
    /// Links made inside (`/bin` -> `usr/bin` on a merged-/usr host), as path and target.
    public var links: [(path: String, target: String)]
    /// Host paths shown read-only when they exist (a resolver's files under /run).
    public var readOnlyIfPresent: [String]

    public static func == (a: SystemView, b: SystemView) -> Bool {
        a.readOnly == b.readOnly && a.readOnlyIfPresent == b.readOnlyIfPresent
            && a.links.map(\.path) == b.links.map(\.path) && a.links.map(\.target) == b.links.map(\.target)
    }

    /// The directories of the system, read from the host as it is laid out now.
    public static func ofHost(fileManager: FileManager = .default) -> SystemView {
        var view = SystemView(readOnly: [], links: [], readOnlyIfPresent: ["/run/systemd/resolve"])
        for path in ["/usr", "/etc", "/opt"] where fileManager.fileExists(atPath: path) {
            view.readOnly.append(path)
        }
        for path in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            if let target = try? fileManager.destinationOfSymbolicLink(atPath: path) {
                view.links.append((path, target))
            } else if fileManager.fileExists(atPath: path) {
                view.readOnly.append(path)
            }
        }
        return view
    }
}
