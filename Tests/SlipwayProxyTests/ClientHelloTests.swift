// The TLS listener chooses a certificate from the client's first message, before any TLS code has checked it: the
// host and protocols come out of a real client's hello however it arrives, and strangers' bytes never crash it.
import NIOCore
import NIOEmbedded
import NIOSSL
import SlipwayBasics
import SlipwayTestSupport
import Testing

@testable import SlipwayProxy

@Suite("Client hello")
struct ClientHelloTests {
    /// The first bytes BoringSSL's client sends (swift-nio-ssl's, in an embedded channel).
    func realHello(host: String, protocols: [String]) throws -> ByteBuffer {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.applicationProtocols = protocols
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            try NIOSSLClientHandler(context: NIOSSLContext(configuration: configuration), serverHostname: host)
        )
        _ = try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        var hello = ByteBuffer()
        while var written = try channel.readOutbound(as: ByteBuffer.self) { hello.writeBuffer(&written) }
        _ = try? channel.finish()
        return hello
    }

    @Test("a real client's host and protocols are read however the hello is split, and only once it is whole")
    func readingARealHello() throws {
        let hello = try realHello(host: "shop.example.test", protocols: ["h2", "http/1.1"])
        let expected = ClientHello(serverName: "shop.example.test", protocols: ["h2", "http/1.1"])
        #expect(ClientHello.read(hello) == .read(expected))
        for end in 0..<hello.readableBytes {
            #expect(ClientHello.read(hello.getSlice(at: 0, length: end)!) == .incomplete, "cut at \(end)")
        }
        var followed = hello
        followed.writeString("more bytes after the hello")
        #expect(ClientHello.read(followed) == .read(expected))
        let challenge = try realHello(host: "shop.example.test", protocols: ["acme-tls/1"])
        #expect(
            ClientHello.read(challenge)
                == .read(ClientHello(serverName: "shop.example.test", protocols: ["acme-tls/1"]))
        )
    }

    @Test("what is not a TLS hello is known as one at once or when its record is whole, never waited on for ever")
    func notAHello() throws {
        #expect(ClientHello.read(ByteBuffer(string: "GET / HTTP/1.1\r\n")) == .notAHello)
        #expect(ClientHello.read(ByteBuffer(bytes: [22, 3, 1, 0x40, 0x01])) == .notAHello, "a record over 16 KiB")
        #expect(ClientHello.read(ByteBuffer(bytes: [22, 2, 0, 0, 4, 1, 0, 0, 0])) == .notAHello, "SSL 2")
        #expect(ClientHello.read(ByteBuffer(bytes: [22, 3, 1, 0, 4, 2, 0, 0, 0])) == .notAHello, "a server hello")
        let hello = try realHello(host: "shop.example.test", protocols: ["h2"])
        // A hello longer than its record (sent in two records) is not read: NIO's SNIHandler did not either.
        var longer = hello
        let handshakeLength = longer.getInteger(at: 7, as: UInt16.self)!
        longer.setInteger(handshakeLength + 1, at: 7)
        #expect(ClientHello.read(longer) == .notAHello)
        // A name with a byte no host name has.
        let name = Array("shop.example.test".utf8)
        let at = hello.readableBytesView.firstRange(of: name)!.lowerBound - hello.readerIndex
        var control = hello
        control.setInteger(UInt8(0x0A), at: at + 4)
        #expect(ClientHello.read(control) == .notAHello)
    }

    @Test("mutated hellos (lengths, bytes, cuts) end in an answer and never a crash")
    func fuzzedHellos() throws {
        let seeds = try [
            realHello(host: "shop.example.test", protocols: ["h2", "http/1.1"]),
            realHello(host: "a.test", protocols: ["acme-tls/1"]), realHello(host: "b.test", protocols: []),
        ].map { Array($0.readableBytesView) }
        var random = SplitMix64(seed: Fuzzing.seed)
        for _ in 0..<Fuzzing.iterations {
            var bytes = seeds.randomElement(using: &random)!
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let at = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<4, using: &random) {
                case 0: bytes[at] = UInt8.random(in: 0...255, using: &random)
                case 1: bytes[at] = [0, 0xFF, 0x7F, 0x80].randomElement(using: &random)!
                case 2: bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...16, using: &random)))
                default: bytes.insert(contentsOf: bytes[at..<min(bytes.count, at + 8)], at: at)
                }
                if bytes.isEmpty { bytes = [22] }
            }
            if case .read(let hello) = ClientHello.read(ByteBuffer(bytes: bytes)) {
                #expect(hello.serverName.map { $0.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F } } ?? true)
                #expect(hello.protocols.allSatisfy { !$0.isEmpty && $0.utf8.count <= 255 })
            }
        }
    }
}
