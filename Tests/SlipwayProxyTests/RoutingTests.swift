// Specifications for routing by Host, the proxy's own answers, and what a forwarded request carries.
import NIOHTTP1
import SlipwayTestSupport
import Testing

@testable import SlipwayProxy

@Suite("Routing by Host", .timeLimit(.minutes(1)))
struct RoutingTests {
    @Test("each Host reaches its own app, whatever its case or port")
    func routesByHost() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("blog", host: "blog.test", release: 1, to: [try await proxy.backend("blog-1")])
            proxy.deploy("shop", host: "shop.test", release: 4, to: [try await proxy.backend("shop-4")])
            let client = try await proxy.client()

            let blog = try await client.get("/", host: "Blog.TEST:8080")
            #expect(blog.status == 200)
            #expect(blog.body == "blog-1")
            #expect(blog.header("Slipway-Release") == "v1")

            let shop = try await client.get("/", host: "shop.test")
            #expect(shop.body == "shop-4")
            #expect(shop.header("Slipway-Release") == "v4")
        }
    }

    @Test("an unknown Host gets 404 naming the host")
    func unknownHost() async throws {
        try await ProxyHarness.with { proxy in
            let response = try await proxy.client().get("/", host: "nowhere.test:80")
            #expect(response.status == 404)
            #expect(response.body == "No app is served at nowhere.test.\n")
        }
    }

    @Test("an app with hosts but no live release gets 503 telling to push")
    func noLiveRelease() async throws {
        try await ProxyHarness.with { proxy in
            proxy.router.setHosts(["fresh.test"], for: "fresh")
            let client = try await proxy.client()
            let response = try await client.get("/", host: "fresh.test")
            #expect(response.status == 503)
            #expect(response.body == "fresh has no live release yet: push to deploy it.\n")
            // A local answer keeps the connection usable.
            #expect(try await client.get("/", host: "fresh.test").status == 503)
        }
    }

    @Test("a forwarded request keeps Host, gains X-Forwarded-*, and loses hop-by-hop headers")
    func forwardedHeaders() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("api", host: "api.test", release: 1, to: [try await proxy.backend("api")])
            let response = try await proxy.client().get(
                "/headers",
                host: "api.test",
                headers: [
                    "Connection": "keep-alive, X-Hop-Secret",
                    "X-Hop-Secret": "1",
                    "Keep-Alive": "timeout=5",
                    "Proxy-Connection": "keep-alive",
                    "TE": "trailers",
                    "X-Forwarded-For": "10.1.2.3",
                    "X-App-Header": "kept",
                ]
            )
            let lines = Set(response.body.split(separator: "\n").map(String.init))
            #expect(lines.contains("host: api.test"))
            #expect(lines.contains("x-forwarded-for: 127.0.0.1"))
            #expect(lines.contains("x-real-ip: 127.0.0.1"))
            #expect(lines.contains("x-forwarded-port: \(proxy.port)"))
            #expect(lines.contains("x-forwarded-proto: http"))
            #expect(lines.contains("x-forwarded-host: api.test"))
            #expect(lines.contains("x-app-header: kept"))
            for hop in ["connection", "x-hop-secret", "keep-alive", "proxy-connection", "te"] {
                #expect(!lines.contains { $0.hasPrefix("\(hop):") }, "\(hop) must not reach the app")
            }
        }
    }

    @Test("a trusted load balancer's X-Forwarded-* and Forwarded reach the app; anyone else's are replaced")
    func trustedProxies() async throws {
        let balancer: HTTPHeaders = [
            "X-Forwarded-For": "203.0.113.7, 10.0.0.9", "X-Forwarded-Proto": "https", "X-Forwarded-Port": "443",
            "X-Forwarded-Host": "shop.example.com", "Forwarded": "for=203.0.113.7;proto=https", "X-Real-IP": "6.6.6.6",
        ]
        for (trusted, passedOn) in [("127.0.0.1,10.0.0.0/8", true), ("10.0.0.0/8", false)] {
            try await ProxyHarness.with(trustedProxies: try TrustedProxies(parsing: trusted)) { proxy in
                proxy.deploy("api", host: "api.test", release: 1, to: [try await proxy.backend("api")])
                let body = try await proxy.client().get("/headers", host: "api.test", headers: balancer).body
                let lines = Set(body.split(separator: "\n").map(String.init))
                if passedOn {
                    #expect(lines.contains("x-forwarded-for: 203.0.113.7, 10.0.0.9, 127.0.0.1"), "\(body)")
                    #expect(lines.contains("x-real-ip: 203.0.113.7"), "the first address no trusted proxy holds")
                    #expect(lines.contains("x-forwarded-proto: https"))
                    #expect(lines.contains("x-forwarded-port: 443"))
                    #expect(lines.contains("x-forwarded-host: shop.example.com"))
                    #expect(lines.contains("forwarded: for=203.0.113.7;proto=https"))
                } else {
                    #expect(lines.contains("x-forwarded-for: 127.0.0.1"), "\(body)")
                    #expect(lines.contains("x-real-ip: 127.0.0.1"))
                    #expect(lines.contains("x-forwarded-proto: http"))
                    #expect(lines.contains("x-forwarded-host: api.test"))
                    #expect(!lines.contains { $0.hasPrefix("forwarded:") })
                }
            }
        }
    }

    @Test("--trusted-proxies takes addresses and CIDR networks, IPv4 and IPv6, and refuses anything else")
    func trustedProxyNetworks() throws {
        let proxies = try TrustedProxies(parsing: "10.0.0.0/8, 192.168.1.7,fd00::/8")
        #expect(proxies.contains("10.200.3.4") && proxies.contains("192.168.1.7") && proxies.contains("fd12::1"))
        #expect(proxies.contains("::ffff:10.0.0.1"), "an IPv4 address written in IPv6")
        #expect(!proxies.contains("11.0.0.1") && !proxies.contains("192.168.1.8") && !proxies.contains("fe80::1"))
        #expect(!proxies.contains("not an address"))
        #expect(try TrustedProxies(parsing: "none").isEmpty && TrustedProxies(parsing: "").isEmpty)
        #expect(try TrustedProxies(parsing: "0.0.0.0/0").contains("8.8.8.8"))
        // `/` and `/8` alone crashed the parser, found by fuzzing.
        for bad in [
            "10.0.0.0/33", "10.0.0/8", "example.com", "::/129", "1.2.3.4/-1", "1.2.3.4/x", "/", "/8", "1.2.3.4/",
        ] {
            #expect(throws: TrustedProxies.ParseError.invalid(bad)) { try TrustedProxies(parsing: bad) }
        }
        // An operator's value, fuzzed: read, or refused in one line.
        for input in Fuzzing.inputs(from: ["10.0.0.0/8,192.168.1.7,fd00::/8", "::1/128"], extra: ["/", ",", ":"]) {
            do {
                _ = try TrustedProxies(parsing: String(decoding: input, as: UTF8.self)).contains("10.0.0.1")
            } catch {
                #expect(!error.description.contains("\n"), "\(error)")
            }
        }
    }

    @Test("X-Request-Id: a client's is kept, a missing or unloggable one is made (32 hex digits)")
    func requestID() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("api", host: "api.test", release: 1, to: [try await proxy.backend("api")])
            let client = try await proxy.client()
            func requestIDs(_ headers: HTTPHeaders) async throws -> [String] {
                let body = try await client.get("/headers", host: "api.test", headers: headers).body
                return body.split(separator: "\n").filter { $0.hasPrefix("x-request-id: ") }.map {
                    String($0.dropFirst(14))
                }
            }
            #expect(try await requestIDs(["X-Request-Id": "trace-42"]) == ["trace-42"])
            let made = try await requestIDs([:])
            let again = try await requestIDs([:])
            #expect(made.count == 1 && made[0].count == 32 && made[0].allSatisfy(\.isHexDigit), "\(made)")
            #expect(made != again)
            #expect(try await requestIDs(["X-Request-Id": "has space"]) != ["has space"])
        }
    }

    @Test("a request body reaches the app")
    func requestBody() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("api", host: "api.test", release: 1, to: [try await proxy.backend("api")])
            let client = try await proxy.client()
            let response = try await client.send(method: .POST, "/echo-body", host: "api.test", body: "order=42")
            #expect(response.status == 200)
            #expect(response.body == "order=42")
        }
    }

    @Test("HEAD gets the head without a body, and the connection stays usable")
    func headRequest() async throws {
        try await ProxyHarness.with { proxy in
            proxy.deploy("api", host: "api.test", release: 1, to: [try await proxy.backend("api")])
            let client = try await proxy.client()
            let head = try await client.send(method: .HEAD, "/", host: "api.test")
            #expect(head.status == 200)
            #expect(head.body == "")
            #expect(try await client.get("/", host: "api.test").body == "api")
        }
    }

    @Test("a malformed request gets 400 and the connection closes")
    func malformedRequest() async throws {
        try await ProxyHarness.with { proxy in
            let raw = try await proxy.rawClient()
            try await raw.send("NOT HTTP AT ALL\r\n\r\n")
            let answer = try await raw.waitFor("\r\n\r\n")
            #expect(answer.hasPrefix("HTTP/1.1 400"))
            try await raw.waitForClose()
        }
    }

    @Test("a request smuggled behind an ambiguous one never reaches the app; the client is told what was wrong")
    func smuggling() async throws {
        try await ProxyHarness.with { proxy in
            let backend = try await proxy.backend("web")
            proxy.deploy("web", host: "web.test", release: 1, to: [backend])
            let attempts = [
                ("Content-Length: 44\r\nTransfer-Encoding: chunked", "400 Bad Request", "both Content-Length and"),
                ("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity", "400 Bad Request", "more than one"),
                ("Transfer-Encoding: xchunked", "501 Not Implemented", "Transfer-Encoding is not supported"),
                ("Content-Length: 0\nX: y", "400 Bad Request", "a line that does not end in CRLF"),
                // The body would have reached the app as a second request of the client's making.
                ("Content-Length: 45\r\nConnection: content-length", "400 Bad Request", "naming content-length"),
                ("Content-Length: 45\r\nConnection: host", "400 Bad Request", "naming host"),
            ]
            for (headers, status, sentence) in attempts {
                let raw = try await proxy.rawClient()
                try await raw.send(
                    "POST / HTTP/1.1\r\nHost: web.test\r\n\(headers)\r\n\r\n"
                        + "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: web.test\r\n\r\n"
                )
                try await raw.waitForClose()
                #expect(raw.text.hasPrefix("HTTP/1.1 \(status)\r\n"), "\(headers)")
                #expect(raw.text.contains(sentence), "\(headers)")
                #expect(raw.text.contains("Connection: close\r\n"))
            }
            #expect(backend.requestCount == 0)
            // The proxy still serves everybody else.
            let client = try await proxy.client()
            #expect(try await client.get("/", host: "web.test").status == 200)
        }
    }
}
