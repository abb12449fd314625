// Settings: every setting of `slipway serve`, written once: its flag, its environment variable, its default and
// what it means. The flag's help, the reading of flags and variables, and the README's table of defaults (a test
// compares them) all come from here. Defaults that belong to a part (the proxy's limits, the SSH server's, log
// rotation) are that part's, read from it.
import Foundation
import SlipwayBasics
import SlipwayFrontDoor
import SlipwayProxy
import SlipwaySupervisor
import SlipwayTLS

/// One setting of `slipway serve`.
public struct Setting: Sendable {
    public enum Default: Sendable {
        case seconds(Int)
        case count(Int)
        case bytes(Int)
        /// Text shown as code (an address, a path).
        case text(String)
        /// Words that say what it is by default.
        case described(String)
        /// The number of CPUs the daemon may use.
        case cpus
        /// A switch that is off.
        case off
    }

    /// The flag without its dashes (`drain-timeout`).
    public let flag: String
    /// What the flag takes, where it is not a plain value (`HOST:PORT`).
    public let argument: String?
    /// What it is, as the README's table names it.
    public let name: String
    /// What it does, for `--help`.
    public let meaning: String
    public let `default`: Default
    /// What the README's table says after the default (`(then 408)`).
    public let note: String?

    init(
        _ flag: String,
        _ name: String,
        default: Default,
        note: String? = nil,
        argument: String? = nil,
        meaning: String
    ) {
        self.flag = flag
        self.name = name
        self.default = `default`
        self.note = note
        self.argument = argument
        self.meaning = meaning
    }

    /// `SLIPWAY_DRAIN_TIMEOUT` for `drain-timeout`.
    public var variable: String { "SLIPWAY_" + flag.uppercased().replacingOccurrences(of: "-", with: "_") }

    /// The default as a person reads it: `30 s`, `32k`, `the CPUs it may use`.
    public var shownDefault: String {
        switch self.default {
        case .seconds(let seconds): "\(seconds) s"
        case .count(let count): "\(count)"
        case .bytes(let bytes): ByteSize.format(bytes)
        case .text(let text): "`\(text)`"
        case .described(let words): words
        case .cpus: "the CPUs it may use"
        case .off: "off"
        }
    }

    /// The text it defaults to, for a setting given as text.
    public var defaultText: String {
        if case .text(let text) = self.default { text } else { "" }
    }

    /// The whole number it defaults to; CPUs: `cpus`.
    public func defaultNumber(cpus: Int) -> Int {
        switch self.default {
        case .seconds(let number), .count(let number), .bytes(let number): number
        case .cpus: cpus
        case .text, .described, .off: 0
        }
    }

