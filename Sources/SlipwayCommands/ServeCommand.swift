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
import SlipwayTLS

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the Slipway daemon: proxy, deployer and control socket."
    )

    @Option(help: ArgumentHelp(Settings.data.help)) var data: String?
    @Option(help: ArgumentHelp(Settings.http.help)) var http: String?
    @Option(help: ArgumentHelp(Settings.https.help)) var https: String?
    @Option(help: ArgumentHelp(Settings.acmeEmail.help)) var acmeEmail: String?
    @Option(help: ArgumentHelp(Settings.acmeChallenge.help)) var acmeChallenge: String?
    @Option(help: ArgumentHelp(Settings.acmeDirectory.help)) var acmeDirectory: String?
    @Option(help: ArgumentHelp(Settings.acmeCABundle.help)) var acmeCaBundle: String?
    @Option(help: ArgumentHelp(Settings.ssh.help)) var ssh: String?
    @Option(help: ArgumentHelp(Settings.sandbox.help)) var sandbox: String?
    @Option(help: ArgumentHelp(Settings.domain.help)) var domain: String?
    @Option(help: ArgumentHelp(Settings.share.help)) var share: String?
    @Option(help: ArgumentHelp(Settings.drainTimeout.help)) var drainTimeout: Int?
    @Option(help: ArgumentHelp(Settings.webSocketCloseWindow.help)) var websocketCloseWindow: Int?
    @Option(help: ArgumentHelp(Settings.stopGrace.help)) var stopGrace: Int?
    @Option(help: ArgumentHelp(Settings.keepReleases.help)) var keepReleases: Int?
    @Option(help: ArgumentHelp(Settings.bootBatch.help)) var bootBatch: Int?
    @Option(help: ArgumentHelp(Settings.maxHeaderSize.help)) var maxHeaderSize: String?
    @Option(help: ArgumentHelp(Settings.maxBodySize.help)) var maxBodySize: String?
    @Option(help: ArgumentHelp(Settings.requestTimeout.help)) var requestTimeout: Int?
    @Option(help: ArgumentHelp(Settings.idleTimeout.help)) var idleTimeout: Int?
    @Option(help: ArgumentHelp(Settings.headerTimeout.help)) var headerTimeout: Int?
    @Option(help: ArgumentHelp(Settings.maxConnections.help)) var maxConnections: Int?
    @Option(help: ArgumentHelp(Settings.maxConnectionsPerAddress.help)) var maxConnectionsPerAddress: Int?
    @Option(help: ArgumentHelp(Settings.livenessInterval.help)) var livenessInterval: Int?
    @Option(help: ArgumentHelp(Settings.livenessFailures.help)) var livenessFailures: Int?
    @Option(help: ArgumentHelp(Settings.maxBuilds.help)) var maxBuilds: Int?
    @Option(help: ArgumentHelp(Settings.buildTimeout.help)) var buildTimeout: Int?
    @Option(help: ArgumentHelp(Settings.logMaxSize.help)) var logMaxSize: String?
    @Option(help: ArgumentHelp(Settings.shutdownTimeout.help)) var shutdownTimeout: Int?
    @Option(help: ArgumentHelp(Settings.sshSessionsPerKey.help)) var sshSessionsPerKey: Int?
    @Option(help: ArgumentHelp(Settings.sshSessionsPerConnection.help)) var sshSessionsPerConnection: Int?
    @Flag(help: ArgumentHelp(Settings.stopApps.help)) var stopApps = false
    @Option(help: ArgumentHelp(Settings.trustedProxies.help)) var trustedProxies: String?

    private var environment: [String: String] { ProcessInfo.processInfo.environment }

    func validate() throws {
        _ = try httpAddress()
        _ = try sshAddress()
        _ = try httpsAddress()
        _ = try sandboxed()
        _ = try clientLimits()
        _ = try sshLimits()
        _ = try trustedProxyNetworks()
        _ = try acmeAccount()
        if let domain = text(Settings.domain, domain), domain.isEmpty || domain.contains("/") {
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
            https: try httpsAddress(),
            ssh: try sshAddress(),
            acme: try acmeAccount(),
            sshLimits: try sshLimits(),
            sandbox: try sandboxed(),
            domain: (text(Settings.domain, domain) ?? Settings.domain.defaultText).lowercased(),
            shareDirectory: try ShareLocation.resolve(flag: share),
            drainTimeout: .seconds(try number(Settings.drainTimeout, drainTimeout)),
            webSocketCloseWindow: .seconds(try number(Settings.webSocketCloseWindow, websocketCloseWindow)),
            stopGrace: .seconds(try number(Settings.stopGrace, stopGrace)),
            keepReleases: max(1, try number(Settings.keepReleases, keepReleases)),
            clientLimits: try clientLimits(),
            trustedProxies: try trustedProxyNetworks(),
            bootBatch: max(1, try number(Settings.bootBatch, bootBatch)),
            stopApps: stopApps || environment[Settings.stopApps.variable] == "1",
            shutdownTimeout: .seconds(try number(Settings.shutdownTimeout, shutdownTimeout)),
            livenessInterval: .seconds(try number(Settings.livenessInterval, livenessInterval)),
            livenessFailures: max(1, try number(Settings.livenessFailures, livenessFailures)),
            maxBuilds: max(1, try number(Settings.maxBuilds, maxBuilds)),
            buildTimeout: .seconds(max(1, try number(Settings.buildTimeout, buildTimeout))),
            logLimit: LogLimit(maxBytes: max(1024, try size(Settings.logMaxSize, logMaxSize)))
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

    private func trustedProxyNetworks() throws -> TrustedProxies {
        do {
            return try TrustedProxies(
                parsing: text(Settings.trustedProxies, trustedProxies) ?? Settings.trustedProxies.defaultText
            )
        } catch {
            throw ValidationError("invalid --trusted-proxies: \(error)")
        }
    }

    /// nil unless an ACME contact address is set.
    private func acmeAccount() throws -> ACMEAccount? {
        guard let email = text(Settings.acmeEmail, acmeEmail), email != "off" else { return nil }
        guard email.utf8.count <= 254, email.split(separator: "@").count == 2,
            email.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "\"" && $0 != "\\" })
        else {
            throw ValidationError(
                "invalid --acme-email \"\(email.prefix(80))\": give an address such as ops@example.com"
            )
        }
        guard try httpsAddress() != nil else {
            throw ValidationError("--acme-email needs the HTTPS listener: drop --https off (or set it to HOST:PORT)")
        }
        let kind = text(Settings.acmeChallenge, acmeChallenge) ?? Settings.acmeChallenge.defaultText
        guard let challenge = ChallengeKind(rawValue: kind) else {
            throw ValidationError(
                "invalid --acme-challenge \"\(kind.prefix(40))\": give "
                    + ChallengeKind.allCases.map(\.rawValue).joined(separator: " or ")
            )
        }
        let directory = text(Settings.acmeDirectory, acmeDirectory) ?? Settings.acmeDirectory.defaultText
        guard let url = URL(string: directory), url.scheme == "https", url.host != nil else {
            throw ValidationError(
                "invalid --acme-directory \"\(directory.prefix(200))\": give the CA's https:// directory URL"
            )
        }
        let bundle = text(Settings.acmeCABundle, acmeCaBundle)
        if let bundle, !FileManager.default.isReadableFile(atPath: bundle) {
            throw ValidationError("cannot read --acme-ca-bundle \(bundle): give a PEM file of the CA's roots")
        }
        return ACMEAccount(email: email, challenge: challenge, directory: directory, caBundle: bundle)
    }

    private func httpAddress() throws -> (String, Int) {
        try address(text(Settings.http, http) ?? Settings.http.defaultText, flag: "--http")
    }

    /// Whether apps' code is to run sandboxed: `on` or `off`.
    private func sandboxed() throws -> Bool {
        let text = text(Settings.sandbox, sandbox) ?? Settings.sandbox.defaultText
        guard text == "on" || text == "off" else {
            throw ValidationError("invalid --sandbox \"\(text)\": write on or off")
        }
        return text == "on"
    }

    /// nil when the HTTPS listener is off.
    private func httpsAddress() throws -> (host: String, port: Int)? {
        let text = text(Settings.https, https) ?? Settings.https.defaultText
        return text == "off" ? nil : try address(text, flag: "--https")
    }

    /// nil when the embedded SSH server is off.
    private func sshAddress() throws -> (host: String, port: Int)? {
        let text = text(Settings.ssh, ssh) ?? Settings.ssh.defaultText
        return text == "off" ? nil : try address(text, flag: "--ssh")
    }

    private func sshLimits() throws -> SSHLimits {
        let limits = SSHLimits(
            sessionsPerKey: try number(Settings.sshSessionsPerKey, sshSessionsPerKey),
            sessionsPerConnection: try number(Settings.sshSessionsPerConnection, sshSessionsPerConnection)
        )
        guard limits.sessionsPerKey > 0, limits.sessionsPerConnection > 0 else {
            throw ValidationError("invalid SSH session limit 0: give at least 1 session per key and per connection")
        }
        return limits
    }

    private func clientLimits() throws -> ClientLimits {
        let headers = try size(Settings.maxHeaderSize, maxHeaderSize)
        guard (1...ClientLimits.largestHeaderBytes).contains(headers) else {
            throw ValidationError("invalid --max-header-size \(headers): give a size from 1 to 80k")
        }
        let body = try size(Settings.maxBodySize, maxBodySize)
        let request = try number(Settings.requestTimeout, requestTimeout)
        let idle = try number(Settings.idleTimeout, idleTimeout)
        let head = try number(Settings.headerTimeout, headerTimeout)
        guard request > 0, idle > 0, head > 0 else {
            throw ValidationError(
                "invalid timeout 0: give --request-timeout, --idle-timeout and --header-timeout in seconds above 0"
            )
        }
        let connections = try number(Settings.maxConnections, maxConnections)
        let perAddress = try number(Settings.maxConnectionsPerAddress, maxConnectionsPerAddress)
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

    /// The flag's text, else its variable's, else nil.
    private func text(_ setting: Setting, _ flag: String?) -> String? {
        flag ?? environment[setting.variable]
    }

    /// `512`, `32k`, `100m`, `2g` (binary units, as nginx reads them), from the flag, its variable or the default.
    private func size(_ setting: Setting, _ flag: String?) throws -> Int {
        guard let text = text(setting, flag) else { return setting.defaultNumber(cpus: CPUs.available) }
        guard let bytes = ByteSize.parse(text) else {
            throw ValidationError(
                "invalid \(flag == nil ? setting.variable : "--" + setting.flag) \"\(text)\": "
                    + "give a size in bytes, or with k, m or g, such as 100m"
            )
        }
        return bytes
    }

    /// The largest whole number a setting takes: a year in seconds. Durations past it would overflow the
    /// nanosecond timers they become, and no count needs more.
    private static let largestSetting = 365 * 24 * 3600

    /// A whole number from the flag, its variable or the default.
    private func number(_ setting: Setting, _ flag: Int?) throws -> Int {
        if let flag {
            guard (0...Self.largestSetting).contains(flag) else {
                throw ValidationError(
                    "invalid \(flag) for \(setting.variable): give a whole number from 0 to \(Self.largestSetting)"
                )
            }
            return flag
        }
        guard let text = environment[setting.variable] else { return setting.defaultNumber(cpus: CPUs.available) }
        guard let number = Int(text), (0...Self.largestSetting).contains(number) else {
            throw ValidationError(
                "invalid \(setting.variable) \"\(text)\": give a whole number from 0 to \(Self.largestSetting)"
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
