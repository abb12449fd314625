// BuildCache: what a build keeps for the next one (CACHE_DIR). A build works on a copy of it, made with hard links
// (instant, and a pack that changes a file writes a new one, so the kept ones stay as they were), and only a build
// that succeeds puts its copy in the cache's place: a failed or cut-off build never leaves a half-written cache
// for the next one, as on Heroku.
import Foundation
import SlipwayBasics

struct BuildCache {
    /// The cache builds of the app keep.
    let kept: String
    /// This build's copy, in its scratch folder.
    let working: String

    /// Makes this build's copy of the cache.
    func open(with launcher: any Launcher, environment: [String: String]) async throws(BuildError) {
        do {
            try FileManager.default.createDirectory(atPath: kept, withIntermediateDirectories: true)
            let (status, text) = try await launcher.output(
                of: Command("cp", ["-al", kept, working], environment: environment),
                for: .platform
            )
            guard status.succeeded else { throw BuildError.couldNotPrepare("could not copy the build cache: \(text)") }
        } catch let error as BuildError {
            throw error
        } catch {
            throw .couldNotPrepare(error.userMessage)
        }
    }

    /// The build succeeded: its copy becomes the cache, and the one it replaces goes with the scratch folder.
    func keep() {
        let replaced = working + ".replaced"
        _ = rename(kept, replaced)
        _ = rename(working, kept)
    }
}
