// ACMEClient: gets a certificate from an ACME CA (RFC 8555) for names this server answers, proving each by the
// daemon's kind of challenge: HTTP-01, answered by the proxy's plain-HTTP listener, or TLS-ALPN-01, by its HTTPS
// one. One account per CA and key, made (or found again: the same key is the same account) on first use. Requests are signed JWS with a fresh nonce each; a `badNonce`
// answer is retried, as §6.5 asks.
import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import SwiftASN1
import X509

/// Answers HTTP-01 challenges: `GET /.well-known/acme-challenge/<token>` gets the key authorization while it is set.
public protocol HTTPChallengeResponder: Sendable {
    func answerChallenge(token: String, with keyAuthorization: String)
    func withdrawChallenge(token: String)
}

public actor ACMEClient {
    public nonisolated let directoryURL: String
    private let email: String
    private let key: AccountKey
    private let challenge: ChallengeKind
    private let http: HTTPClient
    private var directory: ACMEDirectory?
    private var account: String?
    private var nonce: String?

    /// How long a challenge's validation or an order's issuance may take before the attempt is given up.
    static let patience: Duration = .seconds(90)
    static let maxAnswerBytes = 1 << 20

    /// `caBundle`: PEM roots trusted for the CA's own HTTPS besides the system's (a private CA such as Pebble).
    public init(
        directory: String,
        email: String,
        key: AccountKey,
        challenge: ChallengeKind,
        trusting caBundle: String?
    ) {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caBundle { tls.additionalTrustRoots = [.file(caBundle)] }
        self.directoryURL = directory
        self.email = email
        self.key = key
        self.challenge = challenge
        self.http = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(tlsConfiguration: tls, timeout: .init(connect: .seconds(10), read: .seconds(30)))
        )
    }

    public func shutdown() async { try? await http.shutdown() }

    /// A new key and a certificate for it covering `names`, each proved through `responders`.
    public func issue(
        for names: [String],
        answeringWith responders: ChallengeResponders
    ) async throws
        -> CertificateBundle
    {
        let directory = try await self.directory()
        let account = try await self.account(directory)
        let identifiers = names.map { #"{"type":"dns","value":"\#(JSONText.escape($0))"}"# }
        let created = try await post(
            directory.newOrder,
            #"{"identifiers":[\#(identifiers.joined(separator: ","))]}"#,
            account: account,
            step: "open an order for \(names.joined(separator: ", "))"
        )
        guard let orderURL = created.headers.first(name: "Location") else {
            throw ACMEError.unexpected(step: "the new order", what: "no Location header")
        }
        var order = try Self.decode(ACMEOrder.self, created, step: "the new order")
        for authorization in order.authorizations {
            try await prove(authorization, account: account, responders: responders)
        }
        let certificateKey = P256.Signing.PrivateKey()
        let request = try Self.signingRequest(for: names, key: certificateKey)
        let finalized = try await post(
            order.finalize,
            #"{"csr":"\#(Base64URL.encode(request))"}"#,
            account: account,
            step: "issue the certificate"
        )
        order = try Self.decode(ACMEOrder.self, finalized, step: "the finalized order")
        order = try await poll(orderURL, from: order, account: account, step: "issuing the certificate") {
            $0.status != "processing" && $0.status != "pending" && $0.status != "ready"
        }
        guard order.status == "valid", let certificateURL = order.certificate else {
            throw ACMEError.refused(
                step: "issue the certificate",
                problem: order.error?.description ?? "the order is \(order.status)"
            )
        }
        let chain = try await post(certificateURL, nil, account: account, step: "download the certificate")
        do {
            return try CertificateBundle(
                chainPEM: String(buffer: chain.body),
                keyPEM: certificateKey.pemRepresentation,
                roots: [],
                checkingChainAndDates: false
            )
        } catch {
            throw ACMEError.unexpected(step: "the certificate download", what: "\(error)")
        }
    }

    /// Answers the authorization's challenge of the daemon's kind and waits for the CA to check it.
    private func prove(_ url: String, account: String, responders: ChallengeResponders) async throws {
        let read = try await post(url, nil, account: account, step: "read an authorization")
        let authorization = try Self.decode(ACMEAuthorization.self, read, step: "an authorization")
        guard authorization.status != "valid" else { return }
        let host = authorization.identifier.value
        let kind = challenge.rawValue
        guard let offered = authorization.challenges.first(where: { $0.type == kind }),
            let token = offered.token, Self.isToken(token)
        else { throw ACMEError.unexpected(step: "the authorization of \(host)", what: "no usable \(kind) challenge") }
        let withdraw = try responders.answer(
            challenge,
            host: host,
            token: token,
            keyAuthorization: key.keyAuthorization(token: token)
        )
        defer { withdraw() }
        _ = try await post(offered.url, "{}", account: account, step: "check \(host)")
        let checked = try await poll(url, from: authorization, account: account, step: "checking \(host)") {
            $0.status != "pending" && $0.status != "processing"
        }
        guard checked.status == "valid" else {
            let problem = checked.challenges.first { $0.type == kind }?.error
            throw ACMEError.validationFailed(
                host: host,
                problem: problem?.description ?? "it is \(checked.status)",
                toMake: challenge.reachableListener
            )
        }
    }

    /// POST-as-GETs `url` until `done` holds of `object` as the CA last gave it, as often as its Retry-After asks
    /// (1 to 5 s), for `patience`.
    private func poll<Object: Decodable>(
        _ url: String,
        from object: Object,
        account: String,
        step: String,
        until done: (Object) -> Bool
    ) async throws -> Object {
        var object = object
        let deadline = ContinuousClock.now + Self.patience
        var wait = 1
        while !done(object) {
            guard ContinuousClock.now < deadline else { throw ACMEError.timedOut(step: step) }
            try await Task.sleep(for: .seconds(wait))
            let answer = try await post(url, nil, account: account, step: step)
            object = try Self.decode(Object.self, answer, step: step)
            wait = min(5, max(1, answer.headers.first(name: "Retry-After").flatMap(Int.init) ?? 1))
        }
        return object
    }

    private func directory() async throws -> ACMEDirectory {
        if let directory { return directory }
        let answer = try await send(HTTPClientRequest(url: directoryURL), step: "read the directory")
        guard answer.status == .ok else {
            throw ACMEError.refused(step: "show its directory", problem: "HTTP \(answer.status.code)")
        }
        let read = try Self.decode(ACMEDirectory.self, answer, step: "the directory")
        directory = read
        return read
    }

    /// The account's URL: the same key finds the same account again, so none is kept but the key.
    private func account(_ directory: ACMEDirectory) async throws -> String {
        if let account { return account }
        let answer = try await post(
            directory.newAccount,
            #"{"termsOfServiceAgreed":true,"contact":["mailto:\#(JSONText.escape(email))"]}"#,
            account: nil,
            step: "open an account for \(email)"
        )
        guard let url = answer.headers.first(name: "Location") else {
            throw ACMEError.unexpected(step: "the new account", what: "no Location header")
        }
        account = url
        return url
    }

    private struct Answer {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    /// Signs and sends `payload` (nil: POST-as-GET); a `badNonce` refusal is tried again with the nonce it carries.
    private func post(_ url: String, _ payload: String?, account: String?, step: String) async throws -> Answer {
        var attempt = 0
        while true {
            attempt += 1
            let nonce = try await freshNonce()
            let body = try key.sign(payload: payload.map { Data($0.utf8) }, url: url, nonce: nonce, account: account)
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/jose+json")
            request.body = .bytes(ByteBuffer(bytes: body))
            let answer = try await send(request, step: step)
            if (200..<300).contains(answer.status.code) { return answer }
            let problem = try? JSONDecoder().decode(ACMEProblem.self, from: Data(answer.body.readableBytesView))
            if problem?.type == "urn:ietf:params:acme:error:badNonce", attempt < 3 { continue }
            throw ACMEError.refused(step: step, problem: problem?.description ?? "HTTP \(answer.status.code)")
        }
    }

    private func freshNonce() async throws -> String {
        if let nonce {
            self.nonce = nil
            return nonce
        }
        var request = HTTPClientRequest(url: try await directory().newNonce)
        request.method = .HEAD
        _ = try await send(request, step: "give a nonce")
        guard let nonce else { throw ACMEError.unexpected(step: "a new nonce", what: "no Replay-Nonce header") }
        self.nonce = nil
        return nonce
    }

    /// Every answer's Replay-Nonce is kept for the next request.
    private func send(_ request: HTTPClientRequest, step: String) async throws -> Answer {
        var request = request
        request.headers.add(name: "User-Agent", value: "slipway")
        do {
            let response = try await http.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: Self.maxAnswerBytes)
            if let nonce = response.headers.first(name: "Replay-Nonce") { self.nonce = nonce }
            return Answer(status: response.status, headers: response.headers, body: body)
        } catch {
            let reason = "\(error)".split(whereSeparator: \.isNewline).first.map(String.init) ?? "\(error)"
            throw ACMEError.unreachable(url: request.url, reason: String(reason.prefix(300)))
        }
    }

    private static func decode<Object: Decodable>(
        _ type: Object.Type,
        _ answer: Answer,
        step: String
    ) throws
        -> Object
    {
        do {
            return try JSONDecoder().decode(type, from: Data(answer.body.readableBytesView))
        } catch {
            throw ACMEError.unexpected(step: step, what: "not the JSON it should be")
        }
    }

    /// A token is base64url (RFC 8555 §8.3): it goes into a URL path the proxy matches, nothing else may.
    static func isToken(_ token: String) -> Bool {
        (16...256).contains(token.utf8.count)
            && token.utf8.allSatisfy { byte in
                (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            }
    }

    /// A CSR (PKCS #10, DER) for `names`, the first as its common name, all as subject alternative names.
    static func signingRequest(for names: [String], key: P256.Signing.PrivateKey) throws -> [UInt8] {
        let extensions = try Certificate.Extensions {
            SubjectAlternativeNames(names.map { GeneralName.dnsName($0) })
        }
        let request = try CertificateSigningRequest(
            version: .v1,
            subject: try DistinguishedName { CommonName(names[0]) },
            privateKey: Certificate.PrivateKey(key),
            attributes: CertificateSigningRequest.Attributes([
                try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: extensions))
            ]),
            signatureAlgorithm: .ecdsaWithSHA256
        )
        var serializer = DER.Serializer()
        try serializer.serialize(request)
        return serializer.serializedBytes
    }
}
