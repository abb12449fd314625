// Specifications for reading clients' requests from their bytes: heads, bodies and ends however the bytes
// are split, and the refusal of every request that a proxy and an app could read two ways.
import NIOCore
import NIOHTTP1
import SlipwayBasics
import SlipwayTestSupport
import Testing

@testable import SlipwayProxy

@Suite("Client request reader")
struct ClientRequestReaderTests {
    /// What a reader finds in `reads`, one line per part (a request's body parts joined), and the error that
    /// stopped it, if any.
    func parts(of reads: [String], maxHeadBytes: Int = 32 * 1024) -> (parts: [String], error: ClientRequestError?) {
        parts(ofBytes: reads.map { Array($0.utf8) }, maxHeadBytes: maxHeadBytes)
    }

    func parts(ofBytes reads: [[UInt8]], maxHeadBytes: Int = 32 * 1024) -> (parts: [String], error: ClientRequestError?)
    {
        var reader = ClientRequestReader(maxHeadBytes: maxHeadBytes)
        var buffer = ByteBuffer()
        var found: [String] = []
        for read in reads {
            buffer.writeBytes(read)
            do {
                while let part = try reader.next(from: &buffer) {
                    switch part {
                    case .head(let head):
                        found.append(
                            "\(head.method.rawValue) \(head.uri) \(head.version) host=\(head.host ?? "-") "
                                + "\(head.framing) keepAlive=\(head.keepAlive)"
                        )
                    case .body(let body):
                        let text = String(buffer: body)
                        if let last = found.last, last.hasPrefix("body ") {
                            found[found.count - 1] = last + text
                        } else {
                            found.append("body " + text)
                        }
                    case .end:
                        found.append("end")
                    }
                }
            } catch {
                return (found, error)
            }
        }
        return (found, nil)
    }

    static let stream =
        "GET /a?b HTTP/1.1\r\nHost: a.test\r\n\r\n"
        + "POST /form HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello"
        + "\r\n"  // an empty line between requests, as some clients send after a body
        + "POST /up HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        + "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nChecksum: 1\r\n\r\n"
        + "GET / HTTP/1.0\r\nHost: b.test\r\nConnection: keep-alive\r\n\r\n"
        + "DELETE /x HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"

    static let expected = [
        "GET /a?b HTTP/1.1 host=a.test length(0) keepAlive=true", "end",
        "POST /form HTTP/1.1 host=a.test length(5) keepAlive=true", "body hello", "end",
        "POST /up HTTP/1.1 host=a.test chunked keepAlive=true", "body hello world", "end",
        "GET / HTTP/1.0 host=b.test length(0) keepAlive=true", "end",
        "DELETE /x HTTP/1.1 host=a.test length(0) keepAlive=false", "end",
    ]

    @Test("requests are found in a client's bytes however they are split into reads")
    func everySplit() {
        let bytes = Array(Self.stream.utf8)
        #expect(parts(of: [Self.stream]).parts == Self.expected)
        for split in 1..<bytes.count {
            let found = parts(ofBytes: [Array(bytes[..<split]), Array(bytes[split...])])
            #expect(found.error == nil && found.parts == Self.expected, "split at \(split)")
        }
        // One byte per read, too.
        #expect(parts(ofBytes: bytes.map { [$0] }).parts == Self.expected)
    }

    @Test("a head tells the proxy what it acts on: upgrades, 100-continue, headers named by Connection, cookies")
    func headFacts() throws {
        var reader = ClientRequestReader(maxHeadBytes: 1024)
        var bytes = ByteBuffer(
            string: "GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: WebSocket\r\nConnection: Upgrade, X-Hop\r\n"
                + "Expect: 100-continue\r\nCookie: a=1; slipway_instance=7.2\r\nIf-None-Match: \"x\"\r\n"
                + "If-None-Match: \"y\"\r\n\r\n\u{81}\u{05}hello"
        )
        guard case .head(let head) = try reader.next(from: &bytes) else {
            Issue.record("no head")
            return
        }
        #expect(head.isWebSocketUpgrade && head.endsHTTPOnThisConnection && head.expectsContinue)
        #expect(head.namedByConnection == ["x-hop"])
        #expect(head.cookie(named: "slipway_instance") == "7.2")
        #expect(head.values(of: "if-none-match") == ["\"x\"", "\"y\""])
        #expect(head.path == "/ws")
        guard case .end = try reader.next(from: &bytes) else {
            Issue.record("no end")
            return
        }
        // After a protocol switch the bytes belong to the tunnel: they stay unread.
        #expect(try reader.next(from: &bytes) == nil)
        #expect(bytes.readableBytes == "\u{81}\u{05}hello".utf8.count)
    }

