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
