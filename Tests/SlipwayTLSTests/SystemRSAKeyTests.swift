// The system's OpenSSL signs for RSA keys only, never for a key it would have to ask a passphrase for, and its
// signatures (each TLS scheme) and decryptions are checked by the openssl tool. On this CPU or not, they are right:
// whether it serves a key depends on the CPU (AVX-512 IFMA), what it answers must not.
import Foundation
import NIOSSL
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

    @Test func everySignatureSchemeAndTheRawDecryptionAreWhatOpenSSLsToolChecks() async throws {
        let folder = try TemporaryDirectory("rsa-sign")
        defer { folder.remove() }
        let ca = try await TestCA(in: folder.path)
        let leaf = try await ca.leaf("rsa", names: ["rsa.test"], key: .rsa)
        let key = try #require(SystemRSAKey(pem: try String(contentsOfFile: leaf.key, encoding: .utf8)))
        let publicKey = folder.path + "/public.pem"
        #expect(try await run("openssl", ["pkey", "-in", leaf.key, "-pubout", "-out", publicKey]).status.succeeded)
        let data = Array("the handshake's transcript, as TLS 1.3 has a server sign it".utf8)
        try Data(data).write(to: URL(fileURLWithPath: folder.path + "/data"))
        let schemes: [(SignatureAlgorithm, digest: String, pss: Bool)] = [
            (.rsaPkcs1Sha1, "-sha1", false), (.rsaPkcs1Sha256, "-sha256", false),
            (.rsaPkcs1Sha384, "-sha384", false), (.rsaPkcs1Sha512, "-sha512", false),
            (.rsaPssRsaeSha256, "-sha256", true), (.rsaPssRsaeSha384, "-sha384", true),
            (.rsaPssRsaeSha512, "-sha512", true),
        ]
        for (scheme, digest, pss) in schemes {
            let signature = try #require(key.signature(scheme, of: data), "\(scheme)")
            #expect(signature.count == 256)
            try Data(signature).write(to: URL(fileURLWithPath: folder.path + "/signature"))
            let padding = pss ? ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"] : []
            let checked = try await run(
                "openssl",
                ["dgst", digest] + padding
                    + ["-verify", publicKey, "-signature", folder.path + "/signature", folder.path + "/data"]
            )
            #expect(checked.output.contains("Verified OK"), "\(scheme): \(checked.output)")
        }
        #expect(key.signature(.ecdsaSecp256R1Sha256, of: data) == nil, "not an RSA scheme")

        // Below the modulus (a leading zero byte), as a TLS 1.2 premaster secret's padded block is.
        let plain = [0] + (1..<256).map { UInt8($0 & 0xFF) }
        try Data(plain).write(to: URL(fileURLWithPath: folder.path + "/plain"))
        let encrypted = try await run(
            "openssl",
            [
                "pkeyutl", "-encrypt", "-pubin", "-inkey", publicKey, "-pkeyopt", "rsa_padding_mode:none",
                "-in", folder.path + "/plain", "-out", folder.path + "/encrypted",
            ]
        )
        #expect(encrypted.status.succeeded, "\(encrypted.output)")
        let cipher = try Array(Data(contentsOf: URL(fileURLWithPath: folder.path + "/encrypted")))
        #expect(key.rawDecryption(of: cipher) == plain)
        #expect(key.rawDecryption(of: [1, 2, 3]) == nil, "a ciphertext of the wrong length")
    }
}
