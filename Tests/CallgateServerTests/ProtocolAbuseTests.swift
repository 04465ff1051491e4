import CallgateClient
import CallgateCore
import CallgateServer
import CallgateStore
import CallgateWire
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Clients that break the protocol get one clear error and a closed connection; the others never notice.
@Suite("Protocol abuse over raw sockets")
struct ProtocolAbuseTests {
    /// Ways to break the protocol, each answered with one error and a close.
    enum Abuse: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case garbageBeforeHello
        case garbageAfterHello
        case lengthPrefixAllOnes
        case frameOverTheConfiguredMaximum
        case requestBeforeHello
        case helloWithABadKey
        case helloWithProtocolVersion2

        var testDescription: String { self.rawValue }

        /// The configured maximum frame size of the server under test.
        static let maximumFrameBytes = 1024

        /// Whether the connection says a proper hello first.
        var authenticatesFirst: Bool { self == .garbageAfterHello }

        /// A frame body that no protobuf decoder accepts: a tag varint that never ends.
        static let garbage = [UInt8](repeating: 0xFF, count: 16)

        func bytes(adminKey: String) -> [UInt8] {
            switch self {
            case .garbageBeforeHello, .garbageAfterHello:
                return RawConnection.prefix(Self.garbage.count) + Self.garbage
            case .lengthPrefixAllOnes:
                // The prefix alone: the server must answer without waiting for 4 GiB of body.
                return [0xFF, 0xFF, 0xFF, 0xFF]
            case .frameOverTheConfiguredMaximum:
                // A well-formed hello, just too long.
                let hello = Wire.Request(
                    requestID: 3,
                    method: .hello(
                        Wire.HelloRequest(
                            protocolVersion: 1,
                            apiKey: adminKey,
                            clientName: String(repeating: "x", count: 2 * Self.maximumFrameBytes)
                        )
                    )
                ).serialized()
                precondition(hello.count > Self.maximumFrameBytes)
                return RawConnection.prefix(hello.count) + hello
            case .requestBeforeHello:
                return RawConnection.frame(Wire.Request(requestID: 7, method: .stats(Wire.StatsRequest())))
            case .helloWithABadKey:
                return RawConnection.frame(
                    Wire.Request(
                        requestID: 3,
                        method: .hello(Wire.HelloRequest(protocolVersion: 1, apiKey: "cgk_0000000000000000_nope"))
                    )
                )
            case .helloWithProtocolVersion2:
                return RawConnection.frame(
                    Wire.Request(requestID: 3, method: .hello(Wire.HelloRequest(protocolVersion: 2, apiKey: adminKey)))
                )
            }
        }

        var expectedCode: Wire.StatusCode {
            switch self {
            case .garbageBeforeHello, .garbageAfterHello: .invalidArgument
            case .lengthPrefixAllOnes, .frameOverTheConfiguredMaximum: .resourceExhausted
            case .requestBeforeHello, .helloWithABadKey: .unauthenticated
            case .helloWithProtocolVersion2: .failedPrecondition
            }
        }

