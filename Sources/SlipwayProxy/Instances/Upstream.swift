// Upstream and ReleaseStamp: where the proxy sends a request, and which release answers there.
import Foundation

/// The address of one app instance (always loopback here).
public struct Upstream: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { "\(host):\(port)" }
}

/// What the version endpoint reports about the release an app host serves.
public struct ReleaseStamp: Sendable, Equatable, Codable {
    public var app: String
    public var release: Int
    public var commit: String
    public var deployedAt: Date

    public init(app: String, release: Int, commit: String, deployedAt: Date) {
        self.app = app
        self.release = release
        self.commit = commit
        self.deployedAt = deployedAt
    }

    /// The name users see for this release, as in `Slipway-Release: v12`.
    public var version: String { "v\(release)" }
}
