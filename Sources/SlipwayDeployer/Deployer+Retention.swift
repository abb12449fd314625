// Retention: which built trees and release logs an app keeps, and which are deleted.
import Foundation
import Logging
import SlipwayBasics
import SlipwayBuilder
import SlipwayGit
import SlipwayProxy
import SlipwayStore
import SlipwaySupervisor

extension Deployer {
    /// Retention: keeps the live release's tree and the trees of the newest retired releases, up to
    /// `keepReleases` in all, and deletes the other built trees. Their history rows stay forever.
    func pruneTrees(of name: AppName) -> [ReleaseVersion] {
        guard let history = try? store.history(of: name).map(\.release) else { return [] }
        let keep = (try? store.app(name).keepReleases) ?? settings.keepReleases
        var kept = Set(history.filter { $0.status == .live }.compactMap(\.buildNumber))
        for release in history where release.status == .retired && kept.count < keep {
            if let tree = release.buildNumber { kept.insert(tree) }
        }
        // A deploy under way owns its tree, and one that started after the history was read is newer than all of it.
        let newest = history.map(\.number).max() ?? 0
        for release in history where release.status == .building || release.status == .deploying {
            kept.insert(release.buildNumber ?? release.number)
        }
        let directory = settings.data.releases(name)
        let trees = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).compactMap(Int.init)
        var removed: [ReleaseVersion] = []
        for tree in trees.sorted() where tree <= newest && !kept.contains(tree) {
            do {
                try FileManager.default.removeItem(atPath: directory + "/\(tree)")
                removed.append(ReleaseVersion(tree))
            } catch {
                logger.warning(
                    "could not remove an old release tree",
                    metadata: ["app.name": "\(name)", "release.number": "\(tree)", "error": "\(error)"]
                )
            }
        }
        pruneReleaseLogs(of: name)
        return removed
    }

    static let keptReleaseLogs = 20

    /// Keeps the app's newest release log files.
    func pruneReleaseLogs(of name: AppName) {
        let directory = settings.data.releaseLogs(name)
        let numbers = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).compactMap {
            $0.hasSuffix(".log") ? Int($0.dropLast(4)) : nil
        }
        for number in numbers.sorted().dropLast(Self.keptReleaseLogs) {
            try? FileManager.default.removeItem(atPath: directory + "/\(number).log")
        }
    }
}
