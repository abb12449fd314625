// MessageRewriting: how a client's request head becomes the head sent to an instance, and how an
// instance's response head becomes the one the client sees (hop-by-hop headers, X-Forwarded-*, framing).
import NIOCore
import NIOHTTP1
import SlipwayBasics

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

    /// Whether a message's `Connection` header named this header (`named`: lowercased, almost always empty).
    static func isNamed(_ name: UnsafeRawBufferPointer, in named: [String]) -> Bool {
        !named.isEmpty && named.contains(String(decoding: name, as: UTF8.self).lowercased())
    }
}

extension UnsafeRawBufferPointer {
    /// ASCII case-insensitive equality with a lowercase `name`.
    func isCaseInsensitively(_ name: StaticString) -> Bool {
        guard count == name.utf8CodeUnitCount else { return false }
        let lowercase = name.utf8Start
        for index in 0..<count {
            let byte = self[index]
            let lower = lowercase[index]
            guard byte == lower || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") && byte | 0x20 == lower)
            else { return false }
        }
        return true
    }
}

/// Where a client connection comes from and arrives, rendered once per connection as the header lines every
/// request on it tells the app.
struct ClientEndpoint {
    let ip: String?
    let listenerPort: Int?
    /// `X-Forwarded-For` and `X-Real-IP` (the client's address, when it has one), `X-Forwarded-Proto` and
    /// `X-Forwarded-Port` (the listener it came in on): what the app is told of a client that is not a trusted proxy.
    let forwardingLines: String
    /// Set when the client is a trusted proxy (`--trusted-proxies`): what it says of where requests came from is
    /// passed on.
    let trusted: TrustedProxies?

    /// How the client's connection came in: plain, or over TLS.
    enum Scheme: String, Sendable {
        case http, https
    }
    let scheme: Scheme

    init(ip: String?, listenerPort: Int?, scheme: Scheme = .http, trusting proxies: TrustedProxies = .none) {
        self.ip = ip
        self.listenerPort = listenerPort
        self.scheme = scheme
        forwardingLines =
            (ip.map { "X-Forwarded-For: \($0)\r\nX-Real-IP: \($0)\r\n" } ?? "")
            + "X-Forwarded-Proto: \(scheme.rawValue)\r\n" + (listenerPort.map { "X-Forwarded-Port: \($0)\r\n" } ?? "")
        trusted = ip.flatMap { proxies.contains($0) ? proxies : nil }
    }
}

/// What a trusted proxy said of where a request came from, to be passed on.
struct ForwardedByProxy {
    var forwardedFor: [String] = []
    var proto: String?
    var port: String?
    var host: String?
    var forwarded: [String] = []

