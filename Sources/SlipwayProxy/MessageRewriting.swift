// MessageRewriting: how a client's request head becomes the head sent to an instance, and how an
// instance's response head becomes the one the client sees (hop-by-hop headers, X-Forwarded-*, framing).
import NIOHTTP1

extension HTTPHeaders {
    /// The comma-separated tokens of every `Connection` header, lowercased.
    var connectionTokens: [String] {
        var tokens: [String] = []
        for (name, value) in self where name.isCaseInsensitively("connection") {
            for token in value.split(separator: ",") {
                let token = token.trimmingWhitespace().lowercased()
                if !token.isEmpty { tokens.append(token) }
            }
        }
        return tokens
    }

    /// Removes the headers that describe one hop rather than the message (RFC 9110 §7.6.1), and the framing
    /// headers the decoders have already consumed. `Upgrade` stays for a WebSocket handshake.
    /// Every request and answer passes here, so the common case (none, or only `Connection: keep-alive`)
    /// costs one pass over the names and at most one new header list.
    mutating func removeHopByHop(keepingUpgrade: Bool) {
        guard contains(where: { Self.isHopByHop($0.name, keepingUpgrade: keepingUpgrade) }) else { return }
        // Further names `Connection` lists; usually none, as `keep-alive`, `close` and `upgrade` are handled here.
        let named = connectionTokens.filter { $0 != "close" && !Self.isHopByHop($0, keepingUpgrade: false) }
        var kept = HTTPHeaders()
        kept.reserveCapacity(count)
        for (name, value) in self where !Self.isHopByHop(name, keepingUpgrade: keepingUpgrade) {
            if !named.isEmpty, named.contains(name.lowercased()) { continue }
            kept.add(name: name, value: value)
        }
        self = kept
    }

    private static func isHopByHop(_ name: String, keepingUpgrade: Bool) -> Bool {
        switch name.utf8.count {
        case 2: name.isCaseInsensitively("te")
        case 7: name.isCaseInsensitively("trailer") || (!keepingUpgrade && name.isCaseInsensitively("upgrade"))
        case 10: name.isCaseInsensitively("connection") || name.isCaseInsensitively("keep-alive")
        case 16: name.isCaseInsensitively("proxy-connection")
        case 17: name.isCaseInsensitively("transfer-encoding")
        default: false
        }
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

extension String {
    /// ASCII case-insensitive equality with a lowercase `name`, without making a lowercased copy.
    func isCaseInsensitively(_ name: StaticString) -> Bool {
        let other = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        return utf8.count == other.count
            && utf8.elementsEqual(other) { byte, lower in
                byte == lower || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") && byte | 0x20 == lower)
            }
    }
}

extension HTTPRequestHead {
    /// Asks to switch to the WebSocket protocol: the only upgrade the proxy passes through.
    var isWebSocketUpgrade: Bool {
        headers.contains(name: "upgrade") && headers.connectionTokens.contains("upgrade")
            && headers["upgrade"].contains { $0.lowercased().contains("websocket") }
    }

    /// The request decoder parses nothing after such a request (llhttp treats it as a protocol switch),
    /// so the client connection must close after its response unless it becomes a tunnel.
    var endsHTTPOnThisConnection: Bool {
        method == .CONNECT || (headers.contains(name: "upgrade") && headers.connectionTokens.contains("upgrade"))
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
    static func upstreamRequestHead(
        for head: HTTPRequestHead,
        clientIP: String?,
        requestIDs: inout RequestIDSource
    ) -> HTTPRequestHead {
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
        let given = headers["x-request-id"]
        if given.count != 1 || !isLoggable(requestID: given[0]) {
            headers.replaceOrAdd(name: "X-Request-Id", value: requestIDs.next())
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

/// Request ids: 128 bits in hex, as nginx's `$request_id`. Unique, not secret, so a SplitMix64 sequence per
/// client connection, seeded once from the system, spares every request two `getrandom` calls.
struct RequestIDSource {
    private var state: UInt64

    init() {
        var system = SystemRandomNumberGenerator()
        state = system.next()
    }

    private mutating func nextBits() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }

    /// 32 lowercase hex digits, written in place.
    mutating func next() -> String {
        let halves = (nextBits(), nextBits())
        return String(unsafeUninitializedCapacity: 32) { buffer in
            for index in 0..<32 {
                let half = index < 16 ? halves.0 : halves.1
                let digit = UInt8(truncatingIfNeeded: half >> (UInt64(15 - index % 16) * 4)) & 0xf
                buffer[index] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
            }
            return 32
        }
    }
}
