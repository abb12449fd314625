// DeploySettings: what the deployer needs to know about this host, from the daemon's configuration.
import Foundation
import Logging
import SlipwayBasics
import SlipwayBuilder
import SlipwayGit
import SlipwayProxy
import SlipwayStore
import SlipwaySupervisor

/// What the deployer needs to know about this host.
public struct DeploySettings: Sendable {
    public var data: DataDirectory
    /// Apps are served at `<app>.<domain>`.
    public var domain: String
    /// The public address of the proxy, for the URLs the pusher is shown.
    public var publicPort: Int
    /// The project's `hooks/` and `buildpacks/` folders.
    public var hooksDirectory: String
    public var buildpacksDirectory: String
    public var drainTimeout: Duration
    /// WebSockets on a retired release are closed one by one over this long, so clients reconnect gradually.
    public var webSocketCloseWindow: Duration
    /// How many built release trees an app keeps on disk (the live one included), for rollbacks.
    public var keepReleases: Int
    /// How many web instances of a release boot at once; the next batch starts when these are healthy.
    public var bootBatch: Int
    /// How many builds may run at once, over all apps.
    public var maxBuilds: Int
    /// How long a build may run before it is stopped and its deploy fails.
    public var buildTimeout: Duration
    /// How often each live web instance is checked after its switch.
    public var livenessInterval: Duration
    /// Failed checks in a row that take a live instance out of rotation to be replaced.
    public var livenessFailures: Int
    /// The environment every build, release phase and instance starts from (PATH, HOME, LANG, STACK).
    public var baseEnvironment: [String: String]
    /// The environment of the platform's own programs (git for a push, cp for a promotion): the daemon's PATH
    /// with `<data>/bin` first, its HOME and LANG.
    public var platformEnvironment: [String: String]
    /// Said in every deploy's output while apps run unisolated though the operator did not ask for that.
    public var isolationWarning: String?
    /// Why instances cannot be held to limits on this host (`limits:set` says so), if they cannot.
    public var limitsUnavailable: String?

    public init(
        data: DataDirectory,
        domain: String,
        publicPort: Int,
        hooksDirectory: String,
        buildpacksDirectory: String,
        drainTimeout: Duration,
        webSocketCloseWindow: Duration,
        keepReleases: Int,
        bootBatch: Int,
        maxBuilds: Int,
        buildTimeout: Duration,
        livenessInterval: Duration,
        livenessFailures: Int,
        baseEnvironment: [String: String],
        platformEnvironment: [String: String],
        isolationWarning: String? = nil,
        limitsUnavailable: String? = nil
    ) {
        self.data = data
        self.domain = domain
        self.publicPort = publicPort
        self.hooksDirectory = hooksDirectory
        self.buildpacksDirectory = buildpacksDirectory
        self.drainTimeout = drainTimeout
        self.webSocketCloseWindow = webSocketCloseWindow
        self.keepReleases = keepReleases
        self.bootBatch = bootBatch
        self.maxBuilds = maxBuilds
        self.buildTimeout = buildTimeout
        self.livenessInterval = livenessInterval
        self.livenessFailures = livenessFailures
        self.baseEnvironment = baseEnvironment
        self.platformEnvironment = platformEnvironment
        self.isolationWarning = isolationWarning
        self.limitsUnavailable = limitsUnavailable
    }

    public func host(of app: AppName) -> String { "\(app).\(domain)" }

    public func url(of app: AppName) -> String {
        "http://\(host(of: app))" + (publicPort == 80 ? "" : ":\(publicPort)")
    }

    /// How long the app's old release gets to finish its requests after a switch: its own setting, else the daemon's.
    public func drainTimeout(of app: App) -> Duration {
        app.drainTimeout.map(Duration.seconds) ?? drainTimeout
    }
}
