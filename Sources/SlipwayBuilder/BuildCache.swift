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
    func open(with launcher: any Launcher) async throws(BuildError) {
        do {
            try FileManager.default.createDirectory(atPath: kept, withIntermediateDirectories: true)
        } catch {
            throw .couldNotPrepare(error.userMessage)
        }
        try await launcher.copy(["-al", kept, working], what: "the build cache")
    }

    /// The build succeeded: its copy becomes the cache, and the one it replaces goes with the scratch folder.
    func keep() {
        let replaced = working + ".replaced"
        _ = rename(kept, replaced)
        _ = rename(working, kept)
    }
}

extension Launcher {
    /// Runs the platform's `cp` with `arguments`; a failure says what could not be copied.
    func copy(_ arguments: [String], what: String) async throws(BuildError) {
        do {
            let (status, text) = try await output(of: Command("cp", arguments, environment: [:]), for: .platform)
            guard status.succeeded else { throw BuildError.couldNotPrepare("could not copy \(what): \(text)") }
        } catch let error as BuildError {
            throw error
        } catch {
            throw .couldNotPrepare(error.userMessage)
        }
    }
}
