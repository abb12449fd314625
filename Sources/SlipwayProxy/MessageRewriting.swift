// MessageRewriting: how a client's request head becomes the head sent to an instance, and how an
// instance's response head becomes the one the client sees (hop-by-hop headers, X-Forwarded-*, framing).
import NIOHTTP1

extension HTTPHeaders {
    /// The comma-separated tokens of every `Connection` header, lowercased.
    var connectionTokens: Set<String> {
        Set(self["connection"].flatMap { $0.split(separator: ",") }.map { $0.trimmingWhitespaceAndLowercase() })
    }

    /// Removes the headers that describe one hop rather than the message (RFC 9110 §7.6.1), and the framing
    /// headers the decoders have already consumed. `Upgrade` stays for a WebSocket handshake.
    mutating func removeHopByHop(keepingUpgrade: Bool) {
        let named = connectionTokens
        for name in named where !(keepingUpgrade && name == "upgrade") { remove(name: name) }
        for name in ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding"] {
            remove(name: name)
        }
        if !keepingUpgrade { remove(name: "upgrade") }
    }
}

extension HTTPHeaders {
    /// The value of the first cookie called `name` in the request's Cookie headers.
    func cookie(named name: String) -> Substring? {
        for header in self["cookie"] {
            for pair in header.split(separator: ";") {
                let pair = pair.drop(while: { $0 == " " })
                guard let equals = pair.firstIndex(of: "="), pair[..<equals] == name else { continue }
                return pair[pair.index(after: equals)...]
            }
        }
        return nil
    }
}

extension Substring {
    fileprivate func trimmingWhitespaceAndLowercase() -> String {
        String(self).trimmingWhitespace().lowercased()
    }
}

extension HTTPRequestHead {
    /// Asks to switch to the WebSocket protocol: the only upgrade the proxy passes through.
    var isWebSocketUpgrade: Bool {
        headers.connectionTokens.contains("upgrade")
            && headers["upgrade"].contains { $0.lowercased().contains("websocket") }
    }

    /// The request decoder parses nothing after such a request (llhttp treats it as a protocol switch),
    /// so the client connection must close after its response unless it becomes a tunnel.
    var endsHTTPOnThisConnection: Bool {
        method == .CONNECT || (headers.connectionTokens.contains("upgrade") && headers.contains(name: "upgrade"))
    }

    /// Safe to send twice: a request on a stale keep-alive connection may be retried even after its body went out.
    var isIdempotent: Bool {
        switch method {
        case .GET, .HEAD, .OPTIONS, .PUT, .DELETE: true
        default: false
        }
    }

    /// The path without its query string.
    var path: Substring {
        uri.firstIndex(of: "?").map { uri[..<$0] } ?? uri[...]
    }
}

