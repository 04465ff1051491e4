import CallgateCore
package import Logging
package import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// A tiny HTTP/1.1 server for operators: `GET /metrics` (Prometheus text format) and `GET /health`
/// (`200 ok`, or `503 unavailable` while `health()` is false). Anything else is `404`. `HEAD` is
/// answered like `GET` without a body. Keep-alive connections idle for longer than `idleTimeout` are
/// closed; ``Running/stop()`` closes the listener and every open connection.
///
/// ```swift
/// let running = try await MetricsHTTPServer(port: 0, metrics: metrics, health: { true }, logger: logger)
///     .start(group: MultiThreadedEventLoopGroup.singleton)
/// print(running.boundPort)
/// await running.stop()
/// ```
package struct MetricsHTTPServer: Sendable {
    package var host: String
    package var port: Int
    package var idleTimeout: TimeAmount
    package let metrics: ServerMetrics
    package let health: @Sendable () -> Bool
    package var logger: Logger

    /// - Parameters:
    ///   - host: the address to bind; loopback by default (metrics are not for the internet).
    ///   - port: the port to bind; 0 picks a free one (see ``Running/boundPort``).
    package init(
        host: String = "127.0.0.1",
        port: Int,
        idleTimeout: TimeAmount = .seconds(30),
        metrics: ServerMetrics,
        health: @escaping @Sendable () -> Bool,
        logger: Logger
    ) {
        self.host = host
        self.port = port
        self.idleTimeout = idleTimeout
        self.metrics = metrics
        self.health = health
        self.logger = logger
    }

    /// A started server.
    package struct Running: Sendable {
        /// The port the listener is bound to (the chosen one when `port` was 0).
        package let boundPort: Int
        fileprivate let listener: any Channel
        fileprivate let connections: ConnectionSet
        private let logger: Logger

        fileprivate init(boundPort: Int, listener: any Channel, connections: ConnectionSet, logger: Logger) {
            self.boundPort = boundPort
            self.listener = listener
            self.connections = connections
            self.logger = logger
        }

        /// Stops accepting, closes every open connection and waits until the listener is closed.
        /// Calling it again does nothing.
        package func stop() async {
            try? await self.listener.close()
            for connection in self.connections.closeAll() {
                try? await connection.close()
            }
            self.logger.debug("metrics HTTP server stopped")
        }
    }

    /// Binds and starts serving on `group`.
    package func start(group: any EventLoopGroup) async throws -> Running {
        let connections = ConnectionSet()
        let metrics = self.metrics
        let health = self.health
        let idleTimeout = self.idleTimeout
        let listener = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                guard connections.insert(channel) else {
                    return channel.close()
                }
                return channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                    try pipeline.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try pipeline.addHandler(MetricsHTTPHandler(metrics: metrics, health: health))
                }
            }
            .bind(host: self.host, port: self.port)
            .get()
        guard let boundPort = listener.localAddress?.port else {
            try? await listener.close()
            throw ChannelError.unknownLocalAddress
        }
        self.logger.info(
            "metrics HTTP server listening",
            metadata: ["host": "\(self.host)", "port": "\(boundPort)"]
        )
        return Running(boundPort: boundPort, listener: listener, connections: connections, logger: self.logger)
    }

    /// This server as a ServiceLifecycle service: starts on `group`, reports the bound port to `onBound`,
    /// and stops at graceful shutdown (or cancellation).
    package func service(
        group: any EventLoopGroup,
        onBound: @escaping @Sendable (Int) -> Void = { _ in }
    ) -> MetricsHTTPService {
        MetricsHTTPService(server: self, group: group, onBound: onBound)
    }
}

/// ``MetricsHTTPServer`` run by a `ServiceGroup`.
package struct MetricsHTTPService: Service {
    let server: MetricsHTTPServer
    let group: any EventLoopGroup
    let onBound: @Sendable (Int) -> Void

    package func run() async throws {
        let running = try await self.server.start(group: self.group)
        self.onBound(running.boundPort)
        // Returns at graceful shutdown, or throws on cancellation: stop either way.
        try? await gracefulShutdown()
        await running.stop()
    }
}

/// The open connections, so that stopping closes keep-alive ones too.
private final class ConnectionSet: Sendable {
    private let state = Locked(State())

    private struct State {
        var open: [ObjectIdentifier: any Channel] = [:]
        var closed = false
    }

    /// Adds a new connection; `false` once the server is stopping.
    func insert(_ channel: any Channel) -> Bool {
        let added = self.state.withLock { state in
            if state.closed { return false }
            state.open[ObjectIdentifier(channel)] = channel
            return true
        }
        if added {
            channel.closeFuture.whenComplete { _ in
                _ = self.state.withLock { $0.open.removeValue(forKey: ObjectIdentifier(channel)) }
            }
        }
        return added
    }

    /// Refuses new connections and returns the open ones.
    func closeAll() -> [any Channel] {
        self.state.withLock { state in
            state.closed = true
            defer { state.open.removeAll() }
            return Array(state.open.values)
        }
    }
}

/// Answers one request at a time (the HTTP pipeline handler serialises pipelined requests).
private final class MetricsHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let metrics: ServerMetrics
    private let health: @Sendable () -> Bool
    private var head: HTTPRequestHead?

    init(metrics: ServerMetrics, health: @escaping @Sendable () -> Bool) {
        self.metrics = metrics
        self.health = health
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break  // Ignored: no route takes a body.
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            self.respond(to: head, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let isGet = request.method == .GET || request.method == .HEAD
        let status: HTTPResponseStatus
        let contentType: String
        let body: ByteBuffer
        switch (isGet, path) {
        case (true, "/metrics"):
            status = .ok
            contentType = "text/plain; version=0.0.4; charset=utf-8"
            body = context.channel.allocator.buffer(bytes: self.metrics.render())
        case (true, "/health"):
            let healthy = self.health()
            status = healthy ? .ok : .serviceUnavailable
            contentType = "text/plain; charset=utf-8"
            body = context.channel.allocator.buffer(string: healthy ? "ok\n" : "unavailable\n")
        default:
            status = .notFound
            contentType = "text/plain; charset=utf-8"
            body = context.channel.allocator.buffer(string: "not found\n")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Cache-Control", value: "no-store")
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            self.wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))),
            promise: nil
        )
        if request.method != .HEAD {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let written = context.writeAndFlush(self.wrapOutboundOut(.end(nil)))
        if !keepAlive {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
