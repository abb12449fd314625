// BuildError: everything a push can get wrong before an instance boots, one sentence each.
import SlipwayBasics
import SlipwayGit

public enum BuildError: UserFacingError {
    case checkout(GitError)
    case noBuildpackDetected(tried: [String])
    case pinnedBuildpackMissing(String)
    case tooManyBuildpacks(Int, limit: Int)
    case exportFailed(buildpack: String, String)
    case pinnedBuildpackDoesNotApply(String)
    case buildpackFetchFailed(String, output: String)
    case compileFailed(buildpack: String, ExitStatus)
    case releaseScriptFailed(buildpack: String, String)
    case malformedProcfile(line: Int)
    case noWebProcess(types: [String])
    case invalidAppJSON(String)
    /// app.json's `env` requires these (name, description) and the app has none of them set.
    case requiredConfigMissing([(name: String, description: String?)])
    case pushedFileTooLarge(String, size: Int, limit: Int)
    case pushedFileNotRegular(String)
    case couldNotPrepare(String)

    public var description: String {
        switch self {
        case .checkout(let error): error.description
        case .requiredConfigMissing(let missing):
            "app.json requires "
                + missing.map { $0.name + ($0.description.map { " (\($0))" } ?? "") }.joined(separator: ", ")
                + ", not set yet; set \(missing.count == 1 ? "it" : "them") with config:set and push again"
        case .noBuildpackDetected(let tried):
            "no buildpack detected this app (tried \(tried.joined(separator: ", "))); "
                + "add a Procfile with a web: line, or pin a buildpack with a .buildpacks file or BUILDPACK_URL"
        case .tooManyBuildpacks(let count, let limit):
            ".buildpacks names \(count) buildpacks; at most \(limit) run in one build: combine some, then push again"
        case .exportFailed(let buildpack, let reason):
            "the \(buildpack) buildpack's export file could not be read: \(reason)"
        case .pinnedBuildpackMissing(let location):
            "the pinned buildpack \(location) does not exist; fix .buildpacks or BUILDPACK_URL"
        case .pinnedBuildpackDoesNotApply(let location):
            "the pinned buildpack \(location) says it does not apply to this app (bin/detect failed); check the pin"
        case .buildpackFetchFailed(let url, let output):
            "could not fetch the buildpack \(url); check the URL\n" + output.indentedForPusher
        case .compileFailed(let buildpack, let status):
            "the build failed: the \(buildpack) buildpack's compile \(status); fix the error in the build output and push again"
        case .releaseScriptFailed(let buildpack, let reason):
            "the \(buildpack) buildpack's bin/release failed: \(reason)"
        case .malformedProcfile(let line):
            "the Procfile's line \(line) is not `type: command`; fix it and push again"
        case .noWebProcess(let types):
            "no web process type: the Procfile and buildpack define "
                + (types.isEmpty ? "none" : types.sorted().joined(separator: ", "))
                + "; add a `web: <command>` line to the Procfile and push again"
        case .invalidAppJSON(let reason): "app.json is invalid: \(reason); fix it and push again"
        case .pushedFileTooLarge(let name, let size, let limit):
            "\(name) is \(size) bytes, more than the \(limit) allowed; make it smaller and push again"
        case .pushedFileNotRegular(let name):
            "\(name) must be a plain file, not a symbolic link or a device; commit the file itself and push again"
        case .couldNotPrepare(let reason): "could not prepare the build: \(reason)"
        }
    }
}

extension String {
    /// Tool output under a pusher-facing line, Heroku style.
    public var indentedForPusher: String {
        split(separator: "\n", omittingEmptySubsequences: false).map { "       " + $0 }.joined(separator: "\n")
    }
}