enum MessageRewriting {
    /// The head sent to an instance: HTTP/1.1 (so the instance connection can be kept alive), the original
    /// Host, X-Forwarded-*, an X-Request-Id, no hop-by-hop headers, and framing that matches how the body will be
    /// re-encoded.
    static func upstreamRequestHead(for head: HTTPRequestHead, clientIP: String?) -> HTTPRequestHead {
        var headers = head.headers
        let bodyWasChunked = headers.contains(name: "transfer-encoding")
        let webSocket = head.isWebSocketUpgrade
        headers.removeHopByHop(keepingUpgrade: webSocket)
        if webSocket { headers.add(name: "Connection", value: "Upgrade") }
        if bodyWasChunked {
            headers.remove(name: "content-length")
            headers.add(name: "Transfer-Encoding", value: "chunked")
        }

        if let clientIP {
            let earlier = headers["x-forwarded-for"].joined(separator: ", ")
            headers.replaceOrAdd(name: "X-Forwarded-For", value: earlier.isEmpty ? clientIP : "\(earlier), \(clientIP)")
        }
        headers.replaceOrAdd(name: "X-Forwarded-Proto", value: "http")
        if let host = headers.first(name: "host") {
            headers.replaceOrAdd(name: "X-Forwarded-Host", value: host)
        }
        // A client's request id is kept so logs can be joined across hops; one that cannot be a log token
        // is replaced, as is a missing one.
        let requestIDs = headers["x-request-id"]
        if requestIDs.count != 1 || !isLoggable(requestID: requestIDs[0]) {
            headers.replaceOrAdd(name: "X-Request-Id", value: newRequestID())
        }
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: headers)
    }

    /// The head the client sees for an instance's response, and whether the client connection must close
    /// after it (the body runs until the instance closes and the client cannot take chunked encoding).
    static func clientResponseHead(
        for response: HTTPResponseHead,
        requestMethod: HTTPMethod,
        clientVersion: HTTPVersion,
        release: ReleaseStamp,
        keepAlive: Bool,
        stickyCookie: String? = nil
    ) -> (head: HTTPResponseHead, closeAfter: Bool) {
        let code = response.status.code
        var headers = response.headers
        let bodyWasChunked = headers.contains(name: "transfer-encoding")
        headers.removeHopByHop(keepingUpgrade: code == 101)
        if bodyWasChunked { headers.remove(name: "content-length") }

        if (100..<200).contains(code) && code != 101 {
            return (HTTPResponseHead(version: clientVersion, status: response.status, headers: headers), false)
        }
        headers.replaceOrAdd(name: "Slipway-Release", value: release.version)
        if let stickyCookie {
            // A session cookie for this host only, out of scripts' reach.
            headers.add(
                name: "Set-Cookie",
                value: "\(Router.stickyCookieName)=\(stickyCookie); Path=/; HttpOnly; SameSite=Lax"
            )
        }
        if let type = headers.first(name: "content-type"), type.utf8.count >= 9,
            type.utf8.prefix(9).lazy.map({ $0 | 0x20 }).elementsEqual("text/html".utf8)  // ASCII lowercase, in place
        {
            // Lets client.js read the release its page came from (PerformanceNavigationTiming.serverTiming).
            headers.add(name: "Server-Timing", value: "slipway;desc=\"\(release.version)\"")
        }
        if code == 101 {
            headers.add(name: "Connection", value: "Upgrade")
            return (HTTPResponseHead(version: clientVersion, status: response.status, headers: headers), false)
        }

        var closeAfter = !keepAlive
        let hasBody = requestMethod != .HEAD && code != 204 && code != 304
        if hasBody && !headers.contains(name: "content-length") {
            if clientVersion.isAtLeastHTTP11 {
                headers.add(name: "Transfer-Encoding", value: "chunked")
            } else {
                closeAfter = true
            }
        }
        addConnectionHeader(to: &headers, clientVersion: clientVersion, close: closeAfter)
        return (HTTPResponseHead(version: clientVersion, status: response.status, headers: headers), closeAfter)
    }

    /// 128 random bits in hex, as nginx's $request_id; written in place, since every request may need one.
    static func newRequestID() -> String {
        var generator = SystemRandomNumberGenerator()
        let halves: (UInt64, UInt64) = (generator.next(), generator.next())
        return String(unsafeUninitializedCapacity: 32) { buffer in
            for index in 0..<32 {
                let half = index < 16 ? halves.0 : halves.1
                let digit = UInt8(truncatingIfNeeded: half >> (UInt64(15 - index % 16) * 4)) & 0xf
                buffer[index] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
            }
            return 32
        }
    }

    private static func isLoggable(requestID: String) -> Bool {
        (1...200).contains(requestID.utf8.count) && requestID.utf8.allSatisfy { (0x21...0x7e).contains($0) }
    }

    /// HTTP/1.1 keeps connections alive unless told; HTTP/1.0 closes them unless told.
    static func addConnectionHeader(to headers: inout HTTPHeaders, clientVersion: HTTPVersion, close: Bool) {
        if close {
            headers.replaceOrAdd(name: "Connection", value: "close")
        } else if !clientVersion.isAtLeastHTTP11 {
            headers.replaceOrAdd(name: "Connection", value: "keep-alive")
        }
    }
}

extension HTTPVersion {
    /// Chunked bodies and default keep-alive start with HTTP/1.1.
    var isAtLeastHTTP11: Bool { (major, minor) >= (1, 1) }
}
