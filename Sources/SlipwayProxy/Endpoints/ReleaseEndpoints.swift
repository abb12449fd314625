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

    /// The methods the endpoint answers: the stream has no HEAD; an unknown name answers 404 to any.
    private var allowedMethods: [HTTPMethod]? {
        switch self {
        case .version, .clientScript: [.GET, .HEAD]
        case .events: [.GET]
        case .unknown: nil
        }
    }

    /// 405 with the Allow header, for a method the endpoint does not answer; nil when it does.
    func refusal(of method: HTTPMethod) -> LocalResponse? {
        guard let allowed = allowedMethods, !allowed.contains(method) else { return nil }
        let list = allowed.map(\.rawValue).joined(separator: ", ")
        var response = LocalResponse.text(.methodNotAllowed, "Only \(list) is allowed here.\n")
        response.headers.add(name: "Allow", value: list)
        return response
    }

    /// `body` with `etag` and `Cache-Control: no-cache` (cached, but revalidated each time), or 304 when the
    /// client's If-None-Match already names it.
    private static func revalidated(
        _ body: String,
        contentType: String,
        etag: String,
        to request: ClientRequestHead
    ) -> LocalResponse {
        var headers: HTTPHeaders = ["Cache-Control": "no-cache", "ETag": etag]
        if matches(etag: etag, ifNoneMatch: request.values(of: "if-none-match")) {
            return LocalResponse(status: .notModified, headers: headers, body: "")
        }
        headers.add(name: "Content-Type", value: contentType)
        return LocalResponse(status: .ok, headers: headers, body: body)
    }

    // MARK: version

    static func etag(of release: ReleaseStamp) -> String { "\"\(release.app)-\(release.version)\"" }

    /// The release as JSON, or 304 when the client's If-None-Match already names it.
    static func versionResponse(to request: ClientRequestHead, release: ReleaseStamp) -> LocalResponse {
        revalidated(json(for: release), contentType: "application/json", etag: etag(of: release), to: request)
    }

    /// Whether the request's If-None-Match names `release`: a long poll on it waits for the next one.
    static func clientHas(_ release: ReleaseStamp, _ request: ClientRequestHead) -> Bool {
        matches(etag: etag(of: release), ifNoneMatch: request.values(of: "if-none-match"))
    }

    /// `?wait=SECONDS`, capped at `longest`; nil without it (or with 0), so the answer comes at once.
    static func longPollWait(in request: ClientRequestHead, longest: Duration) -> Duration? {
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
    static func eventStreamHead(for request: ClientRequestHead) -> HTTPResponseHead {
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
    static func lastEventID(in request: ClientRequestHead) -> Int? {
        guard let value = request.values(of: "last-event-id").first?.trimmingWhitespace() else { return nil }
        return Int(value.hasPrefix("v") ? String(value.dropFirst()) : value)
    }

    // MARK: client.js

    static func clientScriptResponse(to request: ClientRequestHead) -> LocalResponse {
        revalidated(
            ClientScript.source,
            contentType: "text/javascript; charset=utf-8",
            etag: ClientScript.etag,
            to: request
        )
    }
}
