import CallgateClient
import CallgateCore
import CallgateServer
import CallgateStore
import CallgateWire
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

@Suite struct ServerMetricsTests {
    private func text(_ metrics: ServerMetrics) -> String {
        String(decoding: metrics.render(), as: UTF8.self)
    }

    @Test func methodIndexesMatchNames() {
        #expect(Wire.Request.Method.allNames.count == 31)
        #expect(Set(Wire.Request.Method.allNames).count == 31)
        let methods: [Wire.Request.Method] = [
            .hello(Wire.HelloRequest()), .authorizeCall(Wire.AuthorizeCallRequest()), .stats(Wire.StatsRequest()),
        ]
        for method in methods {
            #expect(Wire.Request.Method.allNames[method.index] == method.name)
        }
        #expect(Wire.Request.Method.stats(Wire.StatsRequest()).index == 30)
    }

    @Test func requestsAndDecisionsAppearWithTheirLabels() throws {
        let metrics = ServerMetrics()
        let authorize = Wire.Request.Method.authorizeCall(Wire.AuthorizeCallRequest()).index
        metrics.requestFinished(methodIndex: authorize, code: .ok, nanoseconds: 20_000)
        metrics.requestFinished(methodIndex: authorize, code: .ok, nanoseconds: 30_000)
        metrics.requestFinished(methodIndex: authorize, code: .permissionDenied, nanoseconds: 5_000_000)
        metrics.requestFinished(methodIndex: 99, code: .ok, nanoseconds: 1)  // ignored
        metrics.decision(nil)
        metrics.decision(nil)
        metrics.decision(.dailyLimitReached)
        let output = self.text(metrics)

        #expect(output.contains(#"callgate_requests_total{method="authorize_call",code="OK"} 2"#))
        #expect(output.contains(#"callgate_requests_total{method="authorize_call",code="PERMISSION_DENIED"} 1"#))
        // Series of requests never made are not listed.
        #expect(!output.contains(#"method="stats""#))
        #expect(output.contains("# TYPE callgate_request_duration_seconds histogram"))
        #expect(output.contains(#"callgate_request_duration_seconds_bucket{method="authorize_call",le="0.00001"} 0"#))
        #expect(output.contains(#"callgate_request_duration_seconds_bucket{method="authorize_call",le="0.00005"} 2"#))
        #expect(output.contains(#"callgate_request_duration_seconds_bucket{method="authorize_call",le="1.0"} 3"#))
        #expect(output.contains(#"callgate_request_duration_seconds_count{method="authorize_call"} 3"#))
        #expect(output.contains(#"callgate_decisions_total{result="ALLOW"} 2"#))
        #expect(output.contains(#"callgate_decisions_total{result="DAILY_LIMIT_REACHED"} 1"#))
        // Every decision result is listed from the start.
        for reason in DenyReason.allCases {
            #expect(output.contains(#"callgate_decisions_total{result="\#(reason.description)"}"#))
        }
        #expect(ServerMetrics.name(of: .resourceExhausted) == "RESOURCE_EXHAUSTED")
    }

    /// The hot path counts AuthorizeCall answers per connection and adds them once per read burst: the
    /// same series as one request at a time, and a tally added twice counts once.
    @Test func aConnectionsTallyAddsToTheSameSeries() {
        let metrics = ServerMetrics()
        let authorize = Wire.Request.Method.authorizeCall(Wire.AuthorizeCallRequest()).index
        metrics.requestFinished(methodIndex: authorize, code: .ok, nanoseconds: 7_000)
        var tally = metrics.makeTally()
        #expect(tally.isEmpty)
        tally.authorizeCall(nanoseconds: 20_000, reason: 0)
        tally.authorizeCall(nanoseconds: 30_000, reason: 0)
        tally.authorizeCall(nanoseconds: 2_000_000_000, reason: Int(DenyReason.countryNotAllowed.rawValue))
        tally.authorizeCall(nanoseconds: 1, reason: 200)  // no such reason: timed, not a decision
        metrics.add(&tally)
        #expect(tally.isEmpty)
        metrics.add(&tally)
        let output = self.text(metrics)

        #expect(output.contains(#"callgate_requests_total{method="authorize_call",code="OK"} 5"#))
        #expect(output.contains(#"callgate_request_duration_seconds_bucket{method="authorize_call",le="0.00001"} 2"#))
        #expect(output.contains(#"callgate_request_duration_seconds_bucket{method="authorize_call",le="0.000025"} 3"#))
        #expect(output.contains(#"callgate_request_duration_seconds_bucket{method="authorize_call",le="0.00005"} 4"#))
        #expect(output.contains(#"callgate_request_duration_seconds_bucket{method="authorize_call",le="1.0"} 4"#))
        #expect(output.contains(#"callgate_request_duration_seconds_bucket{method="authorize_call",le="+Inf"} 5"#))
        #expect(output.contains(#"callgate_request_duration_seconds_sum{method="authorize_call"} 2.000057001"#))
        #expect(output.contains(#"callgate_request_duration_seconds_count{method="authorize_call"} 5"#))
        #expect(output.contains(#"callgate_decisions_total{result="ALLOW"} 2"#))
        #expect(output.contains(#"callgate_decisions_total{result="COUNTRY_NOT_ALLOWED"} 1"#))
        // One HELP and one TYPE line for the family.
        #expect(output.components(separatedBy: "# TYPE callgate_request_duration_seconds ").count == 2)
    }

