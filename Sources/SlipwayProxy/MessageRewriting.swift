// MessageRewriting: how a client's request head becomes the head sent to an instance, and how an
// instance's response head becomes the one the client sees (hop-by-hop headers, X-Forwarded-*, framing).
import NIOCore
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
}

/// Headers that describe one hop rather than the message (RFC 9110 §7.6.1), and the framing headers the
/// proxy sets itself. `Upgrade` stays for a WebSocket handshake.
enum HopByHop {
    static func contains(_ name: UnsafeRawBufferPointer, keepingUpgrade: Bool) -> Bool {
        switch name.count {
        case 2: name.isCaseInsensitively("te")
        case 7: name.isCaseInsensitively("trailer") || (!keepingUpgrade && name.isCaseInsensitively("upgrade"))
        case 10: name.isCaseInsensitively("connection") || name.isCaseInsensitively("keep-alive")
        case 16: name.isCaseInsensitively("proxy-connection")
        case 17: name.isCaseInsensitively("transfer-encoding")
        default: false
        }
    }

    static func contains(_ name: String, keepingUpgrade: Bool) -> Bool {
        var bytes = name
        return bytes.withUTF8 { contains(UnsafeRawBufferPointer($0), keepingUpgrade: keepingUpgrade) }
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
        var bytes = self
        return bytes.withUTF8 { UnsafeRawBufferPointer($0).isCaseInsensitively(name) }
    }
}

