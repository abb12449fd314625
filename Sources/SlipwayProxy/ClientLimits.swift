// ClientLimits: what one client request may weigh and how long a client may stay silent, answered with
// 431, 413 and 408 instead of a dropped connection.

/// The limits the proxy puts on every client, whatever the app.
public struct ClientLimits: Sendable, Equatable {
    /// The request line and header lines together; answered 431. The reader holds a head whole while it reads
    /// it, so `largestHeaderBytes` bounds what an operator may allow.
    public var maxHeaderBytes: Int
    /// A request body; answered 413. nil: no limit.
    public var maxBodyBytes: Int?
    /// How long a client that has started a request (its head or body still arriving) may stay silent; 408.
    public var requestTimeout: Duration
    /// How long a keep-alive connection may wait for its next request before it is closed (nginx's default).
    public var idleTimeout: Duration

    public static let largestHeaderBytes = 80 * 1024

    public init(
        maxHeaderBytes: Int = 32 * 1024,
        maxBodyBytes: Int? = 100 * 1024 * 1024,
        requestTimeout: Duration = .seconds(60),
        idleTimeout: Duration = .seconds(75)
    ) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
        self.requestTimeout = requestTimeout
        self.idleTimeout = idleTimeout
    }

}
