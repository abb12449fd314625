// DeployError: what can go wrong in a deploy that is not a build's or a boot's, one sentence each; and how a
// deploy ended.
import Foundation
import Logging
import SlipwayBasics
import SlipwayBuilder
import SlipwayGit
import SlipwayProxy
import SlipwayStore
import SlipwaySupervisor

public enum DeployError: UserFacingError {
    case hookMissing(String)
    case couldNotCreate(AppName, String)
    case releasePhaseFailed(command: String, ExitStatus)
    case noSuchProcessType(AppName, ReleaseVersion, String, declared: [String])
    case promoteToItself(AppName)
    case nothingToPromote(AppName)
    case copyFailed(String)
    case buildTimedOut(Duration)
    case limitsUnavailable(String)
    case nothingLive(AppName)
    case noSuchRun(AppName, pid: Int32)

    public var description: String {
        switch self {
        case .promoteToItself(let app): "cannot promote \(app) to itself; name another app as the target"
        case .nothingToPromote(let app):
            "\(app) has no live release with a built tree to promote; deploy it first"
        case .buildTimedOut(let limit):
            "the build ran longer than \(limit.components.seconds)s and was stopped; make it faster, or raise the "
                + "server's --build-timeout, then push again"
        case .limitsUnavailable(let reason): "cannot limit apps on this host: \(reason)"
        case .nothingLive(let app): "\(app) has no live release to run a command in; deploy it first"
        case .noSuchRun(let app, let pid):
            "\(app) has no one-off command run.\(pid) running; `slipway ps \(app)` lists those that are"
        case .copyFailed(let reason): "could not copy the build: \(reason); check the disk space of the data directory"
        case .hookMissing(let path):
            "the git hook \(path) is missing; start slipway from its project folder or pass --share"
        case .couldNotCreate(let app, let reason): "could not create \(app): \(reason)"
        case .noSuchProcessType(let app, let version, let type, let declared):
            "\(app) \(version) has no \(type) process type; its Procfile declares "
                + (declared.isEmpty ? "no worker types" : declared.joined(separator: ", "))
        case .releasePhaseFailed(let command, let status):
            "the release phase (\(command)) \(status); fix it and push again (no instance of this release was started)"
        }
    }
}

/// How a deploy ended, for the caller's exit status.
public enum DeployOutcome: Sendable, Equatable {
    case live
    case failed
    case notDeployed
}
