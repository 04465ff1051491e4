import CallgateClient
import CallgateCore
import CallgateServer
import CallgateStore
import CallgateWire
import Foundation
import Logging
import ServiceLifecycle
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A running `callgated` on 127.0.0.1, port 0, over a fresh data directory.
struct TestServer: Sendable {
    var port: Int
    var metricsPort: Int?
    var adminKey: String
    var store: Store
    var directory: DataDirectory
    var metrics: ServerMetrics

    func connect(
        key: String? = nil,
        name: String = "test",
        tls: CallgateClientConfiguration.TLS? = nil
    ) async throws -> CallgateClient {
        var configuration = CallgateClientConfiguration(
            host: "127.0.0.1",
            port: self.port,
            apiKey: key ?? self.adminKey
        )
        configuration.clientName = name
        configuration.requestTimeout = .seconds(30)
        // Under the thread sanitizer, next to other suites on two cores, a hello can take seconds
        // (the product's 5-s default failed one CI run).
        configuration.connectTimeout = .seconds(30)
        configuration.tls = tls
        return try await CallgateClient.connect(configuration)
    }

    /// Creates a key directly in the store (as an admin would through `create_key`).
    func makeKey(_ role: Role, agent: String? = nil, organization: OrganizationID? = nil) throws -> String {
        let org = organization ?? self.store.engine.allOrganizations[0].id
        return try self.store.keys.create(
            organization: org,
            role: role,
            agent: agent,
            label: "test \(role)",
            actor: .system,
            now: self.store.engine.clock.now()
        ).secret
    }
}

/// A fresh temporary directory, removed afterwards.
func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let path = NSTemporaryDirectory() + "callgate-server-tests-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// Starts a server on a fresh data directory, runs `body`, then shuts the server down gracefully.
func withTestServer<T: Sendable>(
    durability: StoreConfiguration.Durability = .commit,
    clock: any EngineClock = SystemClock(),
    configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: @Sendable (TestServer) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { path in
        let directory = DataDirectory(path: path + "/data")
        let (store, firstStart) = try await directory.open(
            durability: durability,
            synchronous: .normal,
            organizationName: "Test Org",
            timeZone: "UTC",
            clock: clock
        )
        defer { store.close() }
        let keyPath = try #require(firstStart?.adminKeyPath)
        let adminKey = try String(contentsOfFile: keyPath, encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines
        )
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.metricsPort = 0
        configure(&configuration)
        var logger = Logger(label: "callgated-test")
        logger.logLevel = .warning
        let (addresses, addressesContinuation) = AsyncStream.makeStream(of: CallgateServer.Addresses.self)
        let server = CallgateServer(store: store, configuration: configuration, logger: logger) { addresses in
            addressesContinuation.yield(addresses)
            addressesContinuation.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [server], logger: logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = addresses.makeAsyncIterator()
            guard let bound = await iterator.next() else { throw CancellationError() }
            let test = TestServer(
                port: bound.port,
                metricsPort: bound.metricsPort,
                adminKey: adminKey,
                store: store,
                directory: directory,
                metrics: server.metrics
            )
            do {
                let result = try await body(test)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                return result
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
        }
    }
}

/// A blocking TCP socket for tests that must send bytes no client library would.
final class RawConnection: @unchecked Sendable {
    // @unchecked: only an immutable descriptor; a test uses each connection from one task at a time.
    private let fd: Int32

    /// - Parameters:
    ///   - receiveBufferBytes: a small `SO_RCVBUF` makes a client that never reads fill up quickly.
    ///   - sendTimeoutSeconds: a `SO_SNDTIMEO`, so a send to a server that stopped reading returns.
    init(port: Int, receiveBufferBytes: Int32? = nil, sendTimeoutSeconds: Int = 0) throws {
        self.fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBufferBytes {
            setsockopt(self.fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(self.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            close(self.fd)
            throw POSIXError(.ECONNREFUSED)
        }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(self.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        if sendTimeoutSeconds > 0 {
            var sendTimeout = timeval(tv_sec: sendTimeoutSeconds, tv_usec: 0)
            setsockopt(self.fd, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
        }
    }

    deinit { close(self.fd) }

    /// Sends `bytes`; returns 0, or the `errno` of a failed send (`EAGAIN` when the send timed out).
    @discardableResult
    func send(_ bytes: [UInt8]) -> Int32 {
        let sent = bytes.withUnsafeBytes { Glibc.send(self.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        return sent < 0 ? errno : 0
    }

    func send(_ request: Wire.Request) {
        self.send(Self.frame(request))
    }

    /// A request as one frame: length prefix and body.
    static func frame(_ request: Wire.Request) -> [UInt8] {
        let body = request.serialized()
        return Self.prefix(body.count) + body
    }

    static func prefix(_ length: Int) -> [UInt8] {
        withUnsafeBytes(of: UInt32(length).bigEndian, Array.init)
    }

    /// Reads one response frame; `nil` when the connection ended (or 10 s passed).
    func receive() -> Wire.Response? {
        guard let header = self.read(4) else { return nil }
        let length = Int(header.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }.bigEndian)
        guard let body = self.read(length) else { return nil }
        return try? body.withUnsafeBytes { try Wire.Response.decode($0) }
    }

    /// Whether the server closed the connection: end of stream or reset, within 10 s, and no more data.
    ///
    /// A server that closes while bytes it never read sit in its receive buffer (the rest of an
    /// oversized frame, the hello of a refused connection) makes the kernel send RST instead of FIN;
    /// both are the server closing.
    func isClosedByPeer() -> Bool {
        var byte: UInt8 = 0
        let n = recv(self.fd, &byte, 1, 0)
        return n == 0 || (n < 0 && errno == ECONNRESET)
    }

    /// Reads until the server closes the connection (end of stream or reset): what it sent before, or
    /// `nil` when the connection is still open after 10 s.
    func readUntilClosed() -> [UInt8]? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
            if n == 0 || (n < 0 && errno == ECONNRESET) { return bytes }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return nil }
            bytes += chunk[0..<n]
        }
    }

    /// Whether the server has sent something or closed, within `milliseconds` (`poll`, no read).
    func isReadable(withinMilliseconds milliseconds: Int32) -> Bool {
        var descriptor = pollfd(fd: self.fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, milliseconds) > 0
    }

    private func read(_ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let n = bytes.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress! + offset, count - offset, 0) }
            if n <= 0 { return nil }
            offset += n
        }
        return bytes
    }
}

extension CallgateClient {
    /// Adds a number (provider telnyx) and an agent, and assigns the number to the agent (default terms).
    func addAndAssign(_ number: String, to agent: String) async throws {
        _ = try await self.addNumber(Wire.AddNumberRequest(number: number, provider: "telnyx"))
        _ = try await self.upsertAgent(Wire.UpsertAgentRequest(id: agent))
        _ = try await self.assign(Wire.AssignRequest(number: number, agentID: agent))
    }
}

extension Wire.Response.Result {
    var statusCode: Wire.StatusCode {
        if case .error(let status) = self { return status.code }
        return .ok
    }
}