    @Test func connectionsAndWriterBatches() {
        let metrics = ServerMetrics()
        metrics.connectionOpened()
        metrics.connectionOpened()
        metrics.connectionOpened()
        metrics.connectionClosed()
        metrics.connectionRejected(.limit)
        metrics.connectionRejected(.slowReader)
        metrics.connectionRejected(.slowReader)
        metrics.writerBatch(size: 3, nanoseconds: 400_000, inline: true)
        metrics.writerBatch(size: 100, nanoseconds: 2_000_000, inline: false)
        let output = self.text(metrics)

        #expect(output.contains("# TYPE callgate_connections gauge"))
        #expect(output.contains("callgate_connections 2.0\n"))
        #expect(output.contains("callgate_connections_total 3\n"))
        #expect(output.contains(#"callgate_connections_rejected_total{reason="limit"} 1"#))
        #expect(output.contains(#"callgate_connections_rejected_total{reason="slow_reader"} 2"#))
        #expect(output.contains(#"callgate_connections_rejected_total{reason="auth"} 0"#))
        #expect(output.contains(#"callgate_writer_batch_size_bucket{le="4.0"} 1"#))
        #expect(output.contains(#"callgate_writer_batch_size_bucket{le="128.0"} 2"#))
        #expect(output.contains("callgate_writer_batch_size_sum 103.0\n"))
        #expect(output.contains("callgate_writer_commit_seconds_count 2\n"))
        #expect(output.contains("callgate_writer_changes_total 103\n"))
        #expect(output.contains("callgate_writer_inline_commits_total 1\n"))
    }

    @Test func theStoreWriterReportsItsBatches() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("callgate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try Store.open(StoreConfiguration(path: directory.appendingPathComponent("db.sqlite").path))
        defer { store.close() }
        let metrics = ServerMetrics()
        let seen = Atomic<Int>(0)
        store.writer.setBatchObserver { size, nanoseconds, inline in
            seen.add(size, ordering: .relaxed)
            metrics.writerBatch(size: size, nanoseconds: nanoseconds, inline: inline)
        }
        _ = try store.engine.createOrganization(name: "Acme", timeZone: "UTC", actor: Actor("key:admin"))
        try await store.writer.flush()
        // The observer runs before the batch's tickets complete.
        #expect(seen.load(ordering: .relaxed) >= 1)
        #expect(self.text(metrics).contains("callgate_writer_changes_total \(seen.load(ordering: .relaxed))\n"))
        store.writer.setBatchObserver(nil)
    }

    /// One call at a time (`commit` durability): the event loop commits each counted call itself while
    /// the writer sleeps, and every ALLOW is counted in the store and in the metrics.
    @Test func callsOneAtATimeAreCommittedOnTheEventLoop() async throws {
        try await withTestServer { server in
            let admin = try await server.connect()
            defer { Task { await admin.close() } }
            try await admin.addAndAssign("+14155550100", to: "alice")
            for i in 1...30 {
                let answer = try await admin.authorizeCall(
                    Wire.AuthorizeCallRequest(agentID: "alice", destination: "+12025550123")
                )
                #expect(answer.verdict == .allow)
                #expect(answer.count == UInt32(i))
                try await Task.sleep(for: .milliseconds(2))
            }
            let inline = server.store.writer.statistics.inlineBatches
            // Most of the 30 (the writer may hold its lock at the moment of some).
            #expect(inline >= 5, "\(inline) of 30 calls committed on the event loop")
            #expect(self.text(server.metrics).contains("callgate_writer_inline_commits_total \(inline)\n"))
            let org = try #require(server.store.engine.allOrganizations.first)
            let number = try PhoneNumber.parse("+14155550100")
            #expect(org.number(number)?.counter.count(on: org.today.key) == 30)
            // Each answer was counted by its connection and added to the metrics before it left.
            let scrape = self.text(server.metrics)
            #expect(scrape.contains(#"callgate_requests_total{method="authorize_call",code="OK"} 30"#))
            #expect(scrape.contains(#"callgate_request_duration_seconds_count{method="authorize_call"} 30"#))
            #expect(scrape.contains(#"callgate_decisions_total{result="ALLOW"} 30"#))
        }
    }

