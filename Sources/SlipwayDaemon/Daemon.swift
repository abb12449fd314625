// SlipwayDaemon: the composition root of `slipway serve`. Builds the store, supervisor, proxy,
// deployer and control socket, and runs them in one ServiceGroup that shuts down in order on
// SIGTERM or SIGINT. It wires things together and decides nothing else.
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import SlipwayBasics
import SlipwayDeployer
import SlipwayFrontDoor
import SlipwayProxy
import SlipwayStore
import SlipwaySupervisor
import SlipwayTLS
import UnixSignals

public enum DaemonError: UserFacingError {
    case dataDirectory(String, String)
    case alreadyRunning(String)
    /// The proxy's own sentence about its listener.
    case cannotListen(String)

    public var description: String {
        switch self {
        case .dataDirectory(let path, let reason):
            "cannot use the data directory \(path): \(reason); pass another with --data or SLIPWAY_DATA"
        case .alreadyRunning(let path):
            "another slipway daemon is already using \(path); stop it first or pass another --data"
        case .cannotListen(let reason): reason
        }
    }
}

public enum Daemon {
    /// Runs the daemon until SIGTERM or SIGINT.
    public static func run(_ configuration: DaemonConfiguration, logger: Logger) async throws {
        // One event loop per CPU the daemon may use: under `taskset -c 0` a second loop would only make the
        // two take turns on one core. Set before anything touches the shared group; NIO's own variable wins.
        if ProcessInfo.processInfo.environment["NIO_SINGLETON_GROUP_LOOP_COUNT"] == nil {
            NIOSingletons.groupLoopCountSuggestion = CPUs.available
        }
        raiseDescriptorLimit(logger: logger)
        let data = configuration.data
        let lock = try prepare(data, logger: logger)
        defer { close(lock) }
        let store = try AppDatabase.open(path: data.database)
        // Every process an app's deploy or run needs starts through this one launcher (see ARCHITECTURE.md, "Seams").
        let isolation = await AppIsolation.choose(
            sandbox: configuration.sandbox,
            data: data,
            store: store,
            logger: logger
        )
        let launcher = isolation.launcher
        let supervisor = Supervisor(
            stopGrace: configuration.stopGrace,
            logLimit: configuration.logLimit,
            launcher: launcher,
            logger: logger
        ) { instance, event in
            InstanceRecorder.record(event, of: instance, in: store, logger: logger)
        }
        let router = Router()
        let settings = DeploySettings(
            data: data,
            domain: configuration.domain,
            publicPort: configuration.httpPort,
            hooksDirectory: configuration.shareDirectory + "/hooks",
            buildpacksDirectory: configuration.shareDirectory + "/buildpacks",
            drainTimeout: configuration.drainTimeout,
            webSocketCloseWindow: configuration.webSocketCloseWindow,
            keepReleases: configuration.keepReleases,
            bootBatch: configuration.bootBatch,
            maxBuilds: configuration.maxBuilds,
            buildTimeout: configuration.buildTimeout,
            livenessInterval: configuration.livenessInterval,
            livenessFailures: configuration.livenessFailures,
            baseEnvironment: isolation.baseEnvironment,
            platformEnvironment: AppIsolation.platformEnvironment(data),
            isolationWarning: isolation.warning,
            limitsUnavailable: isolation.limitsUnavailable
        )
        let deployer = Deployer(
            settings: settings,
            store: store,
            supervisor: supervisor,
            router: router,
            launcher: launcher,
            logger: logger
        )
        let proxy = ProxyServer(
            router: router,
            logger: logger,
            limits: configuration.clientLimits,
            trustedProxies: configuration.trustedProxies
        )
        // Before the proxy listens, so that its first request already finds the apps an earlier daemon left running.
        let adoption = ContinuousClock.now
        let startup = await deployer.adopt()
        do {
            _ = try await proxy.start(host: configuration.httpHost, port: configuration.httpPort)
            if let https = configuration.https {
                let port = try await proxy.start(host: https.host, port: https.port, tls: deployer.certificates)
                router.setHTTPSPort(port)
            }
        } catch {
            throw DaemonError.cannotListen("\(error)")
        }
        logger.info(
            "apps adopted, proxy listening",
            metadata: ["adoption.duration": "\(ContinuousClock.now - adoption)"]
        )
        let dispatcher = CommandDispatcher(deployer: deployer, store: store, settings: settings, logger: logger)
        let gate = AccessGate(store: store, dispatcher: dispatcher, settings: settings)
        let control = ControlServer(path: data.controlSocket, dispatcher: dispatcher, gate: gate, logger: logger)
        // A graceful shutdown stops them last to first: the control socket first (a deploy under way is
        // cancelled and tells its pusher, through the SSH session that is still up), the proxy last.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: ProxyService(proxy: proxy, shutdownTimeout: configuration.shutdownTimeout)),
            .init(service: DeployerService(deployer: deployer, startup: startup, stopApps: configuration.stopApps)),
            .init(service: LogRotationService(supervisor: supervisor)),
        ]
        if let address = configuration.ssh {
            let ssh = try SSHServer(
                host: address.host,
                port: address.port,
                hostKeyPath: data.sshHostKey,
                gate: gate,
                limits: configuration.sshLimits,
                logger: logger
            )
            services.append(
                .init(service: SSHService(server: ssh, shutdownTimeout: configuration.shutdownTimeout, logger: logger))
            )
        }
        if let account = configuration.acme {
            let client = ACMEClient(
                directory: account.directory,
                email: account.email,
                key: try ACMEAccountKeys(folder: data.acmeAccounts).accountKey(for: account.directory),
                challenge: account.challenge,
                trusting: account.caBundle
            )
            let keeper = CertificateKeeper(
                client: client,
                deployer: deployer,
                store: store,
                responders: ChallengeResponders(http: router, tls: deployer.certificates),
                logger: logger
            )
            await deployer.keepCertificates(with: keeper)
            services.append(.init(service: CertificateService(keeper: keeper)))
        }
        services.append(.init(service: ControlService(server: control)))

        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        logger.info(
            "slipway is serving",
            metadata: [
                "http.address": "\(configuration.httpHost):\(configuration.httpPort)",
                "https.address": "\(configuration.https.map { "\($0.host):\($0.port)" } ?? "off")",
                "socket.path": "\(data.controlSocket)", "data.root": "\(data.root)",
                "ssh.address": "\(configuration.ssh.map { "\($0.host):\($0.port)" } ?? "off")",
                "acme.directory": "\(configuration.acme?.directory ?? "off")",
                "acme.challenge": "\(configuration.acme?.challenge.rawValue ?? "off")",
                "sandbox": "\(isolation.summary)",
                "limits": "\(isolation.limitsUnavailable.map { "unavailable: " + $0 } ?? "available")",
            ]
        )
        try await group.run()
        try? FileManager.default.removeItem(atPath: data.controlSocket)
    }

    /// Creates the data directory, takes its lock, and links `<data>/bin/slipway` (and `serve-static`) to this binary.
    private static func prepare(_ data: DataDirectory, logger: Logger) throws -> Int32 {
        let files = FileManager.default
        do {
            for directory in [data.root, data.bin, data.repositories, data.root + "/apps"] {
                try files.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
        } catch {
            throw DaemonError.dataDirectory(data.root, error.localizedDescription)
        }
        let lock = open(data.root + "/slipway.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw DaemonError.dataDirectory(data.root, String(cString: strerror(errno))) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            close(lock)
            throw DaemonError.alreadyRunning(data.root)
        }
        let tightened = PrivateModes.tighten(data.root, keepingPassage: geteuid() == 0)
        if tightened.changedAnything {
            logger.notice(
                "data directory tightened: other users could read it, now only this user can",
                metadata: [
                    "data.path": "\(data.root)",
                    "data.modeBefore": "\(tightened.rootModeBefore.map { String($0, radix: 8) } ?? "unchanged")",
                    "data.pathsTightened": "\(tightened.pathsBelow)",
                ]
            )
        }
        // `serve-static` too: the static buildpack's web process, where apps run unsandboxed.
        for name in ["slipway", AppIsolation.serveStatic] {
            let link = data.bin + "/" + name
            try? files.removeItem(atPath: link)
            do {
                try files.createSymbolicLink(atPath: link, withDestinationPath: AppIsolation.executable)
            } catch {
                throw DaemonError.dataDirectory(data.root, error.localizedDescription)
            }
        }
        return lock
    }

    /// Every proxied request holds two descriptors and every WebSocket two for as long as it lasts: the soft limit
    /// (often 1024 outside systemd) is raised to the hard one, as Go's runtime and nginx's worker_rlimit_nofile do.
    private static func raiseDescriptorLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        let before = limit.rlim_cur
        limit.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 {
            logger.warning("could not raise the open file limit", metadata: ["limit.soft": "\(before)"])
        }
    }

}
