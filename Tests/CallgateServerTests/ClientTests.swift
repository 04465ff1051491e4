import CallgateClient
import CallgateWire
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// What the fake server saw, readable from the tests.
private final class FakeServerStats: Sendable {
    /// Reads that carried more than one request, answered in reverse order.
    let reorderedBatches = Atomic<Int>(0)
    /// Requests left unanswered on purpose (agent ids starting with `silent`).
    let silentRequests = Atomic<Int>(0)
}

/// A stand-in for `callgated`, independent of the real server: answers `hello` (key `good`), and echoes
/// AuthorizeCall with the agent id as the caller ID. The requests that arrive in one read are answered
/// together, in reverse order of arrival. Some agent ids ask for misbehaviour (see `authorize`).
private final class FakeServerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let stats: FakeServerStats
    private var batch: [Wire.Response] = []

    init(stats: FakeServerStats) {
        self.stats = stats
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let request = try? Wire.Request.decode(self.unwrapInboundIn(data)) else {
            self.answerAndClose(context: context, .error(0, .invalidArgument, "malformed request"))
            return
        }
        switch request.method {
        case .hello(let hello):
            switch hello.apiKey {
            case "good":
                let session = Wire.HelloResponse(
                    protocolVersion: 1,
                    organizationID: 7,
                    organizationName: "Fake Dialing",
                    role: .admin,
                    agentID: hello.clientName,
                    maxFrameBytes: 4096
                )
                self.send(context: context, Wire.Response(requestID: request.requestID, result: .hello(session)))
                context.flush()
            case "bad-zero":
                self.answerAndClose(context: context, .error(0, .unauthenticated, "unknown API key"))
            default:
                self.answerAndClose(context: context, .error(request.requestID, .unauthenticated, "unknown API key"))
            }
        case .authorizeCall(let authorize):
            self.authorize(context: context, id: request.requestID, authorize)
        default:
            self.send(context: context, .error(request.requestID, .unimplemented, "fake"))
            context.flush()
        }
    }

    private func authorize(context: ChannelHandlerContext, id: UInt64, _ request: Wire.AuthorizeCallRequest) {
        let echo = Wire.Response(
            requestID: id,
            result: .authorizeCall(Wire.AuthorizeCallResponse(verdict: .allow, callerID: request.agentID))
        )
        switch request.agentID {
        case let agent where agent.hasPrefix("silent"):
            self.stats.silentRequests.wrappingAdd(1, ordering: .relaxed)
        case "late":
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(300)) {
                self.send(context: context, echo)
                context.flush()
            }
        case "denied":
            self.batch.append(.error(id, .permissionDenied, "not your number"))
        case "wrong":
            self.batch.append(Wire.Response(requestID: id, result: .stats(Wire.StatsResponse())))
        case "big":
            var big = echo
            big.result = .authorizeCall(Wire.AuthorizeCallResponse(callerID: String(repeating: "9", count: 500)))
            self.batch.append(big)
        case "goodbye":
            self.answerAndClose(context: context, .error(0, .unavailable, "server shutting down"))
        default:
            self.batch.append(echo)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard !self.batch.isEmpty else { return }
        if self.batch.count > 1 { self.stats.reorderedBatches.wrappingAdd(1, ordering: .relaxed) }
        for response in self.batch.reversed() { self.send(context: context, response) }
        self.batch = []
        context.flush()
    }

    private func send(context: ChannelHandlerContext, _ response: Wire.Response) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        response.encodeFrame(into: &buffer)
        context.write(self.wrapOutboundOut(buffer), promise: nil)
    }

    private func answerAndClose(context: ChannelHandlerContext, _ response: Wire.Response) {
        var buffer = context.channel.allocator.buffer(capacity: 64)
        response.encodeFrame(into: &buffer)
        context.writeAndFlush(self.wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

private struct FakeServer: Sendable {
    let channel: any Channel
    let port: Int
    let stats: FakeServerStats

    static func start() async throws -> FakeServer {
        let stats = FakeServerStats()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(FakeServerHandler(stats: stats))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return FakeServer(channel: channel, port: try #require(channel.localAddress?.port), stats: stats)
    }

    func configuration(key: String = "good") -> CallgateClientConfiguration {
        var configuration = CallgateClientConfiguration(port: self.port, apiKey: key, clientName: "client-tests")
        configuration.requestTimeout = .seconds(20)
        // Under the thread sanitizer, next to other suites on two cores, a hello can take seconds.
        configuration.connectTimeout = .seconds(30)
        return configuration
    }

    func stop() async {
        try? await self.channel.close()
    }

    /// Waits until the server has seen `count` silent requests.
    func waitForSilentRequests(_ count: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while self.stats.silentRequests.load(ordering: .relaxed) < count {
            guard ContinuousClock.now < deadline else {
                Issue.record("the server saw only \(self.stats.silentRequests.load(ordering: .relaxed)) requests")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// Runs `body` and returns the error it threw (recording an issue when it returned).
private func failure(
    _ body: () async throws -> Void,
    sourceLocation: SourceLocation = #_sourceLocation
) async -> CallgateClientError? {
    do {
        try await body()
        Issue.record("expected an error", sourceLocation: sourceLocation)
        return nil
    } catch let error as CallgateClientError {
        return error
    } catch {
        Issue.record("expected a CallgateClientError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

private func authorize(agent: String) -> Wire.AuthorizeCallRequest {
    Wire.AuthorizeCallRequest(agentID: agent, destination: "+14155550199")
}

@Suite struct ClientTests {
    @Test func connectsAndSaysHello() async throws {
        let server = try await FakeServer.start()
        let client = try await CallgateClient.connect(server.configuration())
        #expect(client.session.organizationName == "Fake Dialing")
        #expect(client.session.role == .admin)
        #expect(client.session.agentID == "client-tests")
        let answer = try await client.authorizeCall(authorize(agent: "agent-7"))
        #expect(answer.callerID == "agent-7")
        #expect(answer.verdict == .allow)
        await client.close()
        await server.stop()
    }

    @Test(arguments: ["bad", "bad-zero"])
    func refusedKeyIsUnauthenticated(_ key: String) async throws {
        let server = try await FakeServer.start()
        let error = await failure { _ = try await CallgateClient.connect(server.configuration(key: key)) }
        #expect(error?.kind == .status(.unauthenticated))
        #expect(error?.statusCode == .unauthenticated)
        #expect(error?.message == "unknown API key")
        #expect(error?.description == "UNAUTHENTICATED: unknown API key")
        await server.stop()
    }

    @Test func unreachableServerIsConnectFailed() async throws {
        let server = try await FakeServer.start()
        let configuration = server.configuration()
        await server.stop()
        let error = await failure { _ = try await CallgateClient.connect(configuration) }
        #expect(error?.kind == .connectFailed)
    }

    /// 2,000 tasks share one connection; the server answers each read's requests in reverse order, so
    /// only matching by request id gives every task its own answer.
    @Test func matchesResponsesByRequestID() async throws {
        let server = try await FakeServer.start()
        let client = try await CallgateClient.connect(server.configuration())
        let matched = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<2000 {
                group.addTask {
                    let agent = "agent-\(index)"
                    guard let answer = try? await client.authorizeCall(authorize(agent: agent)) else { return false }
                    return answer.callerID == agent
                }
            }
            var matched = 0
            for await ok in group where ok { matched += 1 }
            return matched
        }
        #expect(matched == 2000)
        #expect(server.stats.reorderedBatches.load(ordering: .relaxed) > 0)
        await client.close()
        await server.stop()
    }

    @Test func serverErrorsAndWrongResults() async throws {
        let server = try await FakeServer.start()
        let client = try await CallgateClient.connect(server.configuration())
        let denied = await failure { _ = try await client.authorizeCall(authorize(agent: "denied")) }
        #expect(denied?.kind == .status(.permissionDenied))
        #expect(denied?.message == "not your number")
        let wrong = await failure { _ = try await client.authorizeCall(authorize(agent: "wrong")) }
        #expect(wrong?.kind == .protocolViolation)
        // Neither closed the connection.
        #expect(try await client.authorizeCall(authorize(agent: "after")).callerID == "after")
        let stats = await failure { _ = try await client.stats(Wire.StatsRequest()) }
        #expect(stats?.kind == .status(.unimplemented))
        await client.close()
        await server.stop()
    }

    @Test func timeoutFailsOnlyThatRequest() async throws {
        let server = try await FakeServer.start()
        let client = try await CallgateClient.connect(server.configuration())
        let started = ContinuousClock.now
        let silent = await failure {
            _ = try await client.authorizeCall(authorize(agent: "silent"), timeout: .milliseconds(100))
        }
        #expect(silent?.kind == .timeout)
        // Timed out, not answered late: the fake never answers "silent". Loose for a loaded machine.
        #expect(ContinuousClock.now - started < .seconds(30))
        // The late answer (after 300 ms) arrives after its request timed out, and is dropped.
        let late = await failure {
            _ = try await client.send(.authorizeCall(authorize(agent: "late")), timeout: .milliseconds(50))
        }
        #expect(late?.kind == .timeout)
        try await Task.sleep(for: .milliseconds(400))
        #expect(try await client.authorizeCall(authorize(agent: "agent-1")).callerID == "agent-1")
        await client.close()
        await server.stop()
    }

    @Test func serverCloseFailsEveryPendingRequest() async throws {
        let server = try await FakeServer.start()
        let client = try await CallgateClient.connect(server.configuration())
        try await withThrowingTaskGroup(of: CallgateClientError?.self) { group in
            for index in 0..<10 {
                group.addTask {
                    await failure { _ = try await client.authorizeCall(authorize(agent: "silent-\(index)")) }
                }
            }
            try await server.waitForSilentRequests(10)
            let goodbye = await failure { _ = try await client.authorizeCall(authorize(agent: "goodbye")) }
            #expect(goodbye?.kind == .connectionClosed)
            #expect(goodbye?.message.contains("server shutting down") == true)
            for try await error in group {
                #expect(error?.kind == .connectionClosed)
                #expect(error?.message.contains("UNAVAILABLE: server shutting down") == true)
            }
        }
        let after = await failure { _ = try await client.authorizeCall(authorize(agent: "after")) }
        #expect(after?.kind == .connectionClosed)
        await client.close()
        await server.stop()
    }

    @Test func closeFailsEveryPendingRequest() async throws {
        let server = try await FakeServer.start()
        let client = try await CallgateClient.connect(server.configuration())
        try await withThrowingTaskGroup(of: CallgateClientError?.self) { group in
            for index in 0..<5 {
                group.addTask {
                    await failure { _ = try await client.authorizeCall(authorize(agent: "silent-\(index)")) }
                }
            }
            try await server.waitForSilentRequests(5)
            await client.close()
            for try await error in group { #expect(error?.kind == .connectionClosed) }
        }
        let after = await failure { _ = try await client.authorizeCall(authorize(agent: "after")) }
        #expect(after?.kind == .connectionClosed)
        await client.close()
        await server.stop()
    }

    @Test func oversizedResponseIsAProtocolViolation() async throws {
        let server = try await FakeServer.start()
        var configuration = server.configuration()
        configuration.maximumFrameBytes = 256
        let client = try await CallgateClient.connect(configuration)
        let error = await failure { _ = try await client.authorizeCall(authorize(agent: "big")) }
        #expect(error?.kind == .protocolViolation)
        await client.close()
        await server.stop()
    }

    @Test func oversizedRequestFailsBeforeSending() async throws {
        let server = try await FakeServer.start()
        let client = try await CallgateClient.connect(server.configuration())
        // The fake server accepts 4,096-byte frames.
        let csv = String(repeating: "+12025550123,acme,US\n", count: 400)
        let error = await failure { _ = try await client.importNumbers(Wire.ImportNumbersRequest(csv: csv)) }
        #expect(error?.kind == .protocolViolation)
        #expect(try await client.authorizeCall(authorize(agent: "still-open")).callerID == "still-open")
        await client.close()
        await server.stop()
    }
}
