// HTTP2StreamBridge: one HTTP/2 stream, seen by the proxy's HTTP/1.1 handler as a connection carrying one request.
// Inbound, the stream's request (as NIO's HTTP/2-to-HTTP/1 codec gives it) is written as HTTP/1.1 bytes, which
// ClientRequestReader reads with the same strict rules and limits as any request; outbound, the answer the handler
// writes as HTTP/1.1 bytes is read back (InstanceResponseReader, dechunking) into a head, body and end, which the
// codec sends as HEADERS and DATA frames. HTTP/2 carries any octets in a header: a name or value that could not be
// written in HTTP/1.1 as it is (a line break, a space in the path) is refused with a 400, never passed on.
import NIOCore
import NIOHTTP1

final class HTTP2StreamBridge: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = HTTPServerResponsePart

    /// A head waits for what follows: a body or the end, which says whether it needs framing.
    private var pendingHead: HTTPRequestHead?
    private var chunked = false
    private var refused = false
    private var answer = InstanceResponseReader()
    /// The answer's bytes not read yet: a write may end in the middle of a chunk's size line.
    private var unread = ByteBuffer()
    private var answerEnded = false

    /// HTTP/1.1's connection-specific headers, which HTTP/2 forbids and which would change how the proxy reads
    /// the request (a tunnel, a framing) if one came through.
    private static let connectionHeaders: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "http2-settings",
    ]

    init() {
        answer.dechunk = true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            answer.answeringHEAD = head.method == .HEAD
            pendingHead = head
        case .body(let body):
            if let head = pendingHead {
                pendingHead = nil
                guard writeHead(head, withBody: true, context: context) else { return }
            }
            guard chunked else {
                context.fireChannelRead(wrapInboundOut(body))
                return
            }
            var chunk = context.channel.allocator.buffer(capacity: body.readableBytes + 16)
            chunk.writeString(String(body.readableBytes, radix: 16) + "\r\n")
            chunk.writeImmutableBuffer(body)
            chunk.writeStaticString("\r\n")
            context.fireChannelRead(wrapInboundOut(chunk))
        case .end:
            if let head = pendingHead {
                pendingHead = nil
                _ = writeHead(head, withBody: false, context: context)
            } else if chunked {
                context.fireChannelRead(wrapInboundOut(ByteBuffer(staticString: "0\r\n\r\n")))
            }
        }
    }

    /// Writes the request head as HTTP/1.1; false if it cannot be, answered with a 400 instead.
    private func writeHead(_ head: HTTPRequestHead, withBody: Bool, context: ChannelHandlerContext) -> Bool {
        guard Self.isToken(head.method.rawValue), Self.isPlain(head.uri, spaces: false), head.uri.first == "/"
        else { return refuse("its method or path cannot be read", context: context) }
        var bytes = context.channel.allocator.buffer(capacity: 512)
        bytes.writeString(head.method.rawValue + " " + head.uri + " HTTP/1.1\r\n")
        var hasLength = false
        var cookies: [String] = []
        for (name, value) in head.headers {
            let lowered = name.lowercased()
            guard Self.isToken(name), Self.isPlain(value, spaces: true) else {
                return refuse("its header \(lowered.prefix(40)) cannot be read", context: context)
            }
            if Self.connectionHeaders.contains(lowered) { continue }
            if lowered == "content-length" { hasLength = true }
            // HTTP/2 may split the cookie header; HTTP/1.1 has one (RFC 9113 §8.2.3).
            if lowered == "cookie" {
                cookies.append(value)
                continue
            }
            bytes.writeString(name + ": " + value + "\r\n")
        }
        if !cookies.isEmpty { bytes.writeString("cookie: " + cookies.joined(separator: "; ") + "\r\n") }
        if withBody && !hasLength {
            chunked = true
            bytes.writeStaticString("transfer-encoding: chunked\r\n")
        }
        bytes.writeStaticString("\r\n")
        context.fireChannelRead(wrapInboundOut(bytes))
        return true
    }

    private func refuse(_ reason: String, context: ChannelHandlerContext) -> Bool {
        refused = true
        let answer = LocalResponse.text(.badRequest, "This request cannot be passed on: \(reason).\n")
        context.write(wrapOutboundOut(.head(answer.head(clientVersion: .http1_1, close: false))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: answer.body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        return false
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .byteBuffer(var bytes) = unwrapOutboundIn(data), !answerEnded else {
            promise?.succeed()
            return
        }
        if unread.readableBytes == 0 {
            unread = bytes
        } else {
            unread.writeBuffer(&bytes)
        }
        do {
            while let part = try answer.next(from: &unread) {
                switch part {
                case .head(let head) where head.isInterim:
                    continue  // 100 Continue: an HTTP/2 client sends its body without waiting for it
                case .head(let head):
                    let response = HTTPResponseHead(
                        version: .http1_1,
                        status: HTTPResponseStatus(statusCode: head.status),
                        headers: Self.headers(of: head.bytes)
                    )
                    context.write(wrapOutboundOut(.head(response)), promise: nil)
                case .body(let body):
                    context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                case .end:
                    answerEnded = true
                    context.write(wrapOutboundOut(.end(nil)), promise: promise)
                    return
                }
            }
            promise?.succeed()
        } catch {
            promise?.fail(error)
            context.close(promise: nil)
        }
    }

    /// An answer framed by the connection's end ends with it.
    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if !answerEnded, case .end = try? answer.connectionClosed() {
            answerEnded = true
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.close(mode: mode, promise: promise)
    }

    /// The header fields of an HTTP/1.1 head (its status line left out); the codec drops those HTTP/2 forbids.
    static func headers(of head: ByteBuffer) -> HTTPHeaders {
        head.withUnsafeReadableBytes { raw in
            var headers = HTTPHeaders()
            var lines = HeadLines(raw)
            _ = lines.next()
            while let line = lines.next() {
                guard let field = try? HeadLines.field(of: line, in: raw) else { continue }
                headers.add(
                    name: String(decoding: UnsafeRawBufferPointer(rebasing: raw[field.name]), as: UTF8.self),
                    value: String(decoding: UnsafeRawBufferPointer(rebasing: raw[field.value]), as: UTF8.self)
                )
            }
            return headers
        }
    }

    /// RFC 9110's token: what a method and a header name may be.
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy(HeadLines.isTokenByte)
    }

    /// No control characters (a tab only in a value), and no space where `spaces` is false.
    static func isPlain(_ text: String, spaces: Bool) -> Bool {
        text.utf8.allSatisfy { byte in
            (byte > 0x20 && byte != 0x7F) || (spaces && (byte == 0x20 || byte == 0x09))
        }
    }
}
