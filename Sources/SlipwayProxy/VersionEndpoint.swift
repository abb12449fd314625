// VersionEndpoint: `GET /_slipway/version` on any app host, answered by the proxy from the live
// release so browsers can notice a deploy without ever reaching the app.
import Foundation
import NIOHTTP1

enum VersionEndpoint {
    static let path = "/_slipway/version"

    static func response(to request: HTTPRequestHead, release: ReleaseStamp) -> LocalResponse {
        guard request.method == .GET || request.method == .HEAD else {
            var response = LocalResponse.text(
                .methodNotAllowed,
                "Only GET and HEAD are allowed on \(path).\n"
            )
            response.headers.add(name: "Allow", value: "GET, HEAD")
            return response
        }
        let etag = "\"\(release.app)-\(release.version)\""
        var headers: HTTPHeaders = ["Cache-Control": "no-cache", "ETag": etag]
        if matches(etag: etag, ifNoneMatch: request.headers["if-none-match"]) {
            return LocalResponse(status: .notModified, headers: headers, body: "")
        }
        headers.add(name: "Content-Type", value: "application/json")
        return LocalResponse(status: .ok, headers: headers, body: json(for: release))
    }

    /// `{"app":…,"release":N,"version":"vN","commit":…,"deployedAt":"ISO 8601"}`, keys in that order.
    static func json(for release: ReleaseStamp) -> String {
        let fields = [
            "\"app\":\(quoted(release.app))",
            "\"release\":\(release.release)",
            "\"version\":\(quoted(release.version))",
            "\"commit\":\(quoted(release.commit))",
            "\"deployedAt\":\(quoted(release.deployedAt.ISO8601Format()))",
        ]
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// A JSON string literal; JSONEncoder does the escaping so app names and commits can hold anything.
    private static func quoted(_ string: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let data = (try? encoder.encode(string)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// If-None-Match holds a list of entity tags, or `*`; a weak tag (`W/"…"`) matches too (RFC 9110 §13.1.2).
    static func matches(etag: String, ifNoneMatch values: [String]) -> Bool {
        let candidates = values.flatMap { $0.split(separator: ",") }.map { String($0).trimmingWhitespace() }
        return candidates.contains { candidate in
            candidate == "*" || candidate == etag || candidate == "W/" + etag
        }
    }
}
