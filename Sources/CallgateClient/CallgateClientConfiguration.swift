import CallgateWire

/// Where and how ``CallgateClient`` connects.
public struct CallgateClientConfiguration: Sendable {
    public var host: String = "127.0.0.1"
    public var port: Int = 7420
    /// The API key sent in `hello`.
    public var apiKey: String
    /// Free text the server logs (`dialer-7 v2.3`).
    public var clientName: String = "callgate-client"
    /// How long one request waits for its response unless ``CallgateClient/send(_:timeout:)`` says otherwise.
    public var requestTimeout: Duration = .seconds(30)
    /// How long the TCP connect may take, and then how long the TLS handshake (with ``tls``) and the
    /// `hello` exchange may take together.
    public var connectTimeout: Duration = .seconds(5)
    /// TLS to the server; `nil` (the default) speaks plain TCP, as `callgated` does unless it is given a
    /// certificate.
    public var tls: TLS?
    /// The largest response frame body accepted; a longer length prefix closes the connection.
    public var maximumFrameBytes: Int = Wire.defaultMaximumFrameBytes

    public init(
        host: String = "127.0.0.1",
        port: Int = 7420,
        apiKey: String,
        clientName: String = "callgate-client"
    ) {
        self.host = host
        self.port = port
        self.apiKey = apiKey
        self.clientName = clientName
    }
}

extension CallgateClientConfiguration: CustomStringConvertible {
    /// The configuration without the API key's secret.
    public var description: String {
        "CallgateClientConfiguration(host: \(self.host), port: \(self.port), apiKey: <redacted>, "
            + "clientName: \(self.clientName), requestTimeout: \(self.requestTimeout), "
            + "connectTimeout: \(self.connectTimeout), maximumFrameBytes: \(self.maximumFrameBytes), "
            + "tls: \(self.tls.map { "\($0)" } ?? "off"))"
    }
}
