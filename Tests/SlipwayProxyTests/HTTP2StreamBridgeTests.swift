// An HTTP/2 stream's request becomes the HTTP/1.1 bytes the proxy's reader reads, and what HTTP/2 lets through that
// HTTP/1.1 cannot carry as it is (a line break in a value, a space in the path, a framing header) never reaches it.
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import SlipwayProxy

@Suite struct HTTP2StreamBridgeTests {
    func request(_ head: HTTPRequestHead, body: String? = nil) throws -> (toProxy: String, answer: [String]) {
        let channel = EmbeddedChannel(handler: HTTP2StreamBridge())
        defer { _ = try? channel.finish() }
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        if let body { try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: body))) }
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        var toProxy = ""
        while let bytes = try channel.readInbound(as: ByteBuffer.self) { toProxy += String(buffer: bytes) }
        var answer: [String] = []
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) {
            switch part {
            case .head(let head): answer.append("\(head.status.code)")
            case .body(.byteBuffer(let body)): answer.append(String(buffer: body))
            case .body: answer.append("file")
            case .end: answer.append("end")
            }
        }
        return (toProxy, answer)
    }

    func head(_ headers: [(String, String)], uri: String = "/", method: HTTPMethod = .GET) -> HTTPRequestHead {
        HTTPRequestHead(version: .http2, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    @Test func aRequestIsWrittenAsHTTP1WithFramingOnlyWhereABodyFollows() throws {
        let get = try request(head([("host", "shop.test"), ("cookie", "a=1"), ("cookie", "b=2")]))
        #expect(get.toProxy == "GET / HTTP/1.1\r\nhost: shop.test\r\ncookie: a=1; b=2\r\n\r\n")
        let post = try request(head([("host", "shop.test")], method: .POST), body: "hello")
        #expect(
            post.toProxy
                == "POST / HTTP/1.1\r\nhost: shop.test\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        let sized = try request(head([("host", "shop.test"), ("content-length", "5")], method: .POST), body: "hello")
        #expect(sized.toProxy == "POST / HTTP/1.1\r\nhost: shop.test\r\ncontent-length: 5\r\n\r\nhello")
    }

    @Test func whatHTTP1CannotCarryIsRefusedWithA400AndNeverPassedOn() throws {
        let hostile: [HTTPRequestHead] = [
            head([("host", "shop.test"), ("x-a", "1\r\nx-injected: 2")]),
            head([("host", "shop.test"), ("x-a", "1\nGET /admin HTTP/1.1")]),
            head([("host", "shop.test"), ("x a", "1")]),
            head([("host", "shop.test\r\nx: y")]),
            head([("host", "shop.test")], uri: "/a b HTTP/1.1\r\nx: y"),
            head([("host", "shop.test")], uri: "*"),
            head([("host", "shop.test")], method: .RAW(value: "GET /x")),
            head([("host", "shop.test"), ("x-nul", "a\u{0}b")]),
        ]
        for request in hostile {
            let answered = try self.request(request, body: "smuggled")
            #expect(answered.toProxy.isEmpty, "\(request)")
            #expect(answered.answer.first == "400" && answered.answer.last == "end", "\(request)")
        }
        // Framing and tunnel headers are dropped, not obeyed: the bridge frames the body itself.
        let framed = try request(
            head([
                ("host", "shop.test"), ("transfer-encoding", "chunked"), ("upgrade", "websocket"),
                ("connection", "upgrade"),
            ]),
            body: "x"
        )
        #expect(
            framed.toProxy
                == "GET / HTTP/1.1\r\nhost: shop.test\r\ntransfer-encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
        )
    }

    @Test func theProxysHTTP1AnswerBecomesAHeadDechunkedDataAndAnEnd() throws {
        let channel = EmbeddedChannel(handler: HTTP2StreamBridge())
        defer { _ = try? channel.finish() }
        try channel.writeInbound(HTTPServerRequestPart.head(head([("host", "shop.test")])))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        try channel.writeOutbound(
            ByteBuffer(
                string: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
            )
        )
        // The proxy writes a chunk's size line and its data apart: a write may end anywhere.
        for piece in ["2\r", "\nd", "e\r\n", "0\r\n", "\r\n"] { try channel.writeOutbound(ByteBuffer(string: piece)) }
        var parts: [HTTPServerResponsePart] = []
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) { parts.append(part) }
        guard case .head(let head) = parts.first, case .end = parts.last else {
            Issue.record("not a head, data and an end: \(parts)")
            return
        }
        #expect(head.status == .ok && head.headers["content-type"] == ["text/plain"])
        let body = parts.compactMap { part -> String? in
            if case .body(.byteBuffer(let bytes)) = part { String(buffer: bytes) } else { nil }
        }
        #expect(body.joined() == "abcde")
    }
}
