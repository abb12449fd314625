// Which keys the system's OpenSSL signs for: RSA only, and never a key it would have to ask a passphrase for.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@testable import SlipwayTLS

@Suite struct SystemRSAKeyTests {
    @Test func onlyAnRSAKeyReadableWithoutAPassphraseIsSignedForByOpenSSL() async throws {
        let folder = try TemporaryDirectory("rsa")
        defer { folder.remove() }
        let ca = try await TestCA(in: folder.path)
        func key(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }
        let rsa = try await ca.leaf("rsa", names: ["rsa.test"], key: .rsa)
        let ecdsa = try await ca.leaf("ecdsa", names: ["ecdsa.test"])
        #expect(SystemRSAKey(pem: try key(rsa.key)) != nil)
        #expect(SystemRSAKey(pem: try key(ecdsa.key)) == nil, "BoringSSL keeps ECDSA keys")
        #expect(SystemRSAKey(pem: "") == nil && SystemRSAKey(pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n") == nil)
        // An encrypted key is refused at once: a daemon has no terminal to ask on, and a prompt would hang it.
        let encrypted = folder.path + "/encrypted.key"
        let made = try await run(
            "openssl",
            ["pkcs8", "-topk8", "-in", rsa.key, "-passout", "pass:secret", "-out", encrypted]
        )
        #expect(made.status.succeeded, "\(made.output)")
        #expect(SystemRSAKey(pem: try key(encrypted)) == nil)
    }
}