        /// The request id of the error: the request's when the server could read it, else 0.
        var expectedRequestID: UInt64 {
            switch self {
            case .garbageBeforeHello, .garbageAfterHello, .lengthPrefixAllOnes, .frameOverTheConfiguredMaximum: 0
            case .requestBeforeHello: 7
            case .helloWithABadKey, .helloWithProtocolVersion2: 3
            }
        }
    }

    static let destination = "+12025550123"

    /// A client that follows the rules: agent `good` with one number and a generous limit.
    static func wellBehavedClient(_ server: TestServer) async throws -> CallgateClient {
        // Under a short hello timeout a loaded machine may miss even a prompt hello: connect again then.
        var connected: CallgateClient?
        for _ in 0..<20 where connected == nil {
            connected = try? await server.connect(name: "well-behaved")
        }
        let client = try #require(connected)
        _ = try await client.addNumber(Wire.AddNumberRequest(number: "+14155550100", provider: "telnyx"))
        _ = try await client.upsertAgent(Wire.UpsertAgentRequest(id: "good"))
        _ = try await client.assign(
            Wire.AssignRequest(number: "+14155550100", agentID: "good", terms: Wire.AssignmentTerms(dailyLimit: 1000))
        )
        try await Self.expectAllow(client)
        return client
    }

    static func expectAllow(_ client: CallgateClient, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let answer = try await client.authorizeCall(
            Wire.AuthorizeCallRequest(agentID: "good", destination: Self.destination)
        )
        #expect(answer.verdict == .allow, sourceLocation: sourceLocation)
    }

    /// A hello with request id 1.
    static func helloRequest(key: String) -> Wire.Request {
        Wire.Request(requestID: 1, method: .hello(Wire.HelloRequest(protocolVersion: 1, apiKey: key)))
    }

    /// Says hello with the admin key and expects the session.
    static func hello(_ raw: RawConnection, key: String, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        raw.send(Self.helloRequest(key: key))
        let response = raw.receive()
        guard case .hello(let session)? = response?.result else {
            Issue.record("hello answered \(String(describing: response))", sourceLocation: sourceLocation)
            return false
        }
        #expect(response?.requestID == 1, sourceLocation: sourceLocation)
        #expect(session.role == .admin, sourceLocation: sourceLocation)
        return true
    }

    /// Expects exactly one error response, then the end of the stream.
    static func expectErrorThenClose(
        _ raw: RawConnection,
        _ code: Wire.StatusCode,
        requestID: UInt64 = 0,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let response = raw.receive()
        #expect(response?.requestID == requestID, "\(String(describing: response))", sourceLocation: sourceLocation)
        #expect(response?.result?.statusCode == code, "\(String(describing: response))", sourceLocation: sourceLocation)
        #expect(raw.isClosedByPeer(), "the server left the connection open", sourceLocation: sourceLocation)
    }

    @Test(arguments: Abuse.allCases)
    func abuseGetsOneErrorAndAClose(abuse: Abuse) async throws {
        let configure: (inout ServerConfiguration) -> Void = { $0.maximumFrameBytes = Abuse.maximumFrameBytes }
        try await withTestServer(configure: configure) { server in
            let good = try await Self.wellBehavedClient(server)
            defer { Task { await good.close() } }

            let raw = try RawConnection(port: server.port)
            if abuse.authenticatesFirst { #expect(Self.hello(raw, key: server.adminKey)) }
            raw.send(abuse.bytes(adminKey: server.adminKey))
            Self.expectErrorThenClose(raw, abuse.expectedCode, requestID: abuse.expectedRequestID)

            // The other connection did not notice.
            try await Self.expectAllow(good)
            let stats = try await good.stats(Wire.StatsRequest())
            #expect(stats.allows == 2)
        }
    }

    @Test func theConnectionLimitRefusesTheThirdAndAdmitsAgainAfterAClose() async throws {
        let configure: (inout ServerConfiguration) -> Void = { $0.maximumConnections = 2 }
        try await withTestServer(configure: configure) { server in
            let good = try await Self.wellBehavedClient(server)
            defer { Task { await good.close() } }
            var second: RawConnection? = try RawConnection(port: server.port)
            #expect(Self.hello(try #require(second), key: server.adminKey))

            let third = try RawConnection(port: server.port)
            Self.expectErrorThenClose(third, .resourceExhausted)
            try await Self.expectAllow(good)

            // Closing one makes room. The server learns of the close asynchronously: retry until admitted.
            second = nil
            var admitted = false
            for _ in 0..<200 where !admitted {
                let next = try RawConnection(port: server.port)
                next.send(Self.helloRequest(key: server.adminKey))
                let response = next.receive()
                switch response?.result {
                case .hello?:
                    admitted = true
                    #expect(response?.requestID == 1)
                case .error(let status)?:
                    #expect(status.code == .resourceExhausted)
                    #expect(next.isClosedByPeer())
                    try await Task.sleep(for: .milliseconds(25))
                default:
                    Issue.record("unexpected answer \(String(describing: response))")
                    return
                }
            }
            #expect(admitted)
            try await Self.expectAllow(good)
        }
    }

    @Test func aSilentConnectionIsClosedAfterTheHelloTimeout() async throws {
        let configure: (inout ServerConfiguration) -> Void = { $0.helloTimeout = .milliseconds(200) }
        try await withTestServer(configure: configure) { server in
            let good = try await Self.wellBehavedClient(server)
            defer { Task { await good.close() } }
            let silent = try RawConnection(port: server.port)
            Self.expectErrorThenClose(silent, .unauthenticated)
            try await Self.expectAllow(good)
        }
    }

    @Test func anIdleAuthenticatedConnectionIsClosed() async throws {
        let configure: (inout ServerConfiguration) -> Void = { $0.idleTimeout = .milliseconds(300) }
        try await withTestServer(configure: configure) { server in
            // On a loaded machine even a prompt hello may come after 300 ms: then try again.
            var authenticated: RawConnection?
            for _ in 0..<20 where authenticated == nil {
                let raw = try RawConnection(port: server.port)
                raw.send(Self.helloRequest(key: server.adminKey))
                if case .hello? = raw.receive()?.result { authenticated = raw }
            }
            let idle = try #require(authenticated)
            // Nothing more is sent: the server says why (request id 0) and closes.
            let response = idle.receive()
            #expect(response?.requestID == 0)
            #expect(response.map { $0.result?.statusCode != .ok } == true, "\(String(describing: response))")
            #expect(idle.isClosedByPeer())
        }
    }
}
