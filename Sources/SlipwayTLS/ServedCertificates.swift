// ServedCertificates: which certificate the HTTPS listener presents for which host. Each certificate has a TLS
// context of its own, made once when it is served; a handshake takes the one whose certificate covers the name the
// client asks for (SNI), read from its first message before any TLS handler exists, so choosing costs a lookup,
// not a change of the connection's certificate. A change (a certificate added, renewed or removed) is used by the
// next handshake; open connections keep the one they began with.
import Foundation
import NIOCore
import NIOSSL
import Synchronization

public final class ServedCertificates: Sendable {
    /// Each app's certificate, with the TLS context that presents it, made once when it is served.
    private let byApp = Mutex<[String: Served]>([:])
    /// The TLS-ALPN-01 answers being checked now, by host.
    private let challenges = Mutex<[String: NIOSSLContext]>([:])

    private struct Served: Sendable {
        var bundle: CertificateBundle
        var context: NIOSSLContext
    }

    public init() {}

    /// From now on `bundle` is served for the hosts it covers, offering HTTP/2 and HTTP/1.1; it replaces the app's
    /// earlier one. An RSA key signs with the system's OpenSSL where that is faster (`SystemRSAKey`).
    public func serve(_ bundle: CertificateBundle, for app: String) throws(CertificateError) {
        let context: NIOSSLContext
        do {
            context = try Self.context(
                chain: bundle.chain,
                key: SystemRSAKey.serving(bundle.keyPEM) ?? bundle.key,
                protocols: ["h2", "http/1.1"]
            )
        } catch {
            throw .unreadable("the certificate and key as a TLS context (\(error))")
        }
        byApp.withLock { $0[app] = Served(bundle: bundle, context: context) }
    }

    public func remove(app: String) {
        _ = byApp.withLock { $0.removeValue(forKey: app) }
    }

    /// While a CA checks a TLS-ALPN-01 challenge for `host`: a handshake for it offering only `acme-tls/1` (as the CA's
    /// does, and no browser's) gets the challenge's certificate; every other handshake is served as before.
    func answerChallenge(for host: String, keyAuthorization: String) throws {
        let answer = try TLSALPNChallengeCertificate.make(for: host, keyAuthorization: keyAuthorization)
        let context = try Self.context(
            chain: [answer.certificate],
            key: answer.key,
            protocols: [TLSALPNChallengeCertificate.alpn]
        )
        challenges.withLock { $0[host.lowercased()] = context }
    }

    func withdrawChallenge(for host: String) {
        _ = challenges.withLock { $0.removeValue(forKey: host.lowercased()) }
    }

    /// The TLS context for a client that asked for `host` offering `protocols` (ALPN): a challenge's, or the
    /// certificate's that covers the host.
    public func context(forServerName host: String, offering protocols: [String]) -> NIOSSLContext? {
        let host = host.lowercased()
        if protocols == [TLSALPNChallengeCertificate.alpn] {
            return challenges.withLock { $0[host] }
        }
        return byApp.withLock { served in served.values.first { $0.bundle.covers(host) }?.context }
    }

    /// A context presenting `chain` with TLS 1.2 and 1.3 and NIO's modern defaults, offering `protocols` by ALPN.
    private static func context(
        chain: [NIOSSLCertificate],
        key: NIOSSLPrivateKey,
        protocols: [String]
    ) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = protocols
        return try NIOSSLContext(configuration: configuration)
    }
}