    @Test(
        "requests a proxy and an app could read two ways are refused",
        arguments: [
            ("GET / HTTP/1.1\nHost: a\n\n", "a line that does not end in CRLF"),
            ("GET / HTTP/1.1\r\nHost: a\n\r\n", "a line that does not end in CRLF"),
            ("GET / HTTP/1.1\r\nHost: a\r\n\n", "a line that does not end in CRLF"),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", "a header line without a name"),
            ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", "a header name with a space or control character"),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", "a control character in a header value"),
            ("GET / HTTP/1.1\r\nHost: a\r\nX: a\u{0}b\r\n\r\n", "a control character in a header value"),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host header"),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
                "both Content-Length and Transfer-Encoding"
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
                "both Content-Length and Transfer-Encoding"
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n",
                "more than one Content-Length header"
            ),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\n", "a bad Content-Length"),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\n", "a bad Content-Length"),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", "a bad Content-Length"),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                "more than one Transfer-Encoding header"
            ),
            (
                "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
                "Transfer-Encoding in an HTTP/1.0 request"
            ),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "a bad chunk size"),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n", "a bad chunk size"),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX",
                "chunk data not followed by CRLF"
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello",
                "a line that does not end in CRLF"
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a\u{0}\r\nhello\r\n",
                "a control character in a chunk extension"
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Trailer\r\n\r\n",
                "a bad trailer: a header line without a name"
            ),
            ("G@T / HTTP/1.1\r\nHost: a\r\n\r\n", "a bad method"),
            ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "a bad request target"),
            ("GET /a\u{7f} HTTP/1.1\r\nHost: a\r\n\r\n", "a bad request target"),
            ("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", "a bad HTTP version"),
            ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", "a bad HTTP version"),
            ("GET / http/1.1\r\nHost: a\r\n\r\n", "a bad HTTP version"),
            ("SSH-2.0-OpenSSH_9.2\r\n\r\n", "a bad method"),
        ]
    )
    func refusals(request: String, what: String) {
        let found = parts(of: [request])
        #expect(found.error == .malformed(what))
        #expect(!found.parts.contains("end"))
    }

    @Test("other versions, other transfer codings and oversized heads get their own refusals")
    func otherRefusals() {
        #expect(parts(of: ["GET / HTTP/2.0\r\nHost: a\r\n\r\n"]).error == .unsupportedVersion)
        #expect(parts(of: ["GET / HTTP/0.9\r\nHost: a\r\n\r\n"]).error == .unsupportedVersion)
        for coding in ["gzip", "gzip, chunked", "chunked, gzip", "identity"] {
            let request = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \(coding)\r\n\r\n"
            #expect(parts(of: [request]).error == .unsupportedTransferEncoding, "\(coding)")
        }
        let cookie = String(repeating: "c", count: 2000)
        let big = "GET / HTTP/1.1\r\nHost: a\r\nCookie: \(cookie)\r\n\r\n"
        #expect(parts(of: [big], maxHeadBytes: 1024).error == .headTooLarge(limit: 1024))
        // Refused while it arrives, before its end: the proxy never holds more than the limit.
        #expect(parts(of: [String(big.prefix(1500))], maxHeadBytes: 1024).error == .headTooLarge(limit: 1024))
        #expect(parts(of: [big], maxHeadBytes: 4096).error == nil)
        let trailers = String(repeating: "T: v\r\n", count: 200)
        let chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\(trailers)\r\n"
        #expect(parts(of: [chunked], maxHeadBytes: 1024).error == .headTooLarge(limit: 1024))
        #expect(ClientRequestError.unsupportedVersion.status == .httpVersionNotSupported)
        #expect(
            "\(ClientRequestError.malformed("a bad method"))" == "This request is not valid HTTP/1.1 (a bad method)."
        )
    }

    @Test("nothing is read after a refusal, and a reader waits for the rest of a request, however long")
    func afterRefusal() throws {
        var reader = ClientRequestReader(maxHeadBytes: 1024)
        var bytes = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(throws: ClientRequestError.self) { try reader.next(from: &bytes) }
        #expect(try reader.next(from: &bytes) == nil)
        #expect(bytes.readableBytes > 0)

        var waiting = ClientRequestReader(maxHeadBytes: 1024)
        var partial = ByteBuffer(string: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n")
        guard case .head = try waiting.next(from: &partial) else {
            Issue.record("no head")
            return
        }
        #expect(try waiting.next(from: &partial) == nil)
    }

    @Test(
        "bytes that are not well-formed requests are read the same however they are split: refused or waited on alike"
    )
    func readingNoise() {
        let pieces = [
            "GET ", "POST ", "/", "/a?b ", "HTTP/1.1", "HTTP/1.0", "\r\n", "\n", "\r", "Host: a", "Content-Length: 3",
            "Content-Length: 99", "Transfer-Encoding: chunked", "Connection: upgrade", "Upgrade: websocket", ": ",
            " ", "\t", "3", "ff", "0", ";x", "abc", "\u{0}", "\u{7f}", "é",
        ]
        var random = SplitMix64(seed: Fuzzing.seed)
        for _ in 0..<Fuzzing.iterations {
            var input: [UInt8] = []
            for _ in 0..<Int.random(in: 1...30, using: &random) {
                input += pieces.randomElement(using: &random)!.utf8
            }
            let split = Int.random(in: 0...input.count, using: &random)
            // Where a read ended must never change where a request ends: that disagreement is request smuggling.
            let whole = parts(ofBytes: [input], maxHeadBytes: 256)
            let parted = parts(ofBytes: [Array(input[..<split]), Array(input[split...])], maxHeadBytes: 256)
            #expect(whole.parts == parted.parts && whole.error == parted.error, "\(input) split at \(split)")
            let bodyBytes = whole.parts.filter { $0.hasPrefix("body ") }.map { $0.utf8.count - 5 }.reduce(0, +)
            #expect(bodyBytes <= input.count)
        }
    }
}
