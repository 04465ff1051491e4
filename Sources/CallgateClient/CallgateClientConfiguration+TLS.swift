extension CallgateClientConfiguration {
    /// TLS to a server started with a certificate (`callgated --tls-certificate`).
    ///
    /// The server's certificate is always verified: it must chain to ``trustRoots`` and name the server
    /// (``serverName``, else the configuration's host). For a server with a private CA, trust that CA's
    /// certificate file; there is no way to skip verification.
    ///
    /// ```swift
    /// var configuration = CallgateClientConfiguration(host: "callgate.internal", apiKey: key)
    /// configuration.tls = .init(trustRoots: .certificateFile("/etc/callgate/ca.pem"))
    /// ```
    public struct TLS: Sendable, Hashable {
        /// The CAs the server's certificate must chain to.
        public enum TrustRoots: Sendable, Hashable {
            /// The system's CA bundle.
            case system
            /// The CA certificates of a PEM file (a private CA).
            case certificateFile(String)
        }

        public var trustRoots: TrustRoots
        /// The name the server's certificate must carry, also sent as SNI. `nil`: the configuration's
        /// host; when that is an IP address, the certificate must list that address (and no SNI is sent).
        /// A certificate that lists the IP address connected to is accepted whatever the name (NIOSSL's
        /// rule).
        public var serverName: String?
        /// A PEM file with this client's certificate (and any intermediates), for a server that requires
        /// client certificates (`callgated --tls-client-ca`). Goes with ``privateKeyFile``.
        public var certificateFile: String?
        /// The PEM file of the client certificate's private key (unencrypted).
        public var privateKeyFile: String?

        public init(
            trustRoots: TrustRoots = .system,
            serverName: String? = nil,
            certificateFile: String? = nil,
            privateKeyFile: String? = nil
        ) {
            self.trustRoots = trustRoots
            self.serverName = serverName
            self.certificateFile = certificateFile
            self.privateKeyFile = privateKeyFile
        }
    }
}

extension CallgateClientConfiguration.TLS: CustomStringConvertible {
    public var description: String {
        var parts: [String] = []
        switch self.trustRoots {
        case .system: parts.append("trust: system CAs")
        case .certificateFile(let path): parts.append("trust: \(path)")
        }
        if let serverName = self.serverName { parts.append("server name: \(serverName)") }
        if let certificateFile = self.certificateFile { parts.append("client certificate: \(certificateFile)") }
        return "TLS(" + parts.joined(separator: ", ") + ")"
    }
}
