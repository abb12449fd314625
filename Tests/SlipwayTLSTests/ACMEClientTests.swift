// The parts of the ACME client that need no CA: its signatures verify with its JWK, and a CA's token that could
// reach anything but the challenge path is refused. Pebble checks the rest end to end (ACMETests).
import Crypto
import Foundation
import Testing

@testable import SlipwayTLS

@Suite struct ACMEClientTests {
    @Test func aRequestIsAFlattenedJWSThatVerifiesWithTheKeysOwnJWK() throws {
        let key = AccountKey()
        let signed = try key.sign(
            payload: Data(#"{"a":1}"#.utf8),
            url: "https://ca.example/new-order",
            nonce: "n1",
            account: nil
        )
        let fields = try #require(try JSONSerialization.jsonObject(with: signed) as? [String: String])
        func decoded(_ text: String) throws -> Data {
            var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while base64.count % 4 != 0 { base64 += "=" }
            return try #require(Data(base64Encoded: base64))
        }
        let protected = try #require(fields["protected"])
        let header = try #require(try JSONSerialization.jsonObject(with: decoded(protected)) as? [String: Any])
        #expect(header["alg"] as? String == "ES256" && header["nonce"] as? String == "n1")
        #expect(header["url"] as? String == "https://ca.example/new-order")
        let jwk = try #require(header["jwk"] as? [String: String])
        let publicKey = try P256.Signing.PublicKey(rawRepresentation: try decoded(jwk["x"]!) + decoded(jwk["y"]!))
        let signature = try P256.Signing.ECDSASignature(
            rawRepresentation: try decoded(try #require(fields["signature"]))
        )
        #expect(publicKey.isValidSignature(signature, for: Data((protected + "." + fields["payload"]!).utf8)))
        #expect(try decoded(fields["payload"]!) == Data(#"{"a":1}"#.utf8))

        let asGet = try key.sign(payload: nil, url: "https://ca.example/o/1", nonce: "n2", account: "https://ca/a/7")
        let get = try #require(try JSONSerialization.jsonObject(with: asGet) as? [String: String])
        #expect(get["payload"] == "", "POST-as-GET has an empty payload")
        let kid = try #require(try JSONSerialization.jsonObject(with: decoded(get["protected"]!)) as? [String: Any])
        #expect(kid["kid"] as? String == "https://ca/a/7" && kid["jwk"] == nil)
        #expect(key.keyAuthorization(token: "tok").hasPrefix("tok.") && key.thumbprint.count == 43)
    }

    @Test func onlyBase64URLTokensOfSaneLengthAreAnswered() {
        #expect(ACMEClient.isToken("LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"))
        for hostile in [
            "", "short", "../../etc/passwd-aaaaaaaaaaa", "abc def ghi jkl mno",
            "a/b" + String(repeating: "c", count: 20),
            String(repeating: "a", count: 257), "tokén-aaaaaaaaaaaaaaaa", "abcdefghijklmnop\r\nX: y",
        ] {
            #expect(!ACMEClient.isToken(hostile), "\(hostile)")
        }
    }
}
