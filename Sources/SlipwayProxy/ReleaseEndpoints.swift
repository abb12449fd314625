// ReleaseEndpoints: what the proxy answers itself under an app's endpoint prefix (`/_slipway/` by default) so
// browsers can learn of a new release without ever reaching the app: the version (plain or long-polled), the
// event stream of releases, and client.js. The waiting itself lives in ClientConnectionHandler+Endpoints.
import Foundation
import NIOHTTP1

/// What a watcher of an app's live release hears: another release went live, or the watch is over
/// (the app was removed, or the proxy is stopping).
enum ReleaseNotice: Sendable {
    case live(ReleaseStamp)
    case ended
}

typealias ReleaseWatcher = @Sendable (ReleaseNotice) -> Void

/// How long browsers may wait on the endpoints.
public struct ReleaseNoticeSettings: Sendable {
    /// A comment line on every event stream this often, so idle proxies and NATs in between keep it open.
    public var heartbeat: Duration
    /// The longest `?wait=` a long poll gets, below the idle timeouts of common proxies and browsers.
    public var longestWait: Duration

    public init(heartbeat: Duration = .seconds(15), longestWait: Duration = .seconds(60)) {
        self.heartbeat = heartbeat
        self.longestWait = longestWait
    }
}

enum ReleaseEndpoint {
    case version
    case events
    case clientScript
    case unknown(String)

    init(name: String) {
        switch name {
        case "version": self = .version
        case "events": self = .events
        case "client.js": self = .clientScript
        default: self = .unknown(name)
        }
    }

    static func unknownResponse(_ name: String) -> LocalResponse {
        .text(.notFound, "Slipway has no endpoint \"\(name)\" here; there are version, events and client.js.\n")
    }

    static func onlyGet(allowingHead: Bool) -> LocalResponse {
        let allowed = allowingHead ? "GET, HEAD" : "GET"
        var response = LocalResponse.text(.methodNotAllowed, "Only \(allowed) is allowed here.\n")
        response.headers.add(name: "Allow", value: allowed)
        return response
    }

    // MARK: version

    static func etag(of release: ReleaseStamp) -> String { "\"\(release.app)-\(release.version)\"" }

    /// The release as JSON, or 304 when the client's If-None-Match already names it.
    static func versionResponse(to request: HTTPRequestHead, release: ReleaseStamp) -> LocalResponse {
        let etag = etag(of: release)
        var headers: HTTPHeaders = ["Cache-Control": "no-cache", "ETag": etag]
        if clientHas(release, request) {
            return LocalResponse(status: .notModified, headers: headers, body: "")
        }
        headers.add(name: "Content-Type", value: "application/json")
        return LocalResponse(status: .ok, headers: headers, body: json(for: release))
    }

    /// Whether the request's If-None-Match names `release`: a long poll on it waits for the next one.
    static func clientHas(_ release: ReleaseStamp, _ request: HTTPRequestHead) -> Bool {
        matches(etag: etag(of: release), ifNoneMatch: request.headers["if-none-match"])
    }

    /// `?wait=SECONDS`, capped at `longest`; nil without it (or with 0), so the answer comes at once.
    static func longPollWait(in request: HTTPRequestHead, longest: Duration) -> Duration? {
        let query = request.uri.split(separator: "?", maxSplits: 1).dropFirst().first ?? ""
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.first == "wait", parts.count == 2, let seconds = Double(parts[1]), seconds > 0 else { continue }
            return min(.milliseconds(Int64(min(seconds, 86_400) * 1000)), longest)
        }
        return nil
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

    // MARK: events

    /// The head of an event stream: never cached, never buffered by a proxy in front (nginx reads
    /// X-Accel-Buffering), chunked for HTTP/1.1 and ended by closing for HTTP/1.0.
    static func eventStreamHead(for request: HTTPRequestHead) -> HTTPResponseHead {
        var headers: HTTPHeaders = [
            "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        ]
        if request.version.isAtLeastHTTP11 { headers.add(name: "Transfer-Encoding", value: "chunked") }
        MessageRewriting.addConnectionHeader(to: &headers, clientVersion: request.version, close: true)
        return HTTPResponseHead(version: request.version, status: .ok, headers: headers)
    }

    /// The first bytes of a stream: how long an EventSource waits before reconnecting.
    static let streamPreamble = "retry: 3000\n\n"
    static let heartbeat = ": heartbeat\n\n"

    /// One `release` event; its id is the release number, which a reconnecting EventSource sends back as
    /// Last-Event-ID.
    static func event(for release: ReleaseStamp) -> String {
        "event: release\nid: \(release.release)\ndata: \(json(for: release))\n\n"
    }

    /// The release a reconnecting client last heard of (`12` or `v12`); nil when it heard of none.
    static func lastEventID(in request: HTTPRequestHead) -> Int? {
        guard let value = request.headers.first(name: "last-event-id")?.trimmingWhitespace() else { return nil }
        return Int(value.hasPrefix("v") ? String(value.dropFirst()) : value)
    }

    // MARK: client.js

    static func clientScriptResponse(to request: HTTPRequestHead) -> LocalResponse {
        var headers: HTTPHeaders = ["Cache-Control": "no-cache", "ETag": ClientScript.etag]
        if matches(etag: ClientScript.etag, ifNoneMatch: request.headers["if-none-match"]) {
            return LocalResponse(status: .notModified, headers: headers, body: "")
        }
        headers.add(name: "Content-Type", value: "text/javascript; charset=utf-8")
        return LocalResponse(status: .ok, headers: headers, body: ClientScript.source)
    }
}
