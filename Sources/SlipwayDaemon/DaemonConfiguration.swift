// DaemonConfiguration: everything `slipway serve` can be told, as the command line and environment said it
// (Settings reads them; each default is written there once).
import SlipwayBasics
import SlipwayFrontDoor
import SlipwayProxy
import SlipwaySupervisor
import SlipwayTLS

/// Everything `slipway serve` can be told.
public struct DaemonConfiguration: Sendable {
    public var data: DataDirectory
    public var httpHost: String
    public var httpPort: Int
    /// The HTTPS listener; nil: none.
    public var https: (host: String, port: Int)?
    /// Where the embedded SSH server listens; nil: it is off.
    public var ssh: (host: String, port: Int)?
    /// The ACME account certificates come from; nil: only given certificates.
    public var acme: ACMEAccount?
    public var sshLimits: SSHLimits
    /// Whether apps' code runs sandboxed (where the host can; otherwise the daemon says so).
    public var sandbox: Bool
    public var domain: String
    /// The folder holding `hooks/` and `buildpacks/`.
    public var shareDirectory: String
    public var drainTimeout: Duration
    public var webSocketCloseWindow: Duration
    public var stopGrace: Duration
    public var keepReleases: Int
    public var clientLimits: ClientLimits
    /// The load balancers whose forwarding headers reach the apps.
    public var trustedProxies: TrustedProxies
    public var bootBatch: Int
    /// Whether stopping the daemon stops the apps too; by default they keep running, to be adopted.
    public var stopApps: Bool
    /// How long requests in flight get to finish when the daemon stops.
    public var shutdownTimeout: Duration
    /// How often live web instances are checked (zero: never), and how many failed checks in a row replace one.
    public var livenessInterval: Duration
    public var livenessFailures: Int
    /// How many builds run at once, and how long one may take.
    public var maxBuilds: Int
    public var buildTimeout: Duration
    /// How big an instance's log file grows before it is rotated.
    public var logLimit: LogLimit

    public init(
        data: DataDirectory,
        httpHost: String,
        httpPort: Int,
        https: (host: String, port: Int)? = nil,
        ssh: (host: String, port: Int)?,
        acme: ACMEAccount? = nil,
        sshLimits: SSHLimits,
        sandbox: Bool,
        domain: String,
        shareDirectory: String,
        drainTimeout: Duration,
        webSocketCloseWindow: Duration,
        stopGrace: Duration,
        keepReleases: Int,
        clientLimits: ClientLimits,
        trustedProxies: TrustedProxies = .none,
        bootBatch: Int,
        stopApps: Bool,
        shutdownTimeout: Duration,
        livenessInterval: Duration,
        livenessFailures: Int,
        maxBuilds: Int,
        buildTimeout: Duration,
        logLimit: LogLimit
    ) {
        self.data = data
        self.httpHost = httpHost
        self.httpPort = httpPort
        self.https = https
        self.ssh = ssh
        self.acme = acme
        self.sshLimits = sshLimits
        self.sandbox = sandbox
        self.domain = domain
        self.shareDirectory = shareDirectory
        self.drainTimeout = drainTimeout
        self.webSocketCloseWindow = webSocketCloseWindow
        self.stopGrace = stopGrace
        self.keepReleases = keepReleases
        self.clientLimits = clientLimits
        self.trustedProxies = trustedProxies
        self.bootBatch = bootBatch
        self.stopApps = stopApps
        self.shutdownTimeout = shutdownTimeout
        self.livenessInterval = livenessInterval
        self.livenessFailures = livenessFailures
        self.maxBuilds = maxBuilds
        self.buildTimeout = buildTimeout
        self.logLimit = logLimit
    }
}

/// Where automatic certificates come from.
public struct ACMEAccount: Sendable {
    public var email: String
    public var challenge: ChallengeKind
    public var directory: String
    /// Roots trusted for the CA's own HTTPS besides the system's.
    public var caBundle: String?

    public init(email: String, challenge: ChallengeKind, directory: String, caBundle: String?) {
        self.email = email
        self.challenge = challenge
        self.directory = directory
        self.caBundle = caBundle
    }
}
