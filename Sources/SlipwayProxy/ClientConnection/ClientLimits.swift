// ClientLimits: what one client request may weigh, how long a client may stay silent or take over a request head,
// and how many connections clients may hold: answered with 431, 413, 408 and 503 instead of a dropped connection.

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
    /// How long a request's line and headers may take to arrive whole, however the client trickles them; 408.
    public var headerTimeout: Duration
    /// Client connections open at once, over all clients and from one address; more get a 503 and are closed. A
    /// partial head may hold `maxHeaderBytes`, so these bound what slow clients can make the proxy hold.
    public var maxConnections: Int
    public var maxConnectionsPerAddress: Int

    public static let largestHeaderBytes = 80 * 1024

    public init(
        maxHeaderBytes: Int = 32 * 1024,
        maxBodyBytes: Int? = 100 * 1024 * 1024,
        requestTimeout: Duration = .seconds(60),
        idleTimeout: Duration = .seconds(75),
        headerTimeout: Duration = .seconds(20),
        maxConnections: Int = 10_000,
        maxConnectionsPerAddress: Int = 256
    ) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
        self.requestTimeout = requestTimeout
        self.idleTimeout = idleTimeout
        self.headerTimeout = headerTimeout
        self.maxConnections = maxConnections
        self.maxConnectionsPerAddress = maxConnectionsPerAddress
    }

}
