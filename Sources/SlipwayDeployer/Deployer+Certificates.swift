// The certificates given to apps (`certs:add`): checked, kept in the data directory, and served by the HTTPS listener
// from the next handshake on.
import Foundation
import Logging
import SlipwayBasics
import SlipwayStore
import SlipwayTLS

extension Deployer {
    var certificateStore: CertificateStore { CertificateStore(folder: settings.data.certificates) }

    /// Checks `chainPEM` and `keyPEM` and makes them the app's certificate; returns it, checked.
    public func addCertificate(to name: AppName, chainPEM: String, keyPEM: String) throws -> CertificateBundle {
        _ = try store.app(name)
        let bundle = try CertificateBundle(chainPEM: chainPEM, keyPEM: keyPEM, roots: SystemRoots.read())
        try certificateStore.save(bundle, for: name.rawValue)
        certificates.serve(bundle, for: name.rawValue)
        logger.info(
            "certificate added",
            metadata: [
                "app.name": "\(name)", "certificate.names": "\(bundle.names)",
                "certificate.expires": "\(bundle.notValidAfter)",
            ]
        )
        return bundle
    }

    /// The app's certificate, if it has one.
    public func certificate(of name: AppName) throws -> CertificateBundle? {
        _ = try store.app(name)
        return certificateStore.load(app: name.rawValue)
    }

    public func removeCertificate(of name: AppName) throws {
        _ = try store.app(name)
        certificateStore.remove(app: name.rawValue)
        certificates.remove(app: name.rawValue)
    }

    /// At start: every app's kept certificate is served again.
    func serveKeptCertificates(of apps: [App]) {
        for app in apps {
            if let bundle = certificateStore.load(app: app.name) { certificates.serve(bundle, for: app.name) }
        }
    }
}
