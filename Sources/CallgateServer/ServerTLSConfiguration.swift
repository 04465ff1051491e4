import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

/// TLS on the client port: the certificate chain and private key `callgated` presents and, for mutual
/// TLS, the CA that client certificates must chain to.
///
/// ``load(certificatePath:privateKeyPath:clientCAPath:)`` reads and checks every file at once, so that a
/// missing, unreadable or invalid file, or a key that does not belong to the certificate, stops the server
/// at startup with a sentence naming the file. TLS 1.2 is the minimum; TLS 1.3 is chosen whenever the
/// client speaks it.
public struct ServerTLSConfiguration: Sendable {
    /// The PEM file of the server's certificate, followed by any intermediate certificates.
    public let certificatePath: String
    /// The PEM file of the certificate's private key (unencrypted).
    public let privateKeyPath: String
    /// The PEM file of the CA certificates that client certificates must chain to; `nil`: clients
    /// present none.
    public let clientCAPath: String?
    /// When the server's certificate expires, in seconds since 1970.
    public let certificateNotValidAfter: Int
    /// Made once from the files; creates each connection's TLS state.
    let context: NIOSSLContext

    /// Whether every client must present a certificate signed by ``clientCAPath``.
    public var requiresClientCertificates: Bool { self.clientCAPath != nil }

    /// Loads TLS when a certificate or a key is given; `nil` when neither is (plain TCP).
    ///
    /// - Throws: ``ServerTLSConfigurationError`` when only one of the pair is given, when a client CA is
    ///   given without them, or when a file cannot be used.
    public static func load(
        certificatePath: String?,
        privateKeyPath: String?,
        clientCAPath: String? = nil
    ) throws(ServerTLSConfigurationError) -> ServerTLSConfiguration? {
        switch (certificatePath, privateKeyPath) {
        case (nil, nil):
            if clientCAPath != nil {
                throw ServerTLSConfigurationError(
                    "a client CA (--tls-client-ca) needs TLS on: give --tls-certificate and --tls-private-key too"
                )
            }
            return nil
        case (_?, nil):
            throw ServerTLSConfigurationError(
                "TLS needs the certificate's private key too: give --tls-private-key with --tls-certificate"
            )
        case (nil, _?):
            throw ServerTLSConfigurationError(
                "TLS needs a certificate too: give --tls-certificate with --tls-private-key"
            )
        case (let certificatePath?, let privateKeyPath?):
            return try ServerTLSConfiguration(
                certificatePath: certificatePath,
                privateKeyPath: privateKeyPath,
                clientCAPath: clientCAPath
            )
        }
    }

    /// Reads and checks the files.
    public init(
        certificatePath: String,
        privateKeyPath: String,
        clientCAPath: String? = nil
    ) throws(ServerTLSConfigurationError) {
        let chain = try Self.certificates(at: certificatePath, what: "TLS certificate")
        let keyBytes = try Self.readPEM(at: privateKeyPath, what: "TLS private key")
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: keyBytes, format: .pem)
        } catch {
            throw ServerTLSConfigurationError(
                "the TLS private key file \(privateKeyPath) does not hold a usable PEM private key "
                    + "(an encrypted key is not supported)"
            )
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.minimumTLSVersion = .tlsv12
        if let clientCAPath {
            let roots = try Self.certificates(at: clientCAPath, what: "TLS client CA")
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .certificates(roots)
            configuration.sendCANameList = true
        }
        do {
            self.context = try NIOSSLContext(configuration: configuration)
        } catch NIOSSLError.failedToLoadPrivateKey {
            throw ServerTLSConfigurationError(
                "the TLS private key in \(privateKeyPath) does not belong to the certificate in \(certificatePath)"
            )
        } catch {
            throw ServerTLSConfigurationError("TLS cannot use \(certificatePath) and \(privateKeyPath): \(error)")
        }
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.clientCAPath = clientCAPath
        self.certificateNotValidAfter = Int(chain[0].notValidAfter)
    }

    /// Makes the handler that goes first in a connection's pipeline.
    func makeHandler() -> NIOSSLServerHandler {
        NIOSSLServerHandler(context: self.context)
    }

    /// The certificates of a PEM file, at least one.
    private static func certificates(
        at path: String,
        what: String
    ) throws(ServerTLSConfigurationError) -> [NIOSSLCertificate] {
        let bytes = try Self.readPEM(at: path, what: what)
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            certificates = []
        }
        guard !certificates.isEmpty else {
            throw ServerTLSConfigurationError("the \(what) file \(path) does not hold a valid PEM certificate")
        }
        return certificates
    }

    /// The bytes of a PEM file: it must be readable and have a `-----BEGIN` line.
    private static func readPEM(at path: String, what: String) throws(ServerTLSConfigurationError) -> [UInt8] {
        let bytes: [UInt8]
        switch readSmallFile(path) {
        case .success(let read): bytes = read
        case .failure(let reason): throw ServerTLSConfigurationError("cannot read the \(what) file \(path): \(reason)")
        }
        guard bytes.firstRange(of: Array("-----BEGIN ".utf8)) != nil else {
            throw ServerTLSConfigurationError("the \(what) file \(path) is not PEM (no -----BEGIN line)")
        }
        return bytes
    }
}

/// Why TLS could not be set up: a sentence for the operator, naming the file.
public struct ServerTLSConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String

    init(_ message: String) {
        self.message = message
    }

    public var description: String { self.message }
}

/// The reason a file could not be read, as `strerror` words it.
struct FileReadFailure: Error {
    var reason: String
}

extension FileReadFailure: CustomStringConvertible {
    var description: String { self.reason }
}

/// Reads a file of at most `limit` bytes (certificates and keys are a few kilobytes).
func readSmallFile(_ path: String, limit: Int = 1 << 20) -> Result<[UInt8], FileReadFailure> {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return .failure(FileReadFailure(reason: String(cString: strerror(errno)))) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16_384)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            return .failure(FileReadFailure(reason: String(cString: strerror(errno))))
        }
        if n == 0 { return .success(bytes) }
        bytes += chunk[0..<n]
        if bytes.count > limit { return .failure(FileReadFailure(reason: "larger than \(limit) bytes")) }
    }
}