    /// The flag's help: what it does, its variable and its default.
    public var help: String {
        "\(meaning) (env \(variable); default \(shownDefault.replacingOccurrences(of: "`", with: "")))."
    }

    /// Its row in the README's table of defaults.
    public var readmeRow: String {
        let shown = note.map { "\(shownDefault) \($0)" } ?? shownDefault
        let flagCell = "`--\(flag)\(argument.map { " " + $0 } ?? "")`"
        let variableCell = self.default.isSwitch ? "`\(variable)=1`" : "`\(variable)`"
        return "| \(name) | \(shown) | \(flagCell) | \(variableCell) |"
    }
}

extension Setting.Default {
    var isSwitch: Bool { if case .off = self { true } else { false } }
}

public enum Settings {
    public static let data = Setting(
        "data",
        "data directory",
        default: .text("~/.slipway"),
        meaning: "Data directory"
    )
    public static let http = Setting(
        "http",
        "HTTP proxy",
        default: .text("127.0.0.1:8080"),
        argument: "HOST:PORT",
        meaning: "Address of the HTTP proxy"
    )
    public static let https = Setting(
        "https",
        "HTTPS proxy",
        default: .text("127.0.0.1:8443"),
        note: "(`off`: none; certificates from `certs:add`)",
        argument: "HOST:PORT",
        meaning: "Address of the HTTPS proxy (TLS with each app's certificate, chosen by SNI), or off"
    )
    public static let acmeEmail = Setting(
        "acme-email",
        "automatic certificates (ACME)",
        default: .described("off"),
        note: "(set: every app host gets one)",
        argument: "EMAIL",
        meaning: "Contact address of the ACME account; when set, every app host gets a certificate from the ACME CA "
            + "(proved by --acme-challenge), renewed two thirds through its life"
    )
    public static let acmeChallenge = Setting(
        "acme-challenge",
        "how the ACME CA checks a name",
        default: .text(ChallengeKind.http01.rawValue),
        note: "(or \(ChallengeKind.tlsALPN01.rawValue))",
        argument: "KIND",
        meaning: "http-01: the CA asks the HTTP listener, reachable on port 80; tls-alpn-01: it asks the HTTPS "
            + "listener, reachable on port 443 (for hosts whose port 80 is closed)"
    )
    public static let acmeDirectory = Setting(
        "acme-directory",
        "ACME CA",
        default: .text(ACMEDefaults.letsEncrypt),
        note: "(staging: \(ACMEDefaults.letsEncryptStaging))",
        argument: "URL",
        meaning: "Directory URL of the ACME CA: Let's Encrypt's by default, its staging one for trials"
    )
    public static let acmeCABundle = Setting(
        "acme-ca-bundle",
        "roots trusted for the ACME CA's HTTPS",
        default: .described("the system's"),
        argument: "PEM",
        meaning: "PEM file of roots to trust, besides the system's, for the ACME CA's own HTTPS (a private CA)"
    )
    public static let ssh = Setting(
        "ssh",
        "SSH server",
        default: .text("127.0.0.1:2222"),
        note: "(`off`: none)",
        argument: "HOST:PORT",
        meaning: "Address of the embedded SSH server, or off"
    )
    public static let sandbox = Setting(
        "sandbox",
        "apps' code sandboxed (bubblewrap)",
        default: .text("on"),
        note: "(`off`: apps run as the daemon's user, unisolated)",
        meaning: "on: run every build, release phase and instance in a bubblewrap sandbox; off: do not"
    )
    public static let domain = Setting(
        "domain",
        "domain of the app hosts",
        default: .text("localhost"),
        note: "(apps at `<app>.localhost`)",
        meaning: "Apps are served at <app>.<domain>"
    )
    public static let share = Setting(
        "share",
        "hooks and buildpacks",
        default: .described("found next to the binary"),
        meaning: "Folder holding Slipway's hooks/ and buildpacks/"
    )
    public static let drainTimeout = Setting(
        "drain-timeout",
        "drain timeout",
        default: .seconds(30),
        meaning: "Seconds an old release gets to finish its requests after a switch"
    )
    public static let webSocketCloseWindow = Setting(
        "websocket-close-window",
        "WebSocket close window",
        default: .seconds(10),
        meaning: "Seconds over which an old release's WebSockets are closed one by one (1001 going away)"
    )
    public static let stopGrace = Setting(
        "stop-grace",
        "SIGTERM → SIGKILL grace",
        default: .seconds(30),
        meaning: "Seconds between SIGTERM and SIGKILL when an instance stops"
    )
    public static let keepReleases = Setting(
        "keep-releases",
        "built trees kept per app",
        default: .count(5),
        meaning: "Built release trees kept per app for rollbacks"
    )
    public static let bootBatch = Setting(
        "boot-batch",
        "web instances booting at once",
        default: .cpus,
        meaning: "Web instances of a release that boot at once; the next batch starts when they are healthy"
    )
    public static let maxHeaderSize = Setting(
        "max-header-size",
        "request URL + headers",
        default: .bytes(ClientLimits().maxHeaderBytes),
        note: "(431 above; at most \(ByteSize.format(ClientLimits.largestHeaderBytes)))",
        meaning: "Most bytes of a request's URL and headers together, suffix k or m; more is answered 431"
    )
    public static let maxBodySize = Setting(
        "max-body-size",
        "request body",
        default: .bytes(ClientLimits().maxBodyBytes ?? 0),
        note: "(413 above; 0: no limit)",
        meaning: "Most bytes of a request body, suffix k, m or g, 0 for no limit; more is answered 413"
    )
    public static let requestTimeout = Setting(
        "request-timeout",
        "a started request's silence",
        default: .seconds(Int(ClientLimits().requestTimeout.components.seconds)),
        note: "(then 408)",
        meaning: "Seconds a client that started a request may stay silent before it is answered 408"
    )
    public static let idleTimeout = Setting(
        "idle-timeout",
        "keep-alive between requests",
        default: .seconds(Int(ClientLimits().idleTimeout.components.seconds)),
        note: "(then closed)",
        meaning: "Seconds a keep-alive connection may wait for its next request"
    )
    public static let headerTimeout = Setting(
        "header-timeout",
        "a request head to arrive whole",
        default: .seconds(Int(ClientLimits().headerTimeout.components.seconds)),
        note: "(then 408)",
        meaning: "Seconds a request's line and headers may take to arrive whole before it is answered 408"
    )
    public static let maxConnections = Setting(
        "max-connections",
        "client connections open at once",
        default: .count(ClientLimits().maxConnections),
        note: "(503 above)",
        meaning: "Client connections open at once; more are answered 503 and closed"
    )
    public static let maxConnectionsPerAddress = Setting(
        "max-connections-per-address",
        "client connections from one address",
        default: .count(ClientLimits().maxConnectionsPerAddress),
        note: "(503 above)",
        meaning: "Client connections open at once from one address; more are answered 503 and closed"
    )
    public static let trustedProxies = Setting(
        "trusted-proxies",
        "load balancers that may say where requests came from",
        default: .text("none"),
        note: "(their X-Forwarded-* and Forwarded are passed on)",
        argument: "CIDR,…",
        meaning: "Addresses or networks (10.0.0.0/8,192.168.1.7) of load balancers in front of Slipway whose "
            + "X-Forwarded-For, -Proto, -Port, -Host and Forwarded headers reach the app; from anyone else they are "
            + "replaced"
    )
    public static let livenessInterval = Setting(
        "liveness-interval",
        "liveness checks of live instances",
        default: .seconds(10),
        note: "(0: off)",
        meaning: "Seconds between liveness checks of each live web instance; 0 turns them off"
    )
    public static let livenessFailures = Setting(
        "liveness-failures",
        "failed checks in a row that replace an instance",
        default: .count(3),
        meaning: "Failed liveness checks in a row that take an instance out of rotation and replace it"
    )
    public static let maxBuilds = Setting(
        "max-builds",
        "builds at once, over all apps",
        default: .cpus,
        meaning: "Builds that may run at once, over all apps"
    )
    public static let buildTimeout = Setting(
        "build-timeout",
        "build timeout",
        default: .seconds(900),
        meaning: "Seconds a build may run before it is stopped and its deploy fails"
    )
    public static let logMaxSize = Setting(
        "log-max-size",
        "instance log rotated at",
        default: .bytes(LogLimit().maxBytes),
        note: "(\(LogLimit().keep) copies kept)",
        meaning: "Size at which an instance's log file is rotated, suffix k, m or g"
    )
    public static let shutdownTimeout = Setting(
        "shutdown-timeout",
        "requests in flight at shutdown",
        default: .seconds(10),
        note: "(to finish)",
        meaning: "Seconds requests in flight get to finish when the daemon stops"
    )
    public static let sshSessionsPerKey = Setting(
        "ssh-sessions-per-key",
        "SSH sessions open at once per key",
        default: .count(SSHLimits().sessionsPerKey),
        meaning: "SSH sessions (commands, pushes, logs -f) one key may have open at once; more are refused"
    )
    public static let sshSessionsPerConnection = Setting(
        "ssh-sessions-per-connection",
        "SSH sessions open at once per connection",
        default: .count(SSHLimits().sessionsPerConnection),
        meaning: "SSH sessions one connection may have open at once, as OpenSSH's MaxSessions"
    )
    public static let stopApps = Setting(
        "stop-apps",
        "stop the apps with the daemon",
        default: .off,
        note: "(apps keep running, to be adopted)",
        meaning: "Stop every app instance when the daemon stops; without it the next daemon adopts them"
    )

    /// In the README's order.
    public static let all: [Setting] = [
        data, http, https, acmeEmail, acmeChallenge, acmeDirectory, acmeCABundle, ssh, sandbox, domain, share,
        drainTimeout,
        webSocketCloseWindow, stopGrace, keepReleases,
        bootBatch,
        maxHeaderSize, maxBodySize, requestTimeout, idleTimeout, headerTimeout, maxConnections,
        maxConnectionsPerAddress, trustedProxies, livenessInterval, livenessFailures, maxBuilds, buildTimeout,
        logMaxSize,
        shutdownTimeout, sshSessionsPerKey, sshSessionsPerConnection, stopApps,
    ]
}

public enum ACMEDefaults {
    public static let letsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"
    public static let letsEncryptStaging = "https://acme-staging-v02.api.letsencrypt.org/directory"
}
