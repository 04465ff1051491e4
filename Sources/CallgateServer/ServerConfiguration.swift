import CallgateWire

/// How `callgated` listens and what it tolerates from clients.
public struct ServerConfiguration: Sendable {
    /// The address to listen on; loopback unless the operator says otherwise.
    public var host = "127.0.0.1"
    /// The client port; 0 picks a free one (tests).
    public var port = 7420
    /// TLS on the client port; `nil` (the default) speaks plain TCP, which is meant for loopback only.
    /// The TLS handshake counts against ``helloTimeout``.
    public var tls: ServerTLSConfiguration?
    /// The largest frame body accepted, in bytes; a longer length prefix closes the connection.
    public var maximumFrameBytes = Wire.defaultMaximumFrameBytes
    /// Open connections at most; more are answered RESOURCE_EXHAUSTED and closed.
    public var maximumConnections = 1024
    /// A connection that sends nothing for this long is closed.
    public var idleTimeout: Duration = .seconds(300)
    /// A connection must say hello within this time.
    public var helloTimeout: Duration = .seconds(10)
    /// Replies waiting in the socket's send buffer above this many bytes stop the server from reading
    /// the connection's requests (backpressure).
    public var outboundHighWatermark = 1 << 20
    /// A connection that stays above the watermark (it sends but does not read) this long is cut off.
    public var slowReaderTimeout: Duration = .seconds(10)
    /// How long graceful shutdown waits for connections to finish before closing them.
    public var shutdownGracePeriod: Duration = .seconds(10)
    /// The Prometheus endpoint (`GET /metrics`); `nil` turns it off. 0 picks a free port.
    public var metricsPort: Int? = 9420
    /// The address of the metrics endpoint.
    public var metricsHost = "127.0.0.1"

    public init() {}
}
