// AccountKey: the ACME account's P-256 key, which signs every request as a JSON Web Signature (RFC 7515, ES256)
// and whose thumbprint (RFC 7638) ends each challenge's key authorization (RFC 8555 §8.1).
import Crypto
import Foundation

public struct AccountKey: Sendable {
    let key: P256.Signing.PrivateKey

    public init() { key = P256.Signing.PrivateKey() }

    public init(pemRepresentation: String) throws {
        key = try P256.Signing.PrivateKey(pemRepresentation: pemRepresentation)
    }

    public var pemRepresentation: String { key.pemRepresentation }

    /// The public key as a JWK, its members in the lexicographic order RFC 7638 hashes them in.
    var jwk: String {
        let raw = key.publicKey.rawRepresentation
        let x = Base64URL.encode(raw.prefix(32))
        let y = Base64URL.encode(raw.suffix(32))
        return #"{"crv":"P-256","kty":"EC","x":"\#(x)","y":"\#(y)"}"#
    }

    var thumbprint: String { Base64URL.encode(Data(SHA256.hash(data: Data(jwk.utf8)))) }

    /// What the CA expects at `/.well-known/acme-challenge/<token>`.
    func keyAuthorization(token: String) -> String { token + "." + thumbprint }

    /// The flattened JWS of `payload` (nil: an empty payload, a POST-as-GET) for `url`, naming the key by the
    /// account's URL (`kid`) once there is one and by the key itself (`jwk`) before.
    func sign(payload: Data?, url: String, nonce: String, account: String?) throws -> Data {
        let identity = account.map { #""kid":"\#(JSONText.escape($0))""# } ?? #""jwk":\#(jwk)"#
        let header =
            #"{"alg":"ES256",\#(identity),"nonce":"\#(JSONText.escape(nonce))","url":"\#(JSONText.escape(url))"}"#
        let protected = Base64URL.encode(Data(header.utf8))
        let body = payload.map(Base64URL.encode) ?? ""
        let signature = try key.signature(for: Data((protected + "." + body).utf8))
        let signed = Base64URL.encode(signature.rawRepresentation)
        return Data(#"{"protected":"\#(protected)","payload":"\#(body)","signature":"\#(signed)"}"#.utf8)
    }
}

enum Base64URL {
    static func encode<Bytes: DataProtocol>(_ bytes: Bytes) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

enum JSONText {
    /// `text` as the inside of a JSON string.
    static func escape(_ text: String) -> String {
        let encoded = String(decoding: (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
        return String(encoded.dropFirst().dropLast())
    }
}
