// ClientPipelines: what an accepted client connection's pipeline holds. Plain HTTP: a ClientConnectionHandler.
// HTTPS: the certificate chosen from the client's hello (its SNI name; an ACME CA's TLS-ALPN-01 check by its ALPN),
// TLS, then by the protocol the client and the proxy agree on (ALPN): HTTP/1.1,
// as over plain HTTP, or HTTP/2, whose every stream gets a ClientConnectionHandler of its own behind an
// HTTP2StreamBridge. Every connection and stream on an event loop shares its pool of idle instance connections. A
// daemon shutting down sends GOAWAY on each HTTP/2 connection and lets its open streams finish (NIO's connection
// management handler, told by the listener's quiescing helper).
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOSSL
import NIOTLS
import SlipwayTLS

struct ClientPipelines: Sendable {
    let router: Router
    let noticeSettings: ReleaseNoticeSettings
    let limits: ClientLimits
    let trustedProxies: TrustedProxies
    let sendBatches: SendBatch.PerLoop
    let pools: UpstreamPool.PerLoop
    let logger: Logger

    /// Streams one HTTP/2 connection may have open at once, as nginx's `http2_max_concurrent_streams`.
    static let maxConcurrentStreams = 128

    func plain(_ channel: any Channel) throws {
        try http1(channel, scheme: .http)
    }

    func http1(_ channel: any Channel, scheme: ClientEndpoint.Scheme) throws {
        try http1(
            channel,
            scheme: scheme,
            sendBatch: sendBatches.batch(on: channel.eventLoop),
            pool: pools.pool(on: channel.eventLoop)
        )
    }

    /// An HTTP/1.1 exchange handler on `channel`, with its event loop's batch and pool.
    private func http1(
        _ channel: any Channel,
        scheme: ClientEndpoint.Scheme,
        sendBatch: SendBatch,
        pool: UpstreamPool
    ) throws {
        try ClientConnectionHandler.configure(
            channel,
            router: router,
            noticeSettings: noticeSettings,
            limits: limits,
            trustedProxies: trustedProxies,
            scheme: scheme,
            sendBatch: sendBatch,
            pool: pool,
            logger: logger
        )
    }

    /// TLS with the certificate for the name the client asks for (SNI, read from its hello before TLS begins),
    /// then HTTP/1.1 or HTTP/2 as negotiated. A client that names no host a certificate covers (or none) gets no
    /// handshake. An ACME CA checking a TLS-ALPN-01 challenge gets the challenge's certificate, and the connection
    /// closes once the handshake is done, as RFC 8737 asks. The handshake has as long as a request head to finish.
    func tls(_ channel: any Channel, certificates: ServedCertificates) throws {
        let handshakeDeadline = channel.eventLoop.scheduleTask(in: .init(limits.headerTimeout)) {
            channel.close(promise: nil)
        }
        channel.closeFuture.whenComplete { _ in handshakeDeadline.cancel() }
        let pipelines = self
        let choosing = ClientHelloReader { hello in
            guard let hello, let name = hello.serverName,
                let context = certificates.context(forServerName: name, offering: hello.protocols)
            else {
                channel.close(promise: nil)
                return channel.eventLoop.makeFailedFuture(NoCertificate())
            }
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers([
                    NIOSSLServerHandler(context: context),
                    ApplicationProtocolNegotiationHandler { result, channel in
                        handshakeDeadline.cancel()
                        return channel.eventLoop.makeCompletedFuture {
                            if case .negotiated(TLSALPNChallengeCertificate.alpn) = result {
                                channel.close(promise: nil)
                            } else if case .negotiated("h2") = result {
                                try pipelines.http2(channel)
                            } else {
                                try pipelines.http1(channel, scheme: .https)
                            }
                        }
                    },
                ])
            }
        }
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(choosing))
    }

    struct NoCertificate: Error {}

    private func http2(_ channel: any Channel) throws {
        let management = NIOHTTP2ServerConnectionManagementHandler(
            eventLoop: channel.eventLoop,
            configuration: .init(maxIdleTime: .init(limits.idleTimeout), maxAge: nil, maxGraceTime: nil, keepalive: nil)
        )
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: Self.maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: limits.maxHeaderBytes),
            HTTP2Setting(parameter: .maxFrameSize, value: 1 << 14),
        ]
        let pipelines = self
        // The loop's batch and pool, looked up once for every stream of the connection.
        let loopBound = NIOLoopBound(
            (sendBatches.batch(on: channel.eventLoop), pools.pool(on: channel.eventLoop)),
            eventLoop: channel.eventLoop
        )
        try channel.pipeline.syncOperations.addHandler(SendBatch.ConnectionFlush(batch: loopBound.value.0))
        _ = try channel.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .server,
            connectionConfiguration: connection,
            streamConfiguration: .init(),
            streamDelegate: management.http2StreamDelegate
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandlers([
                    AnswerEndsAfterRequest(),
                    HTTP2FramePayloadToHTTP1ServerCodec(),
                    HTTP2StreamBridge(),
                ])
                let (sendBatch, pool) = loopBound.value
                try pipelines.http1(stream, scheme: .https, sendBatch: sendBatch, pool: pool)
            }
        }
        try channel.pipeline.syncOperations.addHandler(management)
    }
}
