// One OpenSSH public key, as `ssh-keygen` writes it to id_*.pub: `TYPE BASE64 [COMMENT]`. Slipway
// stores and compares keys as `TYPE BASE64` only, so a comment never decides who someone is.
import Crypto
import Foundation
import NIOSSH
import SlipwayBasics

public enum PublicKeyError: UserFacingError {
    case empty
    case malformed
    case unsupported(String)

    public var description: String {
        switch self {
        case .empty:
            "no public key on stdin; pipe one in, e.g. `slipway keys:add NAME --role admin < ~/.ssh/id_ed25519.pub`"
        case .malformed:
            "that is not an OpenSSH public key line (TYPE BASE64 [COMMENT]); give the contents of a .pub file"
        case .unsupported(let type):
            "\(type) keys are not supported; use an ed25519 key (`ssh-keygen -t ed25519`) or ECDSA"
        }
    }
}

public struct PublicKeyLine: Sendable, Equatable {
    /// `ssh-ed25519 AAAA…`: what the store keeps and the SSH server compares.
    public var key: String
    public var comment: String
    /// `SHA256:…` as `ssh-keygen -lf` prints it.
    public var fingerprint: String

    /// Parses the first non-empty, non-comment line of `text`. Only the key types the embedded
    /// server can verify are accepted (ed25519, ECDSA), so a key that is added can always log in.
    public init(parsing text: String) throws {
        guard
            let line = text.split(whereSeparator: \.isNewline).map({ $0.trimmingCharacters(in: .whitespaces) })
                .first(where: { !$0.isEmpty && !$0.hasPrefix("#") })
        else { throw PublicKeyError.empty }
        let fields = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true).map(String.init)
        guard fields.count >= 2, let blob = Data(base64Encoded: fields[1]) else { throw PublicKeyError.malformed }
        let key = fields[0] + " " + fields[1]
        guard (try? NIOSSHPublicKey(openSSHPublicKey: key)) != nil else {
            if fields[0].hasPrefix("ssh-") || fields[0].hasPrefix("ecdsa-") || fields[0].hasPrefix("sk-") {
                throw PublicKeyError.unsupported(fields[0])
            }
            throw PublicKeyError.malformed
        }
        self.key = key
        comment = fields.count > 2 ? fields[2] : ""
        fingerprint =
            "SHA256:" + Data(SHA256.hash(data: blob)).base64EncodedString().replacingOccurrences(of: "=", with: "")
    }
}
