public import CallgateWire
import NIOCore
import NIOPosix
import Synchronization

/// An async client of `callgated`: one TCP connection, shared by any number of concurrent tasks.
///
/// Requests are pipelined: each ``send(_:timeout:)`` writes its frame at once (frames written in the same
/// event-loop tick share one flush) and waits for the response carrying its request id, whatever order
/// the server answers in.
///
/// ```swift
/// let client = try await CallgateClient.connect(.init(apiKey: key))
/// let decision = try await client.authorizeCall(.init(agentID: "agent-7", destination: "+14155550199"))
/// await client.close()
/// ```
public final class CallgateClient: Sendable {
    /// The server's answer to `hello`: organization, role, agent, maximum frame size.
    public let session: Wire.HelloResponse
    public let configuration: CallgateClientConfiguration

    private let channel: any Channel
    private let handler: NIOLoopBound<ClientHandler>
    /// The next request id; ids start at 1 (0 is the server's "no request" id).
    private let nextRequestID: Atomic<UInt64>

    private init(
        configuration: CallgateClientConfiguration,
        channel: any Channel,
        handler: NIOLoopBound<ClientHandler>,
        session: Wire.HelloResponse,
        nextRequestID: UInt64
    ) {
        self.configuration = configuration
        self.channel = channel
        self.handler = handler
        self.session = session
        self.nextRequestID = Atomic(nextRequestID)
    }

    deinit {
        self.channel.close(promise: nil)
    }

    /// Connects and says `hello` (protocol version 1, the API key, the client name).
    ///
    /// A refused key throws `.status(.unauthenticated)`; an unreachable server, an unusable TLS file or a
    /// failed TLS handshake (a server certificate that does not verify, a server without TLS) `.connectFailed`.
    /// ``CallgateClientConfiguration/connectTimeout`` bounds the TCP connect and, separately, the TLS
    /// handshake and hello together.
    public static func connect(
        _ configuration: CallgateClientConfiguration
    ) async throws(CallgateClientError) -> CallgateClient {
        let maximumFrameBytes = configuration.maximumFrameBytes
        let tls: ClientTLSContext?
        do {
            tls = try configuration.tls.map { tls throws(CallgateClientError) in
                try ClientTLSContext(tls, host: configuration.host)
            }
        } catch {
            throw CallgateClientError(
                kind: .connectFailed,
                message: "TLS to \(configuration.host):\(configuration.port): \(error.message)"
            )
        }
        let connection: Connection
        do {
            connection = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(TimeAmount(configuration.connectTimeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = ClientHandler(tls: tls)
                        // The hello is written at once; TLS holds it until the handshake is done.
                        try tls?.addHandler(to: channel.pipeline.syncOperations)
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(FrameDecoder(maximumFrameBytes: maximumFrameBytes))
                        )
                        try channel.pipeline.syncOperations.addHandler(handler)
                        return Connection(
                            channel: channel,
                            handler: NIOLoopBound(handler, eventLoop: channel.eventLoop)
                        )
                    }
                }
        } catch {
            throw CallgateClientError(
                kind: .connectFailed,
                message: "could not connect to \(configuration.host):\(configuration.port): \(error)"
            )
        }

