// ServedCertificates: which certificate the HTTPS listener presents for which host, chosen per handshake from the
// name the client asks for (SNI). A change (a certificate added or removed) is used by the next handshake; open
// connections keep the one they began with.
import Crypto
import Foundation
import NIOCore
import NIOSSL
import SwiftASN1
import Synchronization
import X509

public final class ServedCertificates: Sendable {
    /// Each app's certificate, with the hosts it is served for.
    private let byApp = Mutex<[String: CertificateBundle]>([:])

    public init() {}

    /// From now on `bundle` is served for the hosts it covers; it replaces the app's earlier one.
    public func serve(_ bundle: CertificateBundle, for app: String) {
        byApp.withLock { $0[app] = bundle }
    }

    public func remove(app: String) {
        _ = byApp.withLock { $0.removeValue(forKey: app) }
    }

    /// The certificate for `host`, if one covers it.
    func bundle(for host: String) -> CertificateBundle? {
        byApp.withLock { bundles in bundles.values.first { $0.covers(host) } }
    }

    public enum ServeError: Error {
        case noCertificate(String?)
    }

    /// The TLS context of the HTTPS listener: TLS 1.2 and 1.3 with NIO's modern defaults, offering HTTP/2 and
    /// HTTP/1.1 by ALPN. It presents, per
    /// handshake, the certificate that covers the name the client asked for; a client that asks for a host no
    /// certificate covers (or for none) gets no certificate and the handshake ends.
    public func serverContext() throws -> NIOSSLContext {
        let placeholder = try Self.placeholder()
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(placeholder.certificate)],
            privateKey: .privateKey(placeholder.key)
        )
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["h2", "http/1.1"]
        configuration.sslContextCallback = { [self] values, promise in
            guard let name = values.serverHostname, let bundle = bundle(for: name) else {
                promise.fail(ServeError.noCertificate(values.serverHostname))
                return
            }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = bundle.chain.map { .certificate($0) }
            override.privateKey = .privateKey(bundle.key)
            promise.succeed(override)
        }
        return try NIOSSLContext(configuration: configuration)
    }

    /// A context needs a certificate of its own before any handshake chooses one: a self-signed one for no host,
    /// made at start and never presented (a handshake without a covering certificate fails before).
    private static func placeholder() throws -> (certificate: NIOSSLCertificate, key: NIOSSLPrivateKey) {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("slipway placeholder") }
        let now = Date()
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: now,
            notValidAfter: now.addingTimeInterval(3600),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: Certificate.Extensions {},
            issuerPrivateKey: .init(key)
        )
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return (
            try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der),
            try NIOSSLPrivateKey(bytes: Array(key.derRepresentation), format: .der)
        )
    }
}