extension UnsafeRawBufferPointer {
    /// ASCII case-insensitive equality with a lowercase `name`.
    func isCaseInsensitively(_ name: StaticString) -> Bool {
        count == name.utf8CodeUnitCount
            && elementsEqual(UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)) { byte, lower in
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

/// How a proxied answer's body reaches the client.
struct ClientFraming {
    /// The client connection closes after this answer.
    var closeAfter = false
    /// The instance's body has no length and the client takes chunks: the proxy makes them.
    var wrapsInChunks = false
    /// The instance's chunks reach an HTTP/1.0 client as plain data.
    var dechunks = false
}

enum MessageRewriting {
    /// Writes the head sent to an instance: HTTP/1.1 (so the instance connection can be kept alive), the
    /// original Host, X-Forwarded-*, an X-Request-Id, no hop-by-hop headers, and framing that matches how the
    /// body will be sent (`rechunkingBody`: the client's chunked body is sent re-chunked). Written as bytes in one
    /// pass over the client's headers.
    static func writeUpstreamRequestHead(
        for head: HTTPRequestHead,
        rechunkingBody: Bool,
        clientIP: String?,
        requestIDs: inout RequestIDSource,
        into buffer: inout ByteBuffer
    ) {
        let headers = head.headers
        let webSocket = head.isWebSocketUpgrade
        // Further names `Connection` lists; usually none, as `keep-alive`, `close` and `upgrade` are handled here.
        var named: [String] = []
        if headers.contains(name: "connection") {
            named = headers.connectionTokens.filter { $0 != "close" && !HopByHop.contains($0, keepingUpgrade: false) }
        }

        buffer.writeString(head.method.rawValue)
        buffer.writeStaticString(" ")
        buffer.writeString(head.uri)
        buffer.writeStaticString(" HTTP/1.1\r\n")
        var earlierForwardedFor: [String] = []
        var host: String?
        var givenRequestIDs: [String] = []
        for (name, value) in headers {
            var name = name
            let dropped = name.withUTF8 { utf8 in
                let bytes = UnsafeRawBufferPointer(utf8)
                if HopByHop.contains(bytes, keepingUpgrade: webSocket) { return true }
                switch bytes.count {
                case 4 where bytes.isCaseInsensitively("host"):
                    if host == nil { host = value }
                case 12 where bytes.isCaseInsensitively("x-request-id"):
                    givenRequestIDs.append(value)
                    return true
                case 14 where bytes.isCaseInsensitively("content-length"):
                    return rechunkingBody
                case 15 where bytes.isCaseInsensitively("x-forwarded-for"):
                    guard clientIP != nil else { break }
                    earlierForwardedFor.append(value)
                    return true
                case 16 where bytes.isCaseInsensitively("x-forwarded-host"):
                    return true
                case 17 where bytes.isCaseInsensitively("x-forwarded-proto"):
                    return true
                default:
                    break
                }
                return !named.isEmpty && named.contains(String(decoding: bytes, as: UTF8.self).lowercased())
            }
            if dropped { continue }
            writeField(name, value, into: &buffer)
        }
        // A client's request id is kept so logs can be joined across hops; one that cannot be a log token
        // is replaced, as is a missing one.
        let keepsRequestID = givenRequestIDs.count == 1 && isLoggable(requestID: givenRequestIDs[0])
        writeField("X-Request-Id", keepsRequestID ? givenRequestIDs[0] : requestIDs.next(), into: &buffer)
        if webSocket { buffer.writeStaticString("Connection: Upgrade\r\n") }
        if rechunkingBody { buffer.writeStaticString("Transfer-Encoding: chunked\r\n") }
        if let clientIP {
            buffer.writeStaticString("X-Forwarded-For: ")
            for earlier in earlierForwardedFor {
                buffer.writeString(earlier)
                buffer.writeStaticString(", ")
            }
            buffer.writeString(clientIP)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("X-Forwarded-Proto: http\r\n")
        if let host { writeField("X-Forwarded-Host", host, into: &buffer) }
        buffer.writeStaticString("\r\n")
    }

    /// Writes the head the client sees for an instance's response head: the client's HTTP version, no
    /// hop-by-hop headers, the release, and framing the client understands. The instance's header lines are
    /// copied as they came. Returns how the body must be framed for the client.
    static func writeClientResponseHead(
        for response: InstanceResponseHead,
        requestMethod: HTTPMethod,
        clientVersion: HTTPVersion,
        release: ReleaseStamp,
        keepAlive: Bool,
        stickyCookie: String? = nil,
        into buffer: inout ByteBuffer
    ) -> ClientFraming {
        let code = response.status
        let modernClient = clientVersion.isAtLeastHTTP11
        var framing = ClientFraming(closeAfter: !keepAlive)
        switch response.framing {
        case .chunked:
            if !modernClient { framing = ClientFraming(closeAfter: true, dechunks: true) }
        case .untilClose:
            if modernClient { framing.wrapsInChunks = true } else { framing.closeAfter = true }
        case .none, .length:
            break
        }
        let passesChunks = response.framing == .chunked && !framing.dechunks

        buffer.writeStaticString(modernClient ? "HTTP/1.1 " : "HTTP/1.0 ")
        response.bytes.withUnsafeReadableBytes { raw in
            var lines = HeadLines(raw)
            guard let statusLine = lines.next() else { return }
            // The code and reason phrase, after "HTTP/1.x ".
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[statusLine.lowerBound + 9..<statusLine.upperBound]))
            buffer.writeStaticString("\r\n")
            // Kept lines that end in CRLF are copied in runs, as many lines in one copy as possible.
            var run: Range<Int>?
            func copyRun() {
                if let copied = run.take() { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[copied])) }
            }
            while let line = lines.next() {
                // The reader checked every line when it parsed the head; only the names matter here.
                guard let name = HeadLines.name(of: line, in: raw),
                    !isDropped(UnsafeRawBufferPointer(rebasing: raw[name]), from: response, passingChunks: passesChunks)
                else {
                    copyRun()
                    continue
                }
                if line.upperBound + 1 < raw.count && raw[line.upperBound] == UInt8(ascii: "\r") {
                    if let current = run, current.upperBound == line.lowerBound {
                        run = current.lowerBound..<line.upperBound + 2
                    } else {
                        copyRun()
                        run = line.lowerBound..<line.upperBound + 2
                    }
                } else {
                    copyRun()
                    buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[line]))
                    buffer.writeStaticString("\r\n")
                }
            }
            copyRun()
        }
        guard !response.isInterim else {
            buffer.writeStaticString("\r\n")
            return framing
        }
        writeField("Slipway-Release", release.version, into: &buffer)
        if let stickyCookie {
            // A session cookie for this host only, out of scripts' reach.
            buffer.writeStaticString("Set-Cookie: ")
            buffer.writeString(Router.stickyCookieName)
            buffer.writeStaticString("=")
            buffer.writeString(stickyCookie)
            buffer.writeStaticString("; Path=/; HttpOnly; SameSite=Lax\r\n")
        }
        if response.isHTML {
            // Lets client.js read the release its page came from (PerformanceNavigationTiming.serverTiming).
            buffer.writeStaticString("Server-Timing: slipway;desc=\"")
            buffer.writeString(release.version)
            buffer.writeStaticString("\"\r\n")
        }
        if code == 101 {
            buffer.writeStaticString("Connection: Upgrade\r\n\r\n")
            return framing
        }
        if framing.wrapsInChunks { buffer.writeStaticString("Transfer-Encoding: chunked\r\n") }
        if framing.closeAfter {
            buffer.writeStaticString("Connection: close\r\n")
        } else if !modernClient {
            buffer.writeStaticString("Connection: keep-alive\r\n")
        }
        buffer.writeStaticString("\r\n")
        return framing
    }

    /// A response header the client must not get as the instance sent it.
    private static func isDropped(
        _ name: UnsafeRawBufferPointer,
        from response: InstanceResponseHead,
        passingChunks: Bool
    ) -> Bool {
        if name.count == 17 && name.isCaseInsensitively("transfer-encoding") { return !passingChunks }
        if HopByHop.contains(name, keepingUpgrade: response.status == 101) { return true }
        if name.count == 14 && name.isCaseInsensitively("content-length") { return response.transferEncoded }
        if !response.isInterim && name.count == 15 && name.isCaseInsensitively("slipway-release") { return true }
        return !response.namedByConnection.isEmpty
            && response.namedByConnection.contains(String(decoding: name, as: UTF8.self).lowercased())
    }

    /// The line that opens a chunk of `count` bytes in a chunked body.
    static func chunkSizeLine(_ count: Int) -> ByteBuffer {
        ByteBuffer(string: String(count, radix: 16) + "\r\n")
    }

    private static func writeField(_ name: String, _ value: String, into buffer: inout ByteBuffer) {
        buffer.writeString(name)
        buffer.writeStaticString(": ")
        buffer.writeString(value)
        buffer.writeStaticString("\r\n")
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
    private var bits: SplitMix64

    init() {
        var system = SystemRandomNumberGenerator()
        bits = SplitMix64(seed: system.next())
    }

    /// 32 lowercase hex digits, written in place.
    mutating func next() -> String {
        let halves = (bits.next(), bits.next())
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

/// SplitMix64: a fast generator of well-mixed 64-bit values from a seed; not for secrets.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
