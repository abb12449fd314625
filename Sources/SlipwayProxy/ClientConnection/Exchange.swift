// Exchange and Forwarding: the state of one request on a client connection, and of its trip to an
// instance (which instances remain to try, what a retry must send again). Both live on one event loop.
import NIOCore
import NIOHTTP1

/// One request on a client connection and the state of its answer.
final class Exchange {
    let id: Int
    let request: ClientRequestHead
    var state: ExchangeState
    /// Body bytes the client sent so far, held against the body limit.
    var bodyBytes = 0
    var claim: UpstreamClaim?
    /// Set while the request is being forwarded to an instance; nil once its answer is settled.
    var forwarding: Forwarding?
    /// Set while the proxy holds the request open for the app's next release.
    var releaseWait: ReleaseWait?

    init(id: Int, request: ClientRequestHead) {
        self.id = id
        self.request = request
        self.state = ExchangeState(keepAlive: request.keepAlive && !request.endsHTTPOnThisConnection)
    }

    func releaseClaim() {
        claim?.release()
        claim = nil
    }
}

/// A request on its way to an instance: which instances may still be tried, and what must be sent again if one is.
final class Forwarding {
    /// A retry replays at most this much body; a longer body is sent once.
    static let replayLimit = 256 * 1024

    let app: String
    let claim: UpstreamClaim
    /// The request head for the instance, as bytes, sent again as they are on a retry.
    let head: ByteBuffer
    /// The client's body came chunked, and goes on re-chunked.
    let bodyIsChunked: Bool
    var attempts: UpstreamAttempts
    /// Counts connection attempts, so the answer of an abandoned one is recognised and ignored.
    var attempt = 0
    var connection: UpstreamConnection?
    var reused = false
    /// Body parts received and not yet sent (an array: most requests have none, and an empty one costs nothing).
    var unsent: [ByteBuffer] = []
    var endSent = false
    var sentBodyBytes = 0
    /// The body parts sent so far, for a retry; nil once over the limit or once the answer started.
    var replay: [ByteBuffer]? = []
    var replayBytes = 0
    var responseStarted = false
    var upgrading = false
    var instanceKeepsAlive = true
    var clientFraming = ClientFraming()
    /// The max-age of the `Strict-Transport-Security` the answer carries (an app with `proxy:https only`, over TLS).
    var strictTransportSecurity: Int?

    init(app: String, claim: UpstreamClaim, head: ByteBuffer, bodyIsChunked: Bool) {
        self.app = app
        self.claim = claim
        self.head = head
        self.bodyIsChunked = bodyIsChunked
        self.attempts = UpstreamAttempts(upstreams: claim.set.upstreams, first: claim.first, resting: claim.resting)
    }

    func noteSent(_ body: ByteBuffer) {
        sentBodyBytes += body.readableBytes
        guard replay != nil else { return }
        replayBytes += body.readableBytes
        if replayBytes > Forwarding.replayLimit {
            replay = nil
        } else {
            replay?.append(body)
        }
    }

    /// A kept-alive connection the instance closed before answering (it timed the connection out while we
    /// sent) is safe to retry when the request can be sent again unchanged.
    func mayRetryAfterStaleConnection(idempotent: Bool) -> Bool {
        reused && (sentBodyBytes == 0 || (idempotent && replay != nil))
    }

    /// An instance that closed before any byte of its answer (it died, or was killed mid-request) left an
    /// idempotent request that can be sent again unchanged free to go to another instance (RFC 9110, 9.2.2).
    func mayRetryElsewhere(idempotent: Bool) -> Bool {
        idempotent && (sentBodyBytes == 0 || replay != nil)
    }

    /// Puts everything sent on the failed connection back in front of what is still to send.
    func rewind() {
        unsent = (replay ?? []) + unsent
        replay = []
        replayBytes = 0
        sentBodyBytes = 0
        endSent = false
    }
}
