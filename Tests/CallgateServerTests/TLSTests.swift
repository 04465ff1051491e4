import CallgateClient
import CallgateCore
import CallgateServer
import CallgateWire
import Foundation
import Testing

/// The committed TLS fixtures (`scripts/generate-test-certs.sh`): a test CA, a server certificate for
/// localhost and 127.0.0.1 signed by it, a client certificate signed by it, and an unrelated CA.
enum TLSFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Resources/tls").path

    static func path(_ name: String) -> String { Self.directory + "/" + name }

    static func server(clientCA: String? = nil) throws -> ServerTLSConfiguration {
        try ServerTLSConfiguration(
            certificatePath: Self.path("server.pem"),
            privateKeyPath: Self.path("server.key"),
            clientCAPath: clientCA.map(Self.path)
        )
    }

    static func client(ca: String = "ca.pem", serverName: String? = nil) -> CallgateClientConfiguration.TLS {
        CallgateClientConfiguration.TLS(trustRoots: .certificateFile(Self.path(ca)), serverName: serverName)
    }
}

@Suite("TLS on the client port") struct TLSTests {
    static let agent = "tls-agent"
    static let destination = "+12025550123"

    /// An agent holding one number with a generous limit, so that AuthorizeCall answers ALLOW.
    static func seed(_ client: CallgateClient) async throws {
        _ = try await client.addNumber(Wire.AddNumberRequest(number: "+14155550100", provider: "telnyx"))
        _ = try await client.upsertAgent(Wire.UpsertAgentRequest(id: Self.agent))
        _ = try await client.assign(
            Wire.AssignRequest(
                number: "+14155550100",
                agentID: Self.agent,
                terms: Wire.AssignmentTerms(dailyLimit: 1000)
            )
        )
    }

    static func expectAllow(_ client: CallgateClient, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let answer = try await client.authorizeCall(
            Wire.AuthorizeCallRequest(agentID: Self.agent, destination: Self.destination)
        )
        #expect(answer.verdict == .allow, sourceLocation: sourceLocation)
    }

    /// Connects over TLS, trying again when a loaded machine misses a short hello timeout.
    static func connectTLS(_ server: TestServer, attempts: Int = 1) async throws -> CallgateClient {
        for _ in 1..<max(1, attempts) {
            if let client = try? await server.connect(name: "tls", tls: TLSFixtures.client()) { return client }
        }
        return try await server.connect(name: "tls", tls: TLSFixtures.client())
    }

    /// Expects `connect` to fail as a connect failure whose message says `reason`.
    static func expectConnectFailure(
        containing reason: String,
        sourceLocation: SourceLocation = #_sourceLocation,
        _ connect: () async throws -> CallgateClient
    ) async {
        do {
            let client = try await connect()
            await client.close()
            Issue.record("the connection succeeded", sourceLocation: sourceLocation)
        } catch let error as CallgateClientError {
            #expect(error.kind == .connectFailed, "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.contains(reason), "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("expected a CallgateClientError, got \(error)", sourceLocation: sourceLocation)
        }
    }

