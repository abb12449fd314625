// A given certificate is checked as a browser will check it, and refused in one line when it would fail there.
import Foundation
import SlipwayTestSupport
import Testing

@testable import SlipwayTLS

@Suite struct CertificateBundleTests {
    @Test func aGoodChainIsReadWithItsNamesAndEachWayItCanBeWrongIsRefusedInOneLine() async throws {
        let folder = try TemporaryDirectory("ca")
        defer { folder.remove() }
        let ca = try await TestCA(in: folder.path)
        let shop = try await ca.leaf("shop", names: ["shop.example.test", "*.shop.example.test"])
        let other = try await ca.leaf("other", names: ["other.example.test"])
        func text(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }
        let key = try text(shop.key)

        let bundle = try CertificateBundle(chainPEM: try text(shop.fullChain), keyPEM: key, roots: [])
        #expect(bundle.names == ["shop.example.test", "*.shop.example.test"])
        #expect(bundle.covers("shop.example.test") && bundle.covers("www.shop.example.test"))
        #expect(!bundle.covers("a.b.shop.example.test") && !bundle.covers("example.test"))
        #expect(bundle.issuer.contains("Slipway Test Intermediate"), "\(bundle.issuer)")

        // The root can stay out of the file when the server trusts it, as a public CA's root.
        let withoutRoot = try text(shop.certificate) + text(ca.intermediatePath)
        #expect(throws: CertificateError.self) { try CertificateBundle(chainPEM: withoutRoot, keyPEM: key, roots: []) }
        let trusted = SystemRoots.read(from: ca.rootPath)
        #expect(trusted.count == 1)
        _ = try CertificateBundle(chainPEM: withoutRoot, keyPEM: key, roots: trusted)

        let cases: [(chain: String, key: String, now: Date, says: String)] = [
            (try text(shop.certificate), key, Date(), "the chain is incomplete: CN=shop.example.test is signed by"),
            (
                try text(shop.fullChain), try text(other.key), Date(),
                "the private key is not the key of the certificate"
            ),
            (try text(shop.fullChain), key, Date().addingTimeInterval(86_400 * 40), "the certificate expired on"),
            (try text(shop.fullChain), key, Date().addingTimeInterval(-86_400 * 2), "is not valid before"),
            (try text(ca.intermediatePath) + text(shop.certificate), key, Date(), "the private key is not the key"),
            (
                try text(shop.certificate) + text(ca.rootPath), key, Date(),
                "the chain is broken after CN=shop.example.test"
            ),
            ("not a certificate", key, Date(), "could not read the certificate chain"),
            (try text(shop.fullChain), "not a key", Date(), "could not read the private key"),
        ]
        for (chain, privateKey, now, says) in cases {
            let error = #expect(throws: CertificateError.self) {
                try CertificateBundle(chainPEM: chain, keyPEM: privateKey, roots: [], now: now)
            }
            #expect(error?.description.contains(says) == true, "\(says): \(String(describing: error))")
            #expect(error?.description.contains("\n") == false)
        }
    }
}
