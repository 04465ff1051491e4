package import NIOCore
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// The TLS state of ``CallgateClientConfiguration/TLS`` made ready for connections: certificates and key
/// read and checked, one `NIOSSLContext` shared by every connection to that host (the load generator
/// opens many).
///
/// Making it reads files (and, for ``CallgateClientConfiguration/TLS/TrustRoots/system``, the system's
/// CA bundle): do it off the event loops, once.
package struct ClientTLSContext: Sendable {
    private let context: NIOSSLContext
    /// The name checked against the server's certificate and sent as SNI; `nil` for an IP address (the
    /// certificate must then list the address the connection goes to).
    private let serverName: String?
    /// The name or address the certificate must carry, for messages.
    private let expectedName: String
    /// Where trust comes from, for messages.
    private let trustDescription: String

    /// - Throws: `.connectFailed` naming the file that cannot be used.
    package init(_ tls: CallgateClientConfiguration.TLS, host: String) throws(CallgateClientError) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        switch tls.trustRoots {
        case .system:
            configuration.trustRoots = .default
            self.trustDescription = "the system's CAs"
        case .certificateFile(let path):
            configuration.trustRoots = .certificates(try Self.certificates(at: path, what: "TLS CA"))
            self.trustDescription = "the CA in \(path)"
        }
        switch (tls.certificateFile, tls.privateKeyFile) {
        case (nil, nil):
            break
        case (let certificatePath?, let keyPath?):
            configuration.certificateChain = try Self.certificates(at: certificatePath, what: "TLS client certificate")
                .map { .certificate($0) }
            try Self.checkReadable(keyPath, what: "TLS client key")
            do {
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyPath, format: .pem))
            } catch {
                throw Self.failure("the TLS client key file \(keyPath) does not hold a usable PEM private key")
            }
        default:
            throw Self.failure("a TLS client certificate needs its private key, and a key its certificate")
        }
        do {
            self.context = try NIOSSLContext(configuration: configuration)
        } catch NIOSSLError.failedToLoadPrivateKey {
            throw Self.failure("the TLS client key does not belong to the client certificate")
        } catch {
            throw Self.failure("cannot set up TLS (\(tls)): \(error)")
        }
        let name = tls.serverName ?? host
        self.expectedName = name
        // An IP address is not a valid SNI name; NIOSSL then checks the certificate's IP addresses.
        self.serverName = (try? SocketAddress(ipAddress: name, port: 0)) == nil ? name : nil
    }

    /// Adds the TLS handler in front of the pipeline (on the channel's event loop).
    package func addHandler(to pipeline: ChannelPipeline.SynchronousOperations) throws {
        try pipeline.addHandler(
            NIOSSLClientHandler(context: self.context, serverHostname: self.serverName),
            position: .first
        )
    }

    /// Whether `error` comes from TLS (the handshake, a certificate, an alert from the server).
    package static func isTLSError(_ error: any Error) -> Bool {
        error is NIOSSLError || error is NIOSSLExtraError || error is BoringSSLError
    }

    /// A sentence for a TLS failure before the session started.
    package func describeFailure(_ error: any Error) -> String {
        let text = "\(error)"
        let reason: String
        if let error = error as? NIOSSLExtraError, error == .failedToValidateHostname {
            reason = "the server's certificate is not valid for \(self.expectedName)"
        } else if text.contains("CERTIFICATE_VERIFY_FAILED") {
            reason =
                "the server's certificate did not verify against \(self.trustDescription) "
                + "(another CA, expired or not yet valid)"
        } else if text.contains("WRONG_VERSION_NUMBER") || text.contains("PACKET_LENGTH_TOO_LONG") {
            reason = "the server did not answer in TLS (is TLS on at that port?)"
        } else if text.contains("CERTIFICATE_REQUIRED") {
            reason = "the server requires a client certificate"
        } else if text.contains("UNKNOWN_CA") || text.contains("BAD_CERTIFICATE") {
            reason = "the server did not accept the client certificate"
        } else {
            reason = text
        }
        return "TLS handshake failed: \(reason)"
    }

    private static func failure(_ message: String) -> CallgateClientError {
        CallgateClientError(kind: .connectFailed, message: message)
    }

    private static func checkReadable(_ path: String, what: String) throws(CallgateClientError) {
        if access(path, R_OK) != 0 {
            throw Self.failure("cannot read the \(what) file \(path): \(String(cString: strerror(errno)))")
        }
    }

    private static func certificates(at path: String, what: String) throws(CallgateClientError) -> [NIOSSLCertificate] {
        try Self.checkReadable(path, what: what)
        let certificates = (try? NIOSSLCertificate.fromPEMFile(path)) ?? []
        guard !certificates.isEmpty else {
            throw Self.failure("the \(what) file \(path) does not hold a valid PEM certificate")
        }
        return certificates
    }
}
