// DataDirectory: where everything Slipway keeps on disk lives (see ARCHITECTURE.md, "Data directory").

/// The paths inside one Slipway data directory.
public struct DataDirectory: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
    }

    public var database: String { root + "/slipway.sqlite" }
    public var controlSocket: String { root + "/control.sock" }
    /// The embedded SSH server's Ed25519 host key (raw seed); `.pub` beside it for known_hosts.
    public var sshHostKey: String { root + "/ssh_host_ed25519_key" }
    /// Holds a `slipway` link to the running binary, so hooks and instances find it without PATH setup.
    public var bin: String { root + "/bin" }
    public var repositories: String { root + "/repos" }
    /// Each app's certificate: `<app>/fullchain.pem`, `<app>/privkey.pem` and `<app>/source` (given or acme).
    public var certificates: String { root + "/certs" }
    /// The ACME account keys, one per CA.
    public var acmeAccounts: String { root + "/acme" }

    public func repository(_ app: AppName) -> String { "\(repositories)/\(app).git" }
    public func appDirectory(_ app: AppName) -> String { "\(root)/apps/\(app)" }
    public func releases(_ app: AppName) -> String { appDirectory(app) + "/releases" }
    public func release(_ app: AppName, _ version: ReleaseVersion) -> String { "\(releases(app))/\(version.number)" }
    public func current(_ app: AppName) -> String { appDirectory(app) + "/current" }
    public func cache(_ app: AppName) -> String { appDirectory(app) + "/cache" }
    public func logs(_ app: AppName) -> String { appDirectory(app) + "/logs" }
    /// The app's own files that outlive its releases (`SLIPWAY_STORAGE`): never pruned, never rolled back.
    public func storage(_ app: AppName) -> String { appDirectory(app) + "/storage" }
    /// Each deploy's whole output (build, release phase, boot), by release number.
    public func releaseLogs(_ app: AppName) -> String { appDirectory(app) + "/release-logs" }
    public func releaseLog(_ app: AppName, _ version: ReleaseVersion) -> String {
        "\(releaseLogs(app))/\(version.number).log"
    }
}
