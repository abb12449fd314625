// `slipway serve`: starts the daemon on embedded defaults, every one overridable by a flag or
// an environment variable. No config file, no root.
import ArgumentParser
import Foundation
import Logging
import SlipwayBasics
import SlipwayDaemon
import SlipwayFrontDoor
import SlipwayProxy
import SlipwaySupervisor

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the Slipway daemon: proxy, deployer and control socket."
    )

    @Option(help: "Data directory (env SLIPWAY_DATA; default ~/.slipway).")
    var data: String?

    @Option(help: "Address of the HTTP proxy, HOST:PORT (env SLIPWAY_HTTP; default 127.0.0.1:8080).")
    var http: String?

    @Option(
        help: "Address of the embedded SSH server, HOST:PORT or off (env SLIPWAY_SSH; default 127.0.0.1:2222)."
    )
    var ssh: String?

    @Option(help: "Apps are served at <app>.<domain> (env SLIPWAY_DOMAIN; default localhost).")
    var domain: String?

    @Option(
        help: "Folder holding Slipway's hooks/ and buildpacks/ (env SLIPWAY_SHARE; default: found next to the binary)."
    )
    var share: String?

    @Option(
        help:
            "Seconds an old release gets to finish its requests after a switch (env SLIPWAY_DRAIN_TIMEOUT; default 30)."
    )
    var drainTimeout: Int?

    @Option(
        help: """
            Seconds over which an old release's WebSockets are closed one by one (1001 going away), so clients \
            reconnect gradually (env SLIPWAY_WEBSOCKET_CLOSE_WINDOW; default 10).
            """
    )
    var websocketCloseWindow: Int?

    @Option(help: "Seconds between SIGTERM and SIGKILL when an instance stops (env SLIPWAY_STOP_GRACE; default 30).")
    var stopGrace: Int?

    @Option(help: "Built release trees kept per app for rollbacks (env SLIPWAY_KEEP_RELEASES; default 5).")
    var keepReleases: Int?

    @Option(
        help: """
            Web instances of a release that boot at once; the next batch starts when they are healthy \
            (env SLIPWAY_BOOT_BATCH; default: the number of CPUs).
            """
    )
    var bootBatch: Int?

    @Option(
        help: """
            Most bytes of a request's URL and headers together; more is answered 431 \
            (env SLIPWAY_MAX_HEADER_SIZE; suffix k or m; default 32k; at most 80k).
            """
    )
    var maxHeaderSize: String?

    @Option(
        help: """
            Most bytes of a request body; more is answered 413 \
            (env SLIPWAY_MAX_BODY_SIZE; suffix k, m or g; 0 for no limit; default 100m).
            """
    )
    var maxBodySize: String?

    @Option(
        help: """
            Seconds a client that started a request may stay silent before it is answered 408 \
            (env SLIPWAY_REQUEST_TIMEOUT; default 60).
            """
    )
    var requestTimeout: Int?

    @Option(
        help: "Seconds a keep-alive connection may wait for its next request (env SLIPWAY_IDLE_TIMEOUT; default 75)."
    )
    var idleTimeout: Int?

    @Option(
        help: """
            Seconds a request's line and headers may take to arrive whole, however slowly they trickle in, before \
            it is answered 408 (env SLIPWAY_HEADER_TIMEOUT; default 20).
            """
    )
    var headerTimeout: Int?

    @Option(
        help: """
            Client connections open at once; more are answered 503 and closed \
            (env SLIPWAY_MAX_CONNECTIONS; default 10000).
            """
    )
    var maxConnections: Int?

    @Option(
        help: """
            Client connections open at once from one address; more are answered 503 and closed \
            (env SLIPWAY_MAX_CONNECTIONS_PER_ADDRESS; default 256).
            """
    )
    var maxConnectionsPerAddress: Int?

    @Option(
        help: """
            Seconds between liveness checks of each live web instance; 0 turns them off \
            (env SLIPWAY_LIVENESS_INTERVAL; default 10).
            """
    )
    var livenessInterval: Int?

    @Option(
        help: """
            Failed liveness checks in a row that take an instance out of rotation and replace it \
            (env SLIPWAY_LIVENESS_FAILURES; default 3).
            """
    )
    var livenessFailures: Int?

    @Option(help: "Builds that may run at once, over all apps (env SLIPWAY_MAX_BUILDS; default: the number of CPUs).")
    var maxBuilds: Int?

    @Option(
        help:
            "Seconds a build may run before it is stopped and its deploy fails (env SLIPWAY_BUILD_TIMEOUT; default 900)."
    )
    var buildTimeout: Int?

    @Option(
        help: """
            Size at which an instance's log file is rotated; 3 rotated copies are kept \
            (env SLIPWAY_LOG_MAX_SIZE; suffix k, m or g; default 10m).
            """
    )
    var logMaxSize: String?

    @Option(
        help: """
            Seconds requests in flight get to finish when the daemon stops (env SLIPWAY_SHUTDOWN_TIMEOUT; \
            default 10).
            """
    )
    var shutdownTimeout: Int?

    @Option(
        help: """
            SSH sessions (commands, pushes, `logs -f`) one key may have open at once; more are refused \
            (env SLIPWAY_SSH_SESSIONS_PER_KEY; default 32).
            """
    )
    var sshSessionsPerKey: Int?

    @Option(
        help: """
            SSH sessions one connection may have open at once, as OpenSSH's MaxSessions \
            (env SLIPWAY_SSH_SESSIONS_PER_CONNECTION; default 10).
            """
    )
    var sshSessionsPerConnection: Int?

    @Flag(
        help: """
            Stop every app instance when the daemon stops (env SLIPWAY_STOP_APPS=1). Without it, apps keep \
            running and the next daemon adopts them.
            """
    )
    var stopApps = false

    private var environment: [String: String] { ProcessInfo.processInfo.environment }

    func validate() throws {
        _ = try httpAddress()
        _ = try sshAddress()
        _ = try clientLimits()
        _ = try sshLimits()
        if let domain = domain ?? environment["SLIPWAY_DOMAIN"], domain.isEmpty || domain.contains("/") {
            throw ValidationError(
                "invalid domain \"\(domain)\": give a host name such as localhost or apps.example.com"
            )
        }
    }

    func run() async throws {
        let (host, port) = try httpAddress()
        let configuration = DaemonConfiguration(
            data: DataLocation.resolve(flag: data),
            httpHost: host,
            httpPort: port,
            ssh: try sshAddress(),
            sshLimits: try sshLimits(),
            domain: (domain ?? environment["SLIPWAY_DOMAIN"] ?? "localhost").lowercased(),
            shareDirectory: try ShareLocation.resolve(flag: share),
            drainTimeout: .seconds(try wholeNumber(drainTimeout, "SLIPWAY_DRAIN_TIMEOUT", default: 30)),
            webSocketCloseWindow: .seconds(
                try wholeNumber(websocketCloseWindow, "SLIPWAY_WEBSOCKET_CLOSE_WINDOW", default: 10)
            ),
            stopGrace: .seconds(try wholeNumber(stopGrace, "SLIPWAY_STOP_GRACE", default: 30)),
            keepReleases: max(1, try wholeNumber(keepReleases, "SLIPWAY_KEEP_RELEASES", default: 5)),
            clientLimits: try clientLimits(),
            bootBatch: max(
                1,
                try wholeNumber(bootBatch, "SLIPWAY_BOOT_BATCH", default: CPUs.available)
            ),
            stopApps: stopApps || environment["SLIPWAY_STOP_APPS"] == "1",
            shutdownTimeout: .seconds(try wholeNumber(shutdownTimeout, "SLIPWAY_SHUTDOWN_TIMEOUT", default: 10)),
            livenessInterval: .seconds(try wholeNumber(livenessInterval, "SLIPWAY_LIVENESS_INTERVAL", default: 10)),
            livenessFailures: max(1, try wholeNumber(livenessFailures, "SLIPWAY_LIVENESS_FAILURES", default: 3)),
            maxBuilds: max(1, try wholeNumber(maxBuilds, "SLIPWAY_MAX_BUILDS", default: CPUs.available)),
            buildTimeout: .seconds(max(1, try wholeNumber(buildTimeout, "SLIPWAY_BUILD_TIMEOUT", default: 900))),
            logLimit: LogLimit(
                maxBytes: max(
                    1024,
                    try byteCount(logMaxSize, "--log-max-size", "SLIPWAY_LOG_MAX_SIZE", default: 10 << 20)
                )
            )
        )
        var logger = Logger(label: "slipway")
        logger.logLevel = .info
        do {
            try await Daemon.run(configuration, logger: logger)
        } catch let error as any UserFacingError {
            // A running daemon's failure is not a usage error: one line, no usage text.
            FileHandle.standardError.write(Data("slipway: \(error.description)\n".utf8))
            throw ExitCode.failure
        }
    }

    private func address(_ text: String, flag: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port), colon != text.startIndex
        else { throw ValidationError("invalid \(flag) \"\(text)\": write HOST:PORT, for example 127.0.0.1:8080") }
        return (String(text[..<colon]), port)
    }

    private func httpAddress() throws -> (String, Int) {
        try address(http ?? environment["SLIPWAY_HTTP"] ?? "127.0.0.1:8080", flag: "--http")
    }

    /// nil when the embedded SSH server is off.
    private func sshAddress() throws -> (host: String, port: Int)? {
        let text = ssh ?? environment["SLIPWAY_SSH"] ?? "127.0.0.1:2222"
        return text == "off" ? nil : try address(text, flag: "--ssh")
    }

    private func sshLimits() throws -> SSHLimits {
        let defaults = SSHLimits()
        let limits = SSHLimits(
            sessionsPerKey: try wholeNumber(
                sshSessionsPerKey,
                "SLIPWAY_SSH_SESSIONS_PER_KEY",
                default: defaults.sessionsPerKey
            ),
            sessionsPerConnection: try wholeNumber(
                sshSessionsPerConnection,
                "SLIPWAY_SSH_SESSIONS_PER_CONNECTION",
                default: defaults.sessionsPerConnection
            )
        )
        guard limits.sessionsPerKey > 0, limits.sessionsPerConnection > 0 else {
            throw ValidationError("invalid SSH session limit 0: give at least 1 session per key and per connection")
        }
        return limits
    }

    private func clientLimits() throws -> ClientLimits {
        let headers = try byteCount(maxHeaderSize, "--max-header-size", "SLIPWAY_MAX_HEADER_SIZE", default: 32 * 1024)
        guard (1...ClientLimits.largestHeaderBytes).contains(headers) else {
            throw ValidationError("invalid --max-header-size \(headers): give a size from 1 to 80k")
        }
        let body = try byteCount(maxBodySize, "--max-body-size", "SLIPWAY_MAX_BODY_SIZE", default: 100 * 1024 * 1024)
        let defaults = ClientLimits()
        let request = try wholeNumber(requestTimeout, "SLIPWAY_REQUEST_TIMEOUT", default: 60)
        let idle = try wholeNumber(idleTimeout, "SLIPWAY_IDLE_TIMEOUT", default: 75)
        let head = try wholeNumber(headerTimeout, "SLIPWAY_HEADER_TIMEOUT", default: 20)
        guard request > 0, idle > 0, head > 0 else {
            throw ValidationError(
                "invalid timeout 0: give --request-timeout, --idle-timeout and --header-timeout in seconds above 0"
            )
        }
        let connections = try wholeNumber(
            maxConnections,
            "SLIPWAY_MAX_CONNECTIONS",
            default: defaults.maxConnections
        )
        let perAddress = try wholeNumber(
            maxConnectionsPerAddress,
            "SLIPWAY_MAX_CONNECTIONS_PER_ADDRESS",
            default: defaults.maxConnectionsPerAddress
        )
        guard connections > 0, perAddress > 0 else {
            throw ValidationError(
                "invalid connection limit 0: give --max-connections and --max-connections-per-address above 0"
            )
        }
        return ClientLimits(
            maxHeaderBytes: headers,
            maxBodyBytes: body == 0 ? nil : body,
            requestTimeout: .seconds(request),
            idleTimeout: .seconds(idle),
            headerTimeout: .seconds(head),
            maxConnections: connections,
            maxConnectionsPerAddress: perAddress
        )
    }

    /// `512`, `32k`, `100m`, `2g` (binary units, as nginx reads them).
    private func byteCount(_ flag: String?, _ name: String, _ variable: String, default value: Int) throws -> Int {
        guard let text = flag ?? environment[variable] else { return value }
        let units: [Character: Int] = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30]
        let lowered = text.lowercased()
        let unit = lowered.last.flatMap { units[$0] }
        let digits = unit == nil ? lowered : String(lowered.dropLast())
        guard let number = Int(digits), number >= 0, number <= Int.max / (unit ?? 1) else {
            throw ValidationError(
                "invalid \(flag == nil ? variable : name) \"\(text)\": give a size in bytes, or with k, m or g, such as 100m"
            )
        }
        return number * (unit ?? 1)
    }

    /// The largest whole number a setting takes: a year in seconds. Durations past it would overflow the
    /// nanosecond timers they become, and no count needs more.
    private static let largestSetting = 365 * 24 * 3600

    private func wholeNumber(_ flag: Int?, _ variable: String, default value: Int) throws -> Int {
        if let flag {
            guard (0...Self.largestSetting).contains(flag) else {
                throw ValidationError(
                    "invalid \(flag) for \(variable): give a whole number from 0 to \(Self.largestSetting)"
                )
            }
            return flag
        }
        guard let text = environment[variable] else { return value }
        guard let number = Int(text), (0...Self.largestSetting).contains(number) else {
            throw ValidationError(
                "invalid \(variable) \"\(text)\": give a whole number from 0 to \(Self.largestSetting)"
            )
        }
        return number
    }
}

/// Where the hooks and buildpacks are: `--share`, `$SLIPWAY_SHARE`, the project folder above the
/// binary (a `swift build` tree), or `../share/slipway` beside an installed binary.
enum ShareLocation {
    static func resolve(flag: String?) throws -> String {
        let files = FileManager.default
        let looksRight = { (path: String) in
            files.fileExists(atPath: path + "/hooks/post-receive") && files.fileExists(atPath: path + "/buildpacks")
        }
        if let given = flag ?? ProcessInfo.processInfo.environment["SLIPWAY_SHARE"] {
            let path = DataLocation.absolute(given)
            guard looksRight(path) else {
                throw ValidationError(
                    "\(path) has no hooks/post-receive and buildpacks/; point --share at the Slipway project folder"
                )
            }
            return path
        }
        let executable = (try? files.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
        let installed = directory.appendingPathComponent("../share/slipway").standardized.path
        while directory.path != "/" {
            if looksRight(directory.path) { return directory.path }
            directory = directory.deletingLastPathComponent()
        }
        guard looksRight(installed) else {
            throw ValidationError(
                "cannot find Slipway's hooks/ and buildpacks/; pass --share with the Slipway project folder"
            )
        }
        return installed
    }
}
