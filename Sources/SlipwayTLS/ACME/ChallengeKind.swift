// ChallengeKind: how the CA is shown that this server answers for a name (RFC 8555 §8). HTTP-01 is answered on the
// plain-HTTP listener (the CA asks port 80); TLS-ALPN-01 (RFC 8737) on the HTTPS listener (the CA asks port 443), for
// a host whose port 80 the CA cannot reach. One is chosen for the daemon (`--acme-challenge`), as Traefik's resolvers
// and certbot's `--preferred-challenges` choose.
import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

public enum ChallengeKind: String, Sendable, CaseIterable {
    case http01 = "http-01"
    case tlsALPN01 = "tls-alpn-01"

    /// What an operator makes reachable for the CA to check a name.
    var reachableListener: String {
        switch self {
        case .http01: "port 80 reach the HTTP listener"
        case .tlsALPN01: "port 443 reach the HTTPS listener"
        }
    }
}

/// Where the answers are given while the CA checks them: the proxy's router (HTTP-01) and the served certificates
/// (TLS-ALPN-01).
public struct ChallengeResponders: Sendable {
    let http: any HTTPChallengeResponder
    let tls: ServedCertificates

    public init(http: any HTTPChallengeResponder, tls: ServedCertificates) {
        self.http = http
        self.tls = tls
    }

    /// Gives the answer until the returned closure withdraws it.
    func answer(
        _ kind: ChallengeKind,
        host: String,
        token: String,
        keyAuthorization: String
    ) throws -> @Sendable () -> Void {
        switch kind {
        case .http01:
            http.answerChallenge(token: token, with: keyAuthorization)
            return { [http] in http.withdrawChallenge(token: token) }
        case .tlsALPN01:
            try tls.answerChallenge(for: host, keyAuthorization: keyAuthorization)
            return { [tls] in tls.withdrawChallenge(for: host) }
        }
    }
}

/// The certificate a TLS-ALPN-01 answer presents (RFC 8737 §3): self-signed, for the one host, with the critical
/// acmeIdentifier extension holding the SHA-256 of the key authorization.
public enum TLSALPNChallengeCertificate {
    static let acmeIdentifier: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 1, 31]
    public static let alpn = "acme-tls/1"

    static func make(
        for host: String,
        keyAuthorization: String
    ) throws -> (certificate: NIOSSLCertificate, key: NIOSSLPrivateKey) {
        let key = P256.Signing.PrivateKey()
        var digest = DER.Serializer()
        try digest.serialize(ASN1OctetString(contentBytes: ArraySlice(SHA256.hash(data: Data(keyAuthorization.utf8)))))
        let name = try DistinguishedName { CommonName(host) }
        let now = Date()
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: Certificate.PublicKey(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(7 * 86_400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                SubjectAlternativeNames([.dnsName(host)])
                Certificate.Extension(oid: acmeIdentifier, critical: true, value: ArraySlice(digest.serializedBytes))
            },
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return (
            try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der),
            try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)
        )
    }
}
