// The ACME objects Slipway reads (RFC 8555 §7.1): only the members it uses, so a CA adding others changes nothing.
import Foundation

struct ACMEDirectory: Decodable {
    var newNonce: String
    var newAccount: String
    var newOrder: String
}

struct ACMEOrder: Decodable {
    var status: String
    var authorizations: [String]
    var finalize: String
    var certificate: String?
    var error: ACMEProblem?
}

struct ACMEAuthorization: Decodable {
    struct Identifier: Decodable { var value: String }
    var status: String
    var identifier: Identifier
    var challenges: [ACMEChallenge]
}

struct ACMEChallenge: Decodable {
    var type: String
    var url: String
    var token: String?
    var status: String
    var error: ACMEProblem?
}

/// An error document (RFC 7807) as the CA sends it.
struct ACMEProblem: Decodable, CustomStringConvertible {
    var type: String?
    var detail: String?
    var subproblems: [ACMEProblem]?

    var description: String {
        let kind = type.map { $0.replacingOccurrences(of: "urn:ietf:params:acme:error:", with: "") } ?? "error"
        var text = detail.map { "\(kind): \($0)" } ?? kind
        if let first = subproblems?.first { text += " (\(first))" }
        // A CA's words reach the admin's terminal and the log: one line, bounded.
        return String(text.map { $0.isNewline || $0 == "\t" ? " " : $0 }.prefix(400))
    }
}