    // MARK: - HTTP

    @Test func httpServerServesMetricsHealthAnd404ThenStops() async throws {
        let metrics = ServerMetrics()
        metrics.decision(nil)
        let healthy = Atomic<Bool>(true)
        let server = MetricsHTTPServer(
            port: 0,
            metrics: metrics,
            health: { healthy.load(ordering: .relaxed) },
            logger: Logger(label: "test")
        )
        let group = MultiThreadedEventLoopGroup.singleton
        let running = try await server.start(group: group)
        let port = running.boundPort
        #expect(port > 0)

        let scrape = try await HTTP.exchange(
            port: port,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        #expect(scrape.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(scrape.lowercased().contains("content-type: text/plain; version=0.0.4"))
        #expect(scrape.contains(#"callgate_decisions_total{result="ALLOW"} 1"#))

        let health = try await HTTP.exchange(port: port, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(health.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(health.hasSuffix("\r\n\r\nok\n"))
        healthy.store(false, ordering: .relaxed)
        let unhealthy = try await HTTP.exchange(
            port: port,
            "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        #expect(unhealthy.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))

        let missing = try await HTTP.exchange(port: port, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(missing.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        let post = try await HTTP.exchange(
            port: port,
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
        )
        #expect(post.hasPrefix("HTTP/1.1 404 Not Found\r\n"))

        // Two pipelined keep-alive requests on one connection, the second one closing it.
        let pipelined = try await HTTP.exchange(
            port: port,
            "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        #expect(pipelined.components(separatedBy: "HTTP/1.1 ").count == 3)

        await running.stop()
        await #expect(throws: (any Error).self) {
            _ = try await HTTP.exchange(port: port, "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        }
    }

    @Test func idleAndOpenKeepAliveConnectionsAreClosed() async throws {
        let server = MetricsHTTPServer(
            port: 0,
            // Long enough that a client task starved on a busy test run (seconds, seen in parallel
            // runs) still writes before the idle close; short enough to see it well before 30 s.
            idleTimeout: .seconds(6),
            metrics: ServerMetrics(),
            health: { true },
            logger: Logger(label: "test")
        )
        let running = try await server.start(group: MultiThreadedEventLoopGroup.singleton)
        // A keep-alive request: the server answers, then closes the connection once idle.
        let started = ContinuousClock.now
        let answer = try await HTTP.exchange(port: running.boundPort, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"))
        // Well before the 30-s default, with room for a loaded machine.
        #expect(ContinuousClock.now - started < .seconds(20))

        // A connection still open when the server stops is closed by stop().
        let slow = MetricsHTTPServer(port: 0, metrics: ServerMetrics(), health: { true }, logger: Logger(label: "t"))
        let second = try await slow.start(group: MultiThreadedEventLoopGroup.singleton)
        let (answered, signal) = AsyncStream.makeStream(of: Void.self)
        async let reply = HTTP.exchange(port: second.boundPort, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n") {
            signal.yield()
        }
        // Stop only once the answer has arrived, so the connection is open and idle, not still connecting.
        var waiter = answered.makeAsyncIterator()
        _ = await waiter.next()
        let stopped = ContinuousClock.now
        await second.stop()
        #expect(try await reply.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(ContinuousClock.now - stopped < .seconds(20))  // not the 30-s idle timeout
        await running.stop()
    }
}

/// A raw HTTP exchange: writes `request`, reads until the server closes the connection (also used by
/// InventoryTests).
enum HTTP {
    static func exchange(
        port: Int,
        _ request: String,
        onFirstChunk: @Sendable () -> Void = {}
    ) async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: request))
            var response = ""
            for try await chunk in inbound {
                if response.isEmpty { onFirstChunk() }
                response += String(buffer: chunk)
            }
            return response
        }
    }
}
