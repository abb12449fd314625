// `slipway serve`: starts the daemon on embedded defaults, every one overridable by a flag or
// an environment variable. No config file, no root.
import ArgumentParser
import Foundation
import Logging
import SlipwayBasics
import SlipwayDaemon

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

    private var environment: [String: String] { ProcessInfo.processInfo.environment }

    func validate() throws {
        _ = try httpAddress()
        _ = try sshAddress()
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
            domain: (domain ?? environment["SLIPWAY_DOMAIN"] ?? "localhost").lowercased(),
            shareDirectory: try ShareLocation.resolve(flag: share),
            drainTimeout: .seconds(try wholeNumber(drainTimeout, "SLIPWAY_DRAIN_TIMEOUT", default: 30)),
            webSocketCloseWindow: .seconds(
                try wholeNumber(websocketCloseWindow, "SLIPWAY_WEBSOCKET_CLOSE_WINDOW", default: 10)
            ),
            stopGrace: .seconds(try wholeNumber(stopGrace, "SLIPWAY_STOP_GRACE", default: 30)),
            keepReleases: max(1, try wholeNumber(keepReleases, "SLIPWAY_KEEP_RELEASES", default: 5))
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

    private func wholeNumber(_ flag: Int?, _ variable: String, default value: Int) throws -> Int {
        if let flag {
            guard flag >= 0 else { throw ValidationError("invalid \(flag) for \(variable): give a whole number") }
            return flag
        }
        guard let text = environment[variable] else { return value }
        guard let number = Int(text), number >= 0 else {
            throw ValidationError("invalid \(variable) \"\(text)\": give a whole number")
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