    mutating func record(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) {
        let text = String(decoding: value, as: UTF8.self)
        switch name.count {
        case 9 where name.isCaseInsensitively("forwarded"): forwarded.append(text)
        case 15:
            forwardedFor += text.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
        case 16 where name.isCaseInsensitively("x-forwarded-host"): host = text
        case 16: port = text
        case 17: proto = text
        default: break
        }
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
    /// original Host, the client's address and the listener's port in X-Forwarded-* and X-Real-IP, an
    /// X-Request-Id, no hop-by-hop headers, and `Transfer-Encoding: chunked` for a chunked body, which is sent
    /// re-chunked. The client's other header lines are copied as they came, in runs: the reader checked each one.
    /// Nothing a client says about where the request came from is passed on: the proxy is the edge, and an app
    /// that believed a client's `X-Forwarded-For` or `Forwarded` could be told any address.
    static func writeUpstreamRequestHead(
        for head: ClientRequestHead,
        client: ClientEndpoint,
        requestIDs: inout RequestIDSource,
        into buffer: inout ByteBuffer
    ) {
        var forwardedByProxy = ForwardedByProxy()
        head.bytes.withUnsafeReadableBytes { raw in
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[..<head.methodAndTargetLength]))
            buffer.writeStaticString("HTTP/1.1\r\n")
            var lines = HeadLines(raw)
            guard let requestLine = lines.next() else { return }
            var run = requestLine.upperBound + 2
            var givenRequestIDs: [Range<Int>] = []
            while let line = lines.next() {
                // The reader checked every line when it parsed the head; most lines need only their name here.
                guard let nameRange = HeadLines.name(of: line, in: raw) else { continue }
                let name = UnsafeRawBufferPointer(rebasing: raw[nameRange])
                if name.count == 12 && name.isCaseInsensitively("x-request-id") {
                    if let field = try? HeadLines.field(of: line, in: raw) { givenRequestIDs.append(field.value) }
                } else if !isDropped(name, from: head) {
                    continue
                } else if client.trusted != nil, isSetByProxy(name), let field = try? HeadLines.field(of: line, in: raw)
                {
                    forwardedByProxy.record(name, UnsafeRawBufferPointer(rebasing: raw[field.value]))
                }
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[run..<line.lowerBound]))
                run = line.upperBound + 2
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[run..<raw.count - 2]))
            // A client's request id is kept so logs can be joined across hops; one that cannot be a log token
            // is replaced, as is a missing one.
            buffer.writeStaticString("X-Request-Id: ")
            if givenRequestIDs.count == 1,
                isLoggable(requestID: UnsafeRawBufferPointer(rebasing: raw[givenRequestIDs[0]]))
            {
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[givenRequestIDs[0]]))
            } else {
                requestIDs.write(into: &buffer)
            }
            buffer.writeStaticString("\r\n")
        }
        if head.isWebSocketUpgrade { buffer.writeStaticString("Connection: Upgrade\r\n") }
        if head.framing == .chunked { buffer.writeStaticString("Transfer-Encoding: chunked\r\n") }
        // A trusted proxy's word on where the request came from stands; the proxy adds only its own address.
        // Anyone else's is replaced by the lines made once for its connection.
        if let trusted = client.trusted {
            let chain = forwardedByProxy.forwardedFor + (client.ip.map { [$0] } ?? [])
            if !chain.isEmpty { writeField("X-Forwarded-For", chain.joined(separator: ", "), into: &buffer) }
            if let real = trusted.client(in: chain) { writeField("X-Real-IP", real, into: &buffer) }
            for forwarded in forwardedByProxy.forwarded { writeField("Forwarded", forwarded, into: &buffer) }
            writeField("X-Forwarded-Proto", forwardedByProxy.proto ?? client.scheme.rawValue, into: &buffer)
            if let port = forwardedByProxy.port ?? client.listenerPort.map(String.init) {
                writeField("X-Forwarded-Port", port, into: &buffer)
            }
        } else {
            buffer.writeString(client.forwardingLines)
        }
        if let host = forwardedByProxy.host ?? head.host { writeField("X-Forwarded-Host", host, into: &buffer) }
        buffer.writeStaticString("\r\n")
    }

    /// Headers a client may not send the app: they say where a request came from, which only the proxy knows,
    /// or they frame and route it. A `Connection` header naming one is refused (see ClientRequestReader).
    static func isSetByProxy(_ name: UnsafeRawBufferPointer) -> Bool {
        switch name.count {
        case 9: name.isCaseInsensitively("forwarded") || name.isCaseInsensitively("x-real-ip")
        case 15: name.isCaseInsensitively("x-forwarded-for")
        case 16: name.isCaseInsensitively("x-forwarded-host") || name.isCaseInsensitively("x-forwarded-port")
        case 17: name.isCaseInsensitively("x-forwarded-proto")
        default: false
        }
    }

    /// A request header the instance must not get: hop-by-hop ones and those the proxy sets.
    private static func isDropped(_ name: UnsafeRawBufferPointer, from request: ClientRequestHead) -> Bool {
        HopByHop.contains(name, keepingUpgrade: request.isWebSocketUpgrade) || isSetByProxy(name)
            || HopByHop.isNamed(name, in: request.namedByConnection)
    }

    /// Writes the head the client sees for an instance's response head: the client's HTTP version, no
    /// hop-by-hop headers, the release, and framing the client understands. The instance's header lines are
    /// copied as they came. Returns how the body must be framed for the client.
    static func writeClientResponseHead(
        for response: InstanceResponseHead,
        clientVersion: HTTPVersion,
        releaseVersion: String,
        keepAlive: Bool,
        stickyCookie: String? = nil,
        overTLS: Bool = false,
        strictTransportSecurity: Int? = nil,
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
        writeField("Slipway-Release", releaseVersion, into: &buffer)
        if let strictTransportSecurity {
            writeField("Strict-Transport-Security", "max-age=\(strictTransportSecurity)", into: &buffer)
        }
        if let stickyCookie {
            // A session cookie for this host only, out of scripts' reach; one set over TLS is sent back only over TLS.
            buffer.writeStaticString("Set-Cookie: ")
            buffer.writeString(Router.stickyCookieName)
            buffer.writeStaticString("=")
            buffer.writeString(stickyCookie)
            buffer.writeStaticString(
                overTLS ? "; Path=/; HttpOnly; SameSite=Lax; Secure\r\n" : "; Path=/; HttpOnly; SameSite=Lax\r\n"
            )
        }
        if response.isHTML {
            // Lets client.js read the release its page came from (PerformanceNavigationTiming.serverTiming).
            buffer.writeStaticString("Server-Timing: slipway;desc=\"")
            buffer.writeString(releaseVersion)
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
        return HopByHop.isNamed(name, in: response.namedByConnection)
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

    private static func isLoggable(requestID: UnsafeRawBufferPointer) -> Bool {
        (1...200).contains(requestID.count) && requestID.allSatisfy { (0x21...0x7e).contains($0) }
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

extension HTTPMethod {
    // Matched by case: NIO's `==` on methods compares their names as strings, which every request paid for.
    var isHEAD: Bool { if case .HEAD = self { true } else { false } }
    var isCONNECT: Bool { if case .CONNECT = self { true } else { false } }
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

    /// The next id, 32 lowercase hex digits, written straight into `buffer` (no string per request).
    mutating func write(into buffer: inout ByteBuffer) {
        let halves = (bits.next(), bits.next())
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 32) { bytes in
            for index in 0..<32 {
                let half = index < 16 ? halves.0 : halves.1
                let digit = UInt8(truncatingIfNeeded: half >> (UInt64(15 - index % 16) * 4)) & 0xf
                bytes[index] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
            }
            return 32
        }
    }
}
