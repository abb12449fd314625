// Apps' certificates: given ones (`certs:add`) checked, every one kept in the data directory and served by the HTTPS
// listener from the next handshake on, and what `certs APP` shows, ACME's attempts included.
import Foundation
import Logging
import SlipwayBasics
import SlipwayStore
import SlipwayTLS

extension Deployer {
    nonisolated var certificateStore: CertificateStore { CertificateStore(folder: settings.data.certificates) }

    /// Checks `chainPEM` and `keyPEM` and makes them the app's certificate; returns it, checked.
    public func addCertificate(to name: AppName, chainPEM: String, keyPEM: String) throws -> CertificateBundle {
        _ = try store.app(name)
        let bundle = try CertificateBundle(chainPEM: chainPEM, keyPEM: keyPEM, roots: SystemRoots.read())
        try certificates.serve(bundle, for: name.rawValue)
        try certificateStore.save(bundle, from: .given, for: name.rawValue)
        logger.info(
            "certificate added",
            metadata: [
                "app.name": "\(name)", "certificate.names": "\(bundle.names)",
                "certificate.expires": "\(bundle.notValidAfter)",
            ]
        )
        return bundle
    }

    /// What `certs APP` shows: the app's certificate, if it has one, where it came from, and the attempts to get one
    /// from the ACME CA (newest first).
    public struct CertificateStatus: Sendable {
        public var certificate: CertificateBundle?
        public var source: CertificateSource
        public var acme: Bool
        public var attempts: [CertificateAttempt]
    }

    public func certificateStatus(of name: AppName) throws -> CertificateStatus {
        _ = try store.app(name)
        return CertificateStatus(
            certificate: certificateStore.load(app: name.rawValue),
            source: certificateStore.source(app: name.rawValue),
            acme: certificateKeeper != nil,
            attempts: try store.certificateAttempts(of: name, limit: 5)
        )
    }

    public func removeCertificate(of name: AppName) throws {
        _ = try store.app(name)
        certificateStore.remove(app: name.rawValue)
        certificates.remove(app: name.rawValue)
        hostsChanged()
    }

    /// With ACME on, makes the keeper look at once at the apps' hosts and certificates.
    func hostsChanged() {
        if let keeper = certificateKeeper { Task { await keeper.wake() } }
    }

    public func keepCertificates(with keeper: CertificateKeeper) {
        certificateKeeper = keeper
    }

    /// At start: every app's kept certificate is served again.
    func serveKeptCertificates(of apps: [App]) {
        for app in apps {
            guard let bundle = certificateStore.load(app: app.name) else { continue }
            do {
                try certificates.serve(bundle, for: app.name)
            } catch {
                logger.error("\(error.userMessage)", metadata: ["app.name": "\(app.name)"])
            }
        }
    }
}
