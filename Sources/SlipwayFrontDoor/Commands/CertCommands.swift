// The commands about an app's TLS certificate: certs, certs:add and certs:remove. The HTTPS listener presents it,
// chosen by the name the client asks for, from the next handshake on.
import ArgumentParser
import Foundation
import SlipwayBasics
import SlipwayDeployer
import SlipwayStore
import SlipwayTLS

public struct CertsCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Show an app's TLS certificate: the names it covers, its issuer and expiry, and its source."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName

    public init() {}

    public func run(in context: CommandContext) async throws {
        let status = try await context.deployer.certificateStatus(of: app)
        if let bundle = status.certificate {
            context.output.print("=== \(app) certificate")
            try await CertificateSummary.print(bundle, from: status.source, of: app, in: context)
        } else if status.acme {
            context.output.print("\(app) has no certificate yet; it is asked for from the ACME CA")
        } else {
            context.output.print("\(app) has no certificate; add one with `slipway certs:add \(app) --cert … --key …`")
        }
        guard !status.attempts.isEmpty, status.source == .acme || status.certificate == nil else { return }
        context.output.print("=== ACME attempts, newest first")
        for attempt in status.attempts {
            let outcome = attempt.succeeded ? "issued" : "failed"
            context.output.print("\(attempt.at.formatted(.iso8601))  \(outcome)  \(attempt.names): \(attempt.message)")
        }
    }
}

public struct CertsAddCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "certs:add",
        abstract: "Give an app a TLS certificate: its full chain and its private key, as PEM files on the server."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Option(help: "The certificate and the intermediate ones after it (fullchain.pem), as an absolute path.")
    var cert: String
    @Option(help: "Its private key (privkey.pem), as an absolute path.") var key: String

    public init() {}

    public func validate() throws {
        for path in [cert, key] where !path.hasPrefix("/") {
            throw ValidationError("give --cert and --key as absolute paths (the daemon reads them), not \(path)")
        }
    }

    public func run(in context: CommandContext) async throws {
        let chain = try CertificateFile.read(cert, what: "the certificate chain")
        let privateKey = try CertificateFile.read(key, what: "the private key")
        let bundle = try await context.deployer.addCertificate(to: app, chainPEM: chain, keyPEM: privateKey)
        context.output.print("Added \(app)'s certificate; HTTPS serves it from the next connection on")
        try await CertificateSummary.print(bundle, from: .given, of: app, in: context)
    }
}

public struct CertsRemoveCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "certs:remove",
        abstract: "Take an app's TLS certificate away: HTTPS no longer answers for its hosts."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName

    public init() {}

    public func run(in context: CommandContext) async throws {
        try await context.deployer.removeCertificate(of: app)
        context.output.print("Removed \(app)'s certificate")
    }
}

/// A PEM file named on the command line: at most 1 MiB, read by the daemon.
enum CertificateFile {
    struct Unreadable: UserFacingError {
        var path: String
        var what: String
        var description: String {
            "cannot read \(what) at \(path); check the path and that the daemon's user may read it"
        }
    }

    static func read(_ path: String, what: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.read(upToCount: 1 << 20),
            (try? handle.close()) != nil
        else { throw Unreadable(path: path, what: what) }
        return String(decoding: data, as: UTF8.self)
    }
}

/// What `certs` and `certs:add` say of a certificate.
enum CertificateSummary {
    static func print(
        _ bundle: CertificateBundle,
        from source: CertificateSource,
        of app: AppName,
        in context: CommandContext
    ) async throws {
        for line in lines(bundle, from: source, hosts: try await context.deployer.hosts(of: app)) {
            context.output.print(line)
        }
    }

    static func lines(_ bundle: CertificateBundle, from source: CertificateSource, hosts: [String]) -> [String] {
        let uncovered = hosts.filter { !bundle.covers($0) }
        let origin = source == .given ? "given (certs:add)" : "ACME (renewed automatically)"
        var lines: [String] = [
            "Names:    " + (bundle.names.isEmpty ? "(none)" : bundle.names.joined(separator: ", ")),
            "Issuer:   \(bundle.issuer)",
            "Expires:  \(bundle.notValidAfter.formatted(.iso8601))",
            "Source:   \(origin)",
            "Covers:   " + (hosts.filter(bundle.covers).joined(separator: ", ").nonEmpty ?? "none of the app's hosts"),
        ]
        if !uncovered.isEmpty { lines.append("Not covered (no HTTPS): " + uncovered.joined(separator: ", ")) }
        return lines
    }
}

extension String {
    fileprivate var nonEmpty: String? { isEmpty ? nil : self }
}

public struct ProxyHTTPSCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "proxy:https",
        abstract:
            "Show or set what plain HTTP does for an app with HTTPS: off, redirect (308 to https), or only (and HSTS)."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Argument(help: "off, redirect or only.") var mode: HTTPSMode?
    @Option(help: "With only: the Strict-Transport-Security max-age in seconds (default a year).") var maxAge: Int?

    static let maxAgeRange = 0...63_072_000

    public init() {}

    public func validate() throws {
        if let maxAge, !Self.maxAgeRange.contains(maxAge) {
            throw ValidationError("give --max-age in seconds from 0 to 63072000 (two years)")
        }
        if maxAge != nil && mode != .only { throw ValidationError("--max-age goes with only") }
    }

    public func run(in context: CommandContext) async throws {
        if let mode {
            try context.store.setHTTPSMode(mode, hstsMaxAge: maxAge, for: app)
            try await context.deployer.applyRoutes(of: app)
        }
        let record = try context.store.app(app)
        let said: String =
            switch record.httpsMode {
            case .off: "\(app) answers plain HTTP as it answers HTTPS"
            case .redirect: "\(app) redirects plain-HTTP requests to https (308), but ACME challenges"
            case .only:
                "\(app) redirects plain-HTTP requests to https (308), but ACME challenges, and its HTTPS answers carry "
                    + "Strict-Transport-Security: max-age=\(record.hstsMaxAge ?? Deployer.defaultHSTSMaxAge)"
            }
        context.output.print(said)
    }
}

extension HTTPSMode: ExpressibleByArgument {}
