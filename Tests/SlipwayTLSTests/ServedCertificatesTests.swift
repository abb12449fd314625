// While a TLS-ALPN-01 challenge is checked, only a handshake offering nothing but `acme-tls/1` (the CA's) gets its
// certificate: visitors of the same host go on getting the app's.
import Foundation
import NIOSSL
import SlipwayTestSupport
import Testing

@testable import SlipwayTLS

@Suite struct ServedCertificatesTests {
    @Test func aChallengeIsAnsweredOnlyToAHandshakeOfferingAcmeTLSAlone() async throws {
        let folder = try TemporaryDirectory("served")
        defer { folder.remove() }
        let ca = try await TestCA(in: folder.path)
        let shop = try await ca.leaf("shop", names: ["shop.example.test"])
        let served = ServedCertificates()
        try served.serve(
            CertificateBundle(
                chainPEM: String(contentsOfFile: shop.fullChain, encoding: .utf8),
                keyPEM: String(contentsOfFile: shop.key, encoding: .utf8),
                roots: []
            ),
            for: "shop"
        )
        let app = try #require(served.context(forServerName: "shop.example.test", offering: ["h2", "http/1.1"]))
        #expect(served.context(forServerName: "shop.example.test", offering: ["acme-tls/1"]) == nil)

        try served.answerChallenge(for: "Shop.Example.Test", keyAuthorization: "token.thumbprint")
        let challenge = try #require(served.context(forServerName: "shop.example.test", offering: ["acme-tls/1"]))
        #expect(challenge !== app)
        for visitor in [["h2", "http/1.1"], [], ["acme-tls/1", "http/1.1"]] {
            #expect(served.context(forServerName: "SHOP.example.test", offering: visitor) === app, "\(visitor)")
        }
        #expect(served.context(forServerName: "other.example.test", offering: ["acme-tls/1"]) == nil)

        served.withdrawChallenge(for: "shop.example.test")
        #expect(served.context(forServerName: "shop.example.test", offering: ["acme-tls/1"]) == nil)
        #expect(served.context(forServerName: "shop.example.test", offering: ["http/1.1"]) === app)
    }
}