        let hello = Wire.HelloRequest(
            protocolVersion: Wire.protocolVersion,
            apiKey: configuration.apiKey,
            clientName: configuration.clientName
        )
        let result: Wire.Response.Result
        do {
            result = try await Self.perform(
                .hello(hello),
                id: 1,
                timeout: configuration.connectTimeout,
                maximumFrameBytes: nil,
                on: connection
            )
        } catch {
            connection.channel.close(promise: nil)
            if error.kind == .connectFailed {
                throw CallgateClientError(
                    kind: .connectFailed,
                    message: "could not connect to \(configuration.host):\(configuration.port): \(error.message)"
                )
            }
            throw error
        }
        guard case .hello(let session) = result else {
            connection.channel.close(promise: nil)
            throw CallgateClientError(
                kind: .protocolViolation,
                message: "the server answered hello with \(result.name)"
            )
        }
        return CallgateClient(
            configuration: configuration,
            channel: connection.channel,
            handler: connection.handler,
            session: session,
            nextRequestID: 2
        )
    }

    /// Sends one request (the client picks its request id) and waits for its response.
    ///
    /// An `error` result throws `.status(code)` with the server's message. `timeout` (default
    /// ``CallgateClientConfiguration/requestTimeout``) fails this request only; its late response is dropped.
    /// Task cancellation is not observed: the call ends with the response, the timeout, or the connection.
    public func send(
        _ method: Wire.Request.Method,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.Response.Result {
        let id = self.nextRequestID.wrappingAdd(1, ordering: .relaxed).oldValue
        let maximum = self.session.maxFrameBytes
        return try await Self.perform(
            method,
            id: id,
            timeout: timeout ?? self.configuration.requestTimeout,
            maximumFrameBytes: maximum == 0 ? nil : Int(maximum),
            on: Connection(channel: self.channel, handler: self.handler)
        )
    }

    /// Closes the connection; pending requests fail with `.connectionClosed`, and so do later ones.
    public func close() async {
        let handler = self.handler
        let closed = self.channel.eventLoop.flatSubmit {
            handler.value.closeByClient() ?? handler.eventLoop.makeSucceededVoidFuture()
        }
        try? await closed.get()
    }

    // MARK: -

    private struct Connection: Sendable {
        var channel: any Channel
        var handler: NIOLoopBound<ClientHandler>
    }

    private static func perform(
        _ method: Wire.Request.Method,
        id: UInt64,
        timeout: Duration,
        maximumFrameBytes: Int?,
        on connection: Connection
    ) async throws(CallgateClientError) -> Wire.Response.Result {
        // Encoded on the caller's thread, so that many tasks encode in parallel.
        var buffer = ByteBufferAllocator().buffer(capacity: 128)
        Wire.Request(requestID: id, method: method).encodeFrame(into: &buffer)
        let frame = buffer
        let bodyBytes = frame.readableBytes - Wire.lengthPrefixSize
        if let maximumFrameBytes, bodyBytes > maximumFrameBytes {
            throw CallgateClientError(
                kind: .protocolViolation,
                message:
                    "the \(method.name) request is \(bodyBytes) bytes; the server accepts at most \(maximumFrameBytes)"
            )
        }
        let eventLoop = connection.channel.eventLoop
        let promise = eventLoop.makePromise(of: Wire.Response.self)
        let handler = connection.handler
        let methodName = method.name
        let timeAmount = TimeAmount(timeout)
        eventLoop.execute {
            handler.value.enqueue(
                id: id,
                methodName: methodName,
                frame: frame,
                timeout: timeAmount,
                promise: promise
            )
        }
        let response: Wire.Response
        do {
            response = try await promise.futureResult.get()
        } catch let error as CallgateClientError {
            throw error
        } catch {
            throw CallgateClientError(kind: .connectionClosed, message: "\(error)")
        }
        switch response.result {
        case .error(let status):
            throw CallgateClientError.status(status)
        case .some(let result):
            return result
        case nil:
            throw CallgateClientError(
                kind: .protocolViolation,
                message: "the server answered \(method.name) (request \(id)) without a result"
            )
        }
    }

    /// Sends `method` and takes the one result case it must be answered with.
    func sendExpecting<Result>(
        _ method: Wire.Request.Method,
        timeout: Duration?,
        _ extract: (Wire.Response.Result) -> Result?
    ) async throws(CallgateClientError) -> Result {
        let result = try await self.send(method, timeout: timeout)
        guard let value = extract(result) else {
            throw CallgateClientError(
                kind: .protocolViolation,
                message: "the server answered \(method.name) with \(result.name)"
            )
        }
        return value
    }
}
