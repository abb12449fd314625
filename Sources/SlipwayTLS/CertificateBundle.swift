// SlipwayTLS: the certificates the HTTPS listener serves. CertificateBundle reads a given chain and key and checks
// them the way a browser will (the key is the certificate's, the dates hold, each certificate is signed by the next
// and the last by a root), so that a bad one is refused in one line when it is added, not found by visitors.
import Foundation
import NIOSSL
import SlipwayBasics
import SwiftASN1
import X509

public enum CertificateError: UserFacingError, Equatable {
    case unreadable(String)
    case keyDoesNotMatch
    case expired(Date)
    case notYetValid(Date)
    case brokenChain(at: String)
    case incompleteChain(subject: String, issuer: String)

    public var description: String {
        switch self {
        case .unreadable(let what): "could not read \(what); give PEM files (fullchain.pem and privkey.pem)"
        case .keyDoesNotMatch:
            "the private key is not the key of the certificate; give the key the certificate was issued for"
        case .expired(let date):
            "the certificate expired on \(date.formatted(.iso8601)); renew it, then add the new one"
        case .notYetValid(let date):
            "the certificate is not valid before \(date.formatted(.iso8601)); check the server's clock, or wait"
        case .brokenChain(let subject):
            "the chain is broken after \(subject): each certificate must be followed by the one that signed it"
        case .incompleteChain(let subject, let issuer):
            "the chain is incomplete: \(subject) is signed by \(issuer), which is neither in the file nor a root "
                + "this server trusts; give the full chain (fullchain.pem), with the intermediate certificates"
        }
    }
}

/// A certificate chain and its key, checked.
public struct CertificateBundle: Sendable {
    /// The PEM text as given, kept as the files the listener loads.
    public let chainPEM: String
    public let keyPEM: String
    /// The host names the certificate covers (its DNS subject alternative names, lowercased).
    public let names: [String]
    public let issuer: String
    public let notValidBefore: Date
    public let notValidAfter: Date
    let chain: [NIOSSLCertificate]
    let key: NIOSSLPrivateKey

    /// Reads and checks `chainPEM` (the certificate first, then each that signed the one before) and `keyPEM`.
    /// `roots`: the certificates the server trusts as roots (the system's, read by `SystemRoots`).
    /// `checkingChainAndDates` false: only the key is checked (a certificate checked when it was added, read again).
    public init(
        chainPEM: String,
        keyPEM: String,
        roots: [Certificate],
        now: Date = Date(),
        checkingChainAndDates: Bool = true
    ) throws(CertificateError) {
        let parsed: [Certificate]
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(Array(chainPEM.utf8))
            parsed = try chain.map { try Certificate(derEncoded: try $0.toDERBytes()) }
        } catch {
            throw .unreadable("the certificate chain")
        }
        guard let leaf = parsed.first else { throw .unreadable("the certificate chain") }
        let privateKey: Certificate.PrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
            privateKey = try Certificate.PrivateKey(pemEncoded: keyPEM)
        } catch {
            throw .unreadable("the private key")
        }
        guard privateKey.publicKey == leaf.publicKey else { throw .keyDoesNotMatch }
        if checkingChainAndDates { try Self.check(parsed, roots: roots, now: now) }
        var names: [String] = []
        if let alternatives = try? leaf.extensions.subjectAlternativeNames {
            for case .dnsName(let name) in alternatives { names.append(name.lowercased()) }
        }
        self.chainPEM = chainPEM
        self.keyPEM = keyPEM
        self.names = names
        self.issuer = leaf.issuer.description
        self.notValidBefore = leaf.notValidBefore
        self.notValidAfter = leaf.notValidAfter
    }

    /// The leaf's dates, each certificate signed by the next, and the last signed by a root (or one itself).
    private static func check(_ parsed: [Certificate], roots: [Certificate], now: Date) throws(CertificateError) {
        let leaf = parsed[0]
        guard now <= leaf.notValidAfter else { throw .expired(leaf.notValidAfter) }
        guard now >= leaf.notValidBefore else { throw .notYetValid(leaf.notValidBefore) }
        for (certificate, signer) in zip(parsed, parsed.dropFirst()) {
            guard certificate.issuer == signer.subject,
                signer.publicKey.isValidSignature(certificate.signature, for: certificate)
            else { throw .brokenChain(at: certificate.subject.description) }
        }
        let last = parsed[parsed.count - 1]
        let selfSigned = last.issuer == last.subject && last.publicKey.isValidSignature(last.signature, for: last)
        let rooted = roots.contains {
            $0.subject == last.issuer && $0.publicKey.isValidSignature(last.signature, for: last)
        }
        guard selfSigned || rooted else {
            throw .incompleteChain(subject: last.subject.description, issuer: last.issuer.description)
        }
    }

    /// Whether the certificate covers `host` (lowercase, as routes and SNI names are kept): a name it has, or a
    /// wildcard (`*.example.com`) one label above.
    public func covers(_ host: String) -> Bool {
        names.contains { name in
            guard name.hasPrefix("*.") else { return name == host }
            guard let dot = host.firstIndex(of: ".") else { return false }
            return host[host.index(after: dot)...] == name.dropFirst(2)
        }
    }
}

/// The roots this server trusts: Debian's bundle of them.
public enum SystemRoots {
    public static let bundle = "/etc/ssl/certs/ca-certificates.crt"

    public static func read(from path: String = bundle) -> [Certificate] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let certificates = try? NIOSSLCertificate.fromPEMBytes(Array(text.utf8))
        else { return [] }
        return certificates.compactMap { try? Certificate(derEncoded: try $0.toDERBytes()) }
    }
}
