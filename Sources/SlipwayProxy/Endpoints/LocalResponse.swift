// LocalResponse: an answer the proxy gives itself (404, 502, the version endpoint, ...) with
// explicit framing, since the response encoder is told not to add any.
import NIOHTTP1

struct LocalResponse {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    var body: String

    /// A short plain-text answer: one sentence that says what happened.
    static func text(_ status: HTTPResponseStatus, _ body: String) -> LocalResponse {
        LocalResponse(
            status: status,
            headers: ["Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"],
            body: body
        )
    }

    /// The head for this answer to a request: a Content-Length always (HEAD keeps the length of the body it
    /// does not get), and the Connection header the client's HTTP version needs.
    func head(clientVersion: HTTPVersion, close: Bool) -> HTTPResponseHead {
        var headers = self.headers
        if status.mayHaveResponseBody {
            headers.replaceOrAdd(name: "Content-Length", value: String(body.utf8.count))
        }
        MessageRewriting.addConnectionHeader(to: &headers, clientVersion: clientVersion, close: close)
        return HTTPResponseHead(version: clientVersion, status: status, headers: headers)
    }

    func sendsBody(to method: HTTPMethod) -> Bool {
        !method.isHEAD && status.mayHaveResponseBody && !body.isEmpty
    }
}

// The proxy's answers when it does not forward a request.
extension LocalResponse {
    static func unknownHost(_ host: String) -> LocalResponse {
        .text(.notFound, "No app is served at \(host).\n")
    }

    static func bodyTooLarge(_ most: Int) -> LocalResponse {
        .text(.payloadTooLarge, "This request's body is larger than the \(most) bytes allowed.\n")
    }

    static let requestTimeout = LocalResponse.text(
        .requestTimeout,
        "This request did not arrive in time: the client stopped sending before it was complete.\n"
    )

    static func noLiveRelease(_ app: String) -> LocalResponse {
        .text(.serviceUnavailable, "\(app) has no live release yet: push to deploy it.\n")
    }

    /// 308: the same request, at `location` (a plain-HTTP request of an app that wants HTTPS).
    static func redirect(to location: String) -> LocalResponse {
        LocalResponse(
            status: .permanentRedirect,
            headers: ["Location": location, "Content-Type": "text/plain; charset=utf-8"],
            body: "This app answers over HTTPS: \(location)\n"
        )
    }

    /// A page a person reads, with `Retry-After` so crawlers and clients come back later.
    static func maintenance(_ app: String) -> LocalResponse {
        LocalResponse(
            status: .serviceUnavailable,
            headers: [
                "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", "Retry-After": "120",
            ],
            body: """
                <!doctype html><html lang="en"><head><meta charset="utf-8"><title>Down for maintenance</title>
                <meta name="viewport" content="width=device-width, initial-scale=1"></head>
                <body style="font-family:system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em">
                <h1>Down for maintenance</h1><p>\(app) is being worked on and will be back shortly.</p></body></html>

                """
        )
    }
}
