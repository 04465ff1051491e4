import CallgateCore
public import CallgateStore
import CallgateWire
import Foundation
public import Logging
public import NIOCore
import NIOPosix
public import ServiceLifecycle

/// The `callgated` service: the client port (SwiftNIO) and the metrics port, over an opened ``Store``.
///
/// Run it in a `ServiceGroup`. On graceful shutdown it stops accepting, lets every connection finish
/// what it has read (replies included), closes them, and waits until the store's writer has committed
/// everything. Closing the store is left to the owner.
public final class CallgateServer: Service, Sendable {
    /// Where the server listens once it runs.
    public struct Addresses: Sendable {
        public var port: Int
        public var metricsPort: Int?
    }

    private let store: Store
    private let configuration: ServerConfiguration
    private let logger: Logger
    private let group: any EventLoopGroup
    private let onListening: @Sendable (Addresses) async -> Void
    package let sessions: SessionRegistry
    package let metrics: ServerMetrics
    package let dispatcher: Dispatcher

    /// - Parameter onListening: called once both ports are bound (tests learn port 0's choice here).
    public init(
        store: Store,
        configuration: ServerConfiguration = ServerConfiguration(),
        logger: Logger,
        group: (any EventLoopGroup)? = nil,
        onListening: @escaping @Sendable (Addresses) async -> Void = { _ in }
    ) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.group = group ?? MultiThreadedEventLoopGroup.singleton
        self.onListening = onListening
        self.sessions = SessionRegistry(maximumConnections: configuration.maximumConnections)
        self.metrics = ServerMetrics()
        self.dispatcher = Dispatcher(store: store, sessions: self.sessions)
        let metrics = self.metrics
        store.writer.setBatchObserver { size, nanoseconds, inline in
            metrics.writerBatch(size: size, nanoseconds: nanoseconds, inline: inline)
        }
        let engine = store.engine
        metrics.addScrapeSource { PoolMetrics.text(engine) }
    }

    public func run() async throws {
        let configuration = self.configuration
        let dispatcher = self.dispatcher
        let metrics = self.metrics
        let logger = self.logger
        let threadPool = NIOThreadPool.singleton
        let watermark = ChannelOptions.Types.WriteBufferWaterMark(
            low: configuration.outboundHighWatermark / 2,
            high: configuration.outboundHighWatermark
        )
        let listener = try await ServerBootstrap(group: self.group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: watermark)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls = configuration.tls {
                        // First, so that every later handler sees plaintext. The handshake starts with the
                        // connection, and so does the hello timeout: a client must finish both within it.
                        try channel.pipeline.syncOperations.addHandler(tls.makeHandler())
                    }
                    try channel.pipeline.syncOperations.addHandlers(
                        IdleStateHandler(readTimeout: .init(configuration.idleTimeout)),
                        ByteToMessageHandler(FrameDecoder(maximumFrameBytes: configuration.maximumFrameBytes)),
                        SessionHandler(
                            dispatcher: dispatcher,
                            configuration: configuration,
                            metrics: metrics,
                            threadPool: threadPool,
                            logger: logger
                        )
                    )
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
        var metricsServer: MetricsHTTPServer.Running?
        if let metricsPort = configuration.metricsPort {
            do {
                let store = self.store
                metricsServer = try await MetricsHTTPServer(
                    host: configuration.metricsHost,
                    port: metricsPort,
                    metrics: metrics,
                    health: { store.writer.isHealthy },
                    logger: logger
                ).start(group: self.group)
            } catch {
                try? await listener.close()
                throw error
            }
        }
        let addresses = Addresses(port: listener.localAddress?.port ?? 0, metricsPort: metricsServer?.boundPort)
        var listening: Logger.Metadata = [
            "address": "\(configuration.host):\(addresses.port)",
            "metrics": "\(addresses.metricsPort.map { "\(configuration.metricsHost):\($0)" } ?? "off")",
            "durability": "\(self.store.configuration.durability.rawValue)",
            "sync": "\(self.store.configuration.synchronous.rawValue)",
            "tls": "\(configuration.tls == nil ? "off" : "on")",
        ]
        if let tls = configuration.tls {
            listening["certificate"] = "\(tls.certificatePath)"
            listening["certificate_expires"] = "\(Date(timeIntervalSince1970: Double(tls.certificateNotValidAfter)))"
            listening["client_certificates"] = "\(tls.requiresClientCertificates ? "required" : "no")"
        }
        logger.notice("callgated listening", metadata: listening)
        if let tls = configuration.tls, tls.certificateNotValidAfter < Int(Date().timeIntervalSince1970) {
            logger.warning("the TLS certificate has expired: clients that verify it refuse to connect")
        }
        if configuration.tls == nil, !Self.isLoopback(configuration.host) {
            logger.warning(
                "TLS is off on an address that is not loopback: API keys and phone numbers travel in clear (see --tls-certificate)",
                metadata: ["address": "\(configuration.host)"]
            )
        }
        await self.onListening(addresses)

        // Serve until asked to stop (a signal through the ServiceGroup) or cancelled.
        try? await gracefulShutdown()

        logger.notice("shutting down: no new connections; finishing requests in flight")
        try? await listener.close()
        let closes = self.sessions.drainAll()
        let grace = configuration.shutdownGracePeriod
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for close in closes { try? await close.get() }
            }
            group.addTask {
                try? await Task.sleep(for: grace)
            }
            await group.next()
            group.cancelAll()
        }
        let forced = self.sessions.closeAll()
        if forced > 0 {
            logger.warning("closing connections still open after the grace period", metadata: ["count": "\(forced)"])
        }
        do {
            try await self.store.writer.flush()
            logger.notice("store writer flushed; stopped")
        } catch {
            logger.error("store writer could not flush", metadata: ["error": "\(error)"])
        }
        await metricsServer?.stop()
    }

    /// Whether `host` names this machine only: `localhost`, 127.0.0.0/8 or ::1.
    static func isLoopback(_ host: String) -> Bool {
        if host.lowercased() == "localhost" { return true }
        guard let address = try? SocketAddress(ipAddress: host, port: 0), let ip = address.ipAddress else {
            return false
        }
        switch address.protocol {
        case .inet: return ip.hasPrefix("127.")
        case .inet6: return ip == "::1"
        default: return false
        }
    }
}