    /// Waits (up to 5 s) until the server's metrics show `line`: the server learns of a failed handshake
    /// a little after the client does.
    static func expectMetric(
        _ server: TestServer,
        _ line: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        var text = ""
        for _ in 0..<100 {
            text = String(decoding: server.metrics.render(), as: UTF8.self)
            if text.contains(line) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the metrics never showed \(line)", sourceLocation: sourceLocation)
    }

    /// The server's `callgate_connections_rejected_total` for `reason`.
    static func rejections(_ server: TestServer, reason: String) -> Int {
        let prefix = #"callgate_connections_rejected_total{reason=""# + reason + #""} "#
        let text = String(decoding: server.metrics.render(), as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            return Int(line.dropFirst(prefix.count)) ?? -1
        }
        return 0
    }

    static func useTLS(_ tls: ServerTLSConfiguration) -> (inout ServerConfiguration) -> Void {
        { $0.tls = tls }
    }

    // MARK: - Sessions over TLS

    /// By the address (checked against the certificate's IP SAN, no SNI) and by name (DNS SAN and SNI).
    @Test(arguments: [nil, "localhost"])
    func aClientTrustingTheTestCAAuthorizesOverTLS(serverName: String?) async throws {
        let tls = try TLSFixtures.server()
        try await withTestServer(configure: Self.useTLS(tls)) { server in
            let client = try await server.connect(tls: TLSFixtures.client(serverName: serverName))
            defer { Task { await client.close() } }
            #expect(client.session.role == .admin)
            #expect(client.session.organizationName == "Test Org")
            try await Self.seed(client)
            try await Self.expectAllow(client)
            let stats = try await client.stats(Wire.StatsRequest())
            #expect(stats.allows == 1)
        }
    }

    @Test func aClientTrustingAnotherCAIsRefusedWithoutASession() async throws {
        let tls = try TLSFixtures.server()
        try await withTestServer(configure: Self.useTLS(tls)) { server in
            await Self.expectConnectFailure(containing: "certificate did not verify against the CA in") {
                try await server.connect(tls: TLSFixtures.client(ca: "other-ca.pem"))
            }
            try await Self.expectMetric(server, #"callgate_connections_rejected_total{reason="tls"} 1"#)
            // No hello was ever read.
            #expect(!String(decoding: server.metrics.render(), as: UTF8.self).contains(#"method="hello""#))

            let good = try await Self.connectTLS(server)
            defer { Task { await good.close() } }
            try await Self.seed(good)
            try await Self.expectAllow(good)
        }
    }

    @Test func aPlaintextClientIsCutOffAndTLSClientsGoOn() async throws {
        let tls = try TLSFixtures.server()
        try await withTestServer(configure: Self.useTLS(tls)) { server in
            let good = try await Self.connectTLS(server)
            defer { Task { await good.close() } }
            try await Self.seed(good)

            let raw = try RawConnection(port: server.port)
            raw.send(RawConnection.frame(ProtocolAbuseTests.helloRequest(key: server.adminKey)))
            let received = try #require(raw.readUntilClosed(), "the server left the plaintext connection open")
            // At most a TLS alert record (content type 21), never a Callgate response.
            #expect(received.isEmpty || received[0] == 21, "\(received)")
            try await Self.expectMetric(server, #"callgate_connections_rejected_total{reason="tls"} 1"#)

            try await Self.expectAllow(good)
        }
    }

    /// What a connection that never completes a handshake sends.
    enum Stall: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// Nothing at all.
        case silent
        /// A TLS record header announcing a ClientHello whose body never comes.
        case partialClientHello

        var testDescription: String { self.rawValue }

        var bytes: [UInt8] {
            switch self {
            case .silent: return []
            case .partialClientHello: return [0x16, 0x03, 0x01, 0x01, 0x00]
            }
        }
    }

    @Test(arguments: Stall.allCases)
    func aConnectionWithoutAHandshakeIsClosedByTheHelloTimeout(stall: Stall) async throws {
        let tls = try TLSFixtures.server()
        let configure: (inout ServerConfiguration) -> Void = {
            $0.tls = tls
            $0.helloTimeout = .milliseconds(800)
        }
        try await withTestServer(configure: configure) { server in
            // The handshake and hello must fit in 800 ms: a loaded machine may need another try, and
            // each failed try is itself counted as a rejection, so the counts below are differences.
            let good = try await Self.connectTLS(server, attempts: 20)
            defer { Task { await good.close() } }
            try await Self.seed(good)
            let tlsBefore = Self.rejections(server, reason: "tls")
            let authBefore = Self.rejections(server, reason: "auth")

            let started = ContinuousClock.now
            let raw = try RawConnection(port: server.port)
            if !stall.bytes.isEmpty { raw.send(stall.bytes) }
            let received = raw.readUntilClosed()
            let elapsed = ContinuousClock.now - started
            // Closed (not left open until the idle timeout), with nothing sent, after the hello timeout.
            #expect(received == [], "\(String(describing: received))")
            #expect(elapsed >= .milliseconds(750), "closed after \(elapsed)")
            #expect(elapsed < .seconds(5), "closed after \(elapsed)")
            try await Self.expectMetric(
                server,
                #"callgate_connections_rejected_total{reason="tls"} "# + "\(tlsBefore + 1)\n"
            )
            #expect(Self.rejections(server, reason: "auth") == authBefore)

            try await Self.expectAllow(good)
        }
    }

    @Test func mutualTLSRequiresAClientCertificateFromTheClientCA() async throws {
        let tls = try TLSFixtures.server(clientCA: "ca.pem")
        #expect(tls.requiresClientCertificates)
        try await withTestServer(configure: Self.useTLS(tls)) { server in
            await Self.expectConnectFailure(containing: "TLS") {
                try await server.connect(tls: TLSFixtures.client())
            }
            var withCertificate = TLSFixtures.client()
            withCertificate.certificateFile = TLSFixtures.path("client.pem")
            withCertificate.privateKeyFile = TLSFixtures.path("client.key")
            let client = try await server.connect(tls: withCertificate)
            defer { Task { await client.close() } }
            try await Self.seed(client)
            try await Self.expectAllow(client)
        }
    }

    @Test func aTLSClientToAPlaintextServerSaysSo() async throws {
        try await withTestServer { server in
            await Self.expectConnectFailure(containing: "did not answer in TLS") {
                try await server.connect(tls: TLSFixtures.client())
            }
        }
    }

    @Test func aPlaintextClientToATLSServerSaysSo() async throws {
        let tls = try TLSFixtures.server()
        try await withTestServer(configure: Self.useTLS(tls)) { server in
            await Self.expectConnectFailure(containing: "the server answered in TLS") {
                try await server.connect()
            }
        }
    }

    @Test func theClientChecksItsTLSFilesBeforeConnecting() async throws {
        await Self.expectConnectFailure(containing: "cannot read the TLS CA file /nonexistent/ca.pem") {
            var configuration = CallgateClientConfiguration(port: 1, apiKey: "cgk_x")
            configuration.tls = .init(trustRoots: .certificateFile("/nonexistent/ca.pem"))
            return try await CallgateClient.connect(configuration)
        }
        await Self.expectConnectFailure(containing: "does not hold a valid PEM certificate") {
            var configuration = CallgateClientConfiguration(port: 1, apiKey: "cgk_x")
            configuration.tls = .init(trustRoots: .certificateFile(TLSFixtures.path("server.key")))
            return try await CallgateClient.connect(configuration)
        }
    }

    // MARK: - Loading the server's files

    /// A broken server setting and what the error must say.
    enum BadSetting: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case certificateWithoutKey
        case keyWithoutCertificate
        case clientCAWithoutCertificate
        case missingCertificate
        case certificateIsADirectory
        case garbageCertificate
        case keyGivenAsCertificate
        case missingKey
        case garbageKey
        case certificateGivenAsKey
        case keyOfAnotherCertificate
        case garbageClientCA

        var testDescription: String { self.rawValue }

        /// Certificate, key and client CA paths; `garbage` is a file of non-PEM bytes.
        func paths(garbage: String) -> (String?, String?, String?) {
            let certificate = TLSFixtures.path("server.pem")
            let key = TLSFixtures.path("server.key")
            switch self {
            case .certificateWithoutKey: return (certificate, nil, nil)
            case .keyWithoutCertificate: return (nil, key, nil)
            case .clientCAWithoutCertificate: return (nil, nil, TLSFixtures.path("ca.pem"))
            case .missingCertificate: return (TLSFixtures.path("missing.pem"), key, nil)
            case .certificateIsADirectory: return (TLSFixtures.directory, key, nil)
            case .garbageCertificate: return (garbage, key, nil)
            case .keyGivenAsCertificate: return (key, key, nil)
            case .missingKey: return (certificate, TLSFixtures.path("missing.key"), nil)
            case .garbageKey: return (certificate, garbage, nil)
            case .certificateGivenAsKey: return (certificate, certificate, nil)
            case .keyOfAnotherCertificate: return (certificate, TLSFixtures.path("client.key"), nil)
            case .garbageClientCA: return (certificate, key, garbage)
            }
        }

        /// Words the error must contain (besides the file's path, where one is at fault).
        var expected: String {
            switch self {
            case .certificateWithoutKey: return "give --tls-private-key"
            case .keyWithoutCertificate: return "give --tls-certificate"
            case .clientCAWithoutCertificate: return "needs TLS on"
            case .missingCertificate: return "cannot read the TLS certificate file"
            case .certificateIsADirectory: return "Is a directory"
            case .garbageCertificate: return "is not PEM"
            case .keyGivenAsCertificate: return "does not hold a valid PEM certificate"
            case .missingKey: return "No such file or directory"
            case .garbageKey: return "TLS private key file"
            case .certificateGivenAsKey: return "does not hold a usable PEM private key"
            case .keyOfAnotherCertificate: return "does not belong to the certificate"
            case .garbageClientCA: return "TLS client CA file"
            }
        }
    }

    @Test(arguments: BadSetting.allCases)
    func aBadTLSSettingStopsTheServerWithAClearError(setting: BadSetting) async throws {
        try await withTemporaryDirectory { directory in
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let garbage = directory + "/garbage.pem"
            try Data("this is not a certificate\n".utf8).write(to: URL(fileURLWithPath: garbage))
            let (certificate, key, clientCA) = setting.paths(garbage: garbage)
            let result = Result { () throws(ServerTLSConfigurationError) in
                try ServerTLSConfiguration.load(
                    certificatePath: certificate,
                    privateKeyPath: key,
                    clientCAPath: clientCA
                )
            }
            guard case .failure(let error) = result else {
                Issue.record("loaded \(result)")
                return
            }
            #expect(error.message.contains(setting.expected), "\(error)")
            if [.garbageCertificate, .garbageKey, .garbageClientCA].contains(setting) {
                #expect(error.message.contains(garbage), "\(error)")
            }
        }
    }

    @Test func neitherCertificateNorKeyMeansPlainTCP() throws {
        #expect(try ServerTLSConfiguration.load(certificatePath: nil, privateKeyPath: nil) == nil)
        let tls = try #require(
            try ServerTLSConfiguration.load(
                certificatePath: TLSFixtures.path("server.pem"),
                privateKeyPath: TLSFixtures.path("server.key")
            )
        )
        #expect(!tls.requiresClientCertificates)
        // The fixtures are valid for 100 years from 2026.
        #expect(tls.certificateNotValidAfter > 4_000_000_000)
    }
}
