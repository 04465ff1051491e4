import CallgateClient
import CallgateWire
import Histogram
import NIOCore
import NIOPosix

/// Drives a running `callgated` with load and reports what it measured.
///
/// In order: seeds (``LoadConfiguration/seed``), releases the spare numbers when the mix cycles them,
/// opens ``LoadConfiguration/connections`` connections on one `MultiThreadedEventLoopGroup` (each says
/// `hello`), runs the warm-up (not recorded) and the measured phase, waits for the outstanding answers, and
/// merges the counts of all event loops. `progress` is called about once a second with the last second's
/// throughput, latency and errors.
public func runLoad(
    _ configuration: LoadConfiguration,
    progress: @escaping @Sendable (LoadProgress) -> Void = { _ in }
) async throws -> LoadReport {
    try configuration.validate()
    var seedReport: SeedReport?
    if let seed = configuration.seed {
        seedReport = try await seedLoadData(seed, configuration: configuration)
    }
    if configuration.mix.usesLifecycle {
        try await releaseSpares(configuration)
    }

    let tls: ClientTLSContext?
    do {
        tls = try configuration.tls.map { tls throws(CallgateClientError) in
            try ClientTLSContext(tls, host: configuration.host)
        }
    } catch {
        throw LoadError.connectFailed(error.message)
    }
    let plan = LoadPlan(configuration, tls: tls)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.threads)
    do {
        let report = try await run(plan, group: group, progress: progress)
        try? await group.shutdownGracefully()
        var result = report
        result.seed = seedReport
        return result
    } catch {
        try? await group.shutdownGracefully()
        throw error
    }
}

/// One connection as the runner sees it.
private struct LoadConnection: Sendable {
    var channel: any Channel
    var handler: NIOLoopBound<LoadConnectionHandler>
    var hello: EventLoopFuture<Void>
    var done: EventLoopFuture<Void>
}

private func run(
    _ plan: LoadPlan,
    group: MultiThreadedEventLoopGroup,
    progress: @escaping @Sendable (LoadProgress) -> Void
) async throws -> LoadReport {
    let configuration = plan.configuration
    var loops: [any EventLoop] = []
    for loop in group.makeIterator() { loops.append(loop) }
    var boxes: [NIOLoopBound<LoopStats>] = []
    for loop in loops {
        boxes.append(try await loop.submit { NIOLoopBound(LoopStats(), eventLoop: loop) }.get())
    }
    // Immutable from here on: the reporter task and the final tally read it concurrently.
    let stats = boxes

    let connections = try await connectAll(plan, loops: loops, stats: stats)
    do {
        for connection in connections { try await connection.hello.get() }
    } catch {
        for connection in connections { connection.channel.close(promise: nil) }
        throw error
    }

    // Start every connection on the same schedule, a little ahead so that all have it in time.
    let clockStart = ContinuousClock.now + .milliseconds(20)
    let start = NIODeadline.now().uptimeNanoseconds + 20_000_000
    let measureStart = start + configuration.warmup.nanoseconds
    let measureEnd = configuration.duration.map { measureStart + $0.nanoseconds } ?? .max
    for (index, connection) in connections.enumerated() {
        var quota = Int.max
        if configuration.requests > 0 {
            quota = configuration.requests / configuration.connections
            if index < configuration.requests % configuration.connections { quota += 1 }
        }
        let schedule = LoadSchedule(start: start, measureStart: measureStart, measureEnd: measureEnd, quota: quota)
        let handler = connection.handler
        handler.eventLoop.execute { handler.value.start(schedule) }
    }

    let reporter = Task {
        var totalErrors: UInt64 = 0
        var tick = 1
        while !Task.isCancelled {
            do {
                try await Task.sleep(until: clockStart + .seconds(tick), clock: .continuous)
            } catch {
                return
            }
            var interval = IntervalSnapshot()
            for box in stats {
                guard let snapshot = try? await box.eventLoop.submit({ box.value.takeInterval() }).get() else { return }
                interval.add(snapshot)
            }
            totalErrors += interval.errors
            let elapsed = Double(tick)
            let now = NIODeadline.now().uptimeNanoseconds
            let phase: LoadProgress.Phase =
                now < measureStart ? .warmup : (now < measureEnd ? .measuring : .draining)
            let h = interval.histogram
            progress(
                LoadProgress(
                    elapsed: elapsed,
                    phase: phase,
                    requestsPerSecond: Double(interval.responses),
                    p50: h.totalCount == 0 ? 0 : Double(h.valueAtPercentile(50)) / 1000,
                    p99: h.totalCount == 0 ? 0 : Double(h.valueAtPercentile(99)) / 1000,
                    errors: interval.errors,
                    totalErrors: totalErrors
                )
            )
            tick += 1
        }
    }

    for connection in connections { try? await connection.done.get() }
    reporter.cancel()
    _ = await reporter.value

    var total = StatsSnapshot()
    for box in stats {
        total.add(try await box.eventLoop.submit { box.value.total }.get())
    }
    for connection in connections { try? await connection.channel.close() }

    let seconds: Double
    if let duration = configuration.duration, configuration.requests == 0 {
        seconds = duration.seconds
    } else {
        seconds = total.lastCompletion > measureStart ? Double(total.lastCompletion - measureStart) / 1e9 : 0
    }
    return LoadReport(
        mode: configuration.rate > 0 ? "open" : "closed",
        connections: configuration.connections,
        depth: configuration.depth,
        targetRate: configuration.rate > 0 ? configuration.rate : nil,
        warmupSeconds: configuration.warmup.seconds,
        seconds: seconds,
        agentCount: configuration.agentCount,
        agentDistribution: configuration.agents.description,
        denyShare: configuration.denyShare,
        mix: configuration.mix.description,
        threads: configuration.threads,
        requests: total.responses,
        throughput: seconds > 0 ? Double(total.responses) / seconds : 0,
        latencyMicroseconds: total.latency,
        decisions: total.decisionCounts,
        operations: total.operationCounts,
        errors: total.errorCounts,
        errorCount: total.errorCount,
        unsent: total.unsent,
        seed: nil
    )
}

/// Opens the connections (connection i on event loop i mod threads), 64 connects at a time.
private func connectAll(
    _ plan: LoadPlan,
    loops: [any EventLoop],
    stats: [NIOLoopBound<LoopStats>]
) async throws -> [LoadConnection] {
    let configuration = plan.configuration
    return try await withThrowingTaskGroup(of: (Int, LoadConnection).self) { group in
        var connections: [LoadConnection?] = Array(repeating: nil, count: configuration.connections)
        var next = 0
        func add() {
            let index = next
            next += 1
            let loop = loops[index % loops.count]
            let box = stats[index % loops.count]
            group.addTask {
                let bootstrap = ClientBootstrap(group: loop)
                    .connectTimeout(.seconds(5))
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                do {
                    let connection = try await bootstrap.connect(
                        host: configuration.host,
                        port: configuration.port
                    ) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            // The hello is written on channelActive; TLS holds it until the handshake is done.
                            try plan.tls?.addHandler(to: channel.pipeline.syncOperations)
                            let handler = LoadConnectionHandler(
                                plan: plan,
                                stats: box.value,
                                index: index,
                                eventLoop: channel.eventLoop
                            )
                            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
                            try channel.pipeline.syncOperations.addHandler(handler)
                            return LoadConnection(
                                channel: channel,
                                handler: NIOLoopBound(handler, eventLoop: channel.eventLoop),
                                hello: handler.helloFuture,
                                done: handler.doneFuture
                            )
                        }
                    }
                    return (index, connection)
                } catch {
                    throw LoadError.connectFailed(
                        "could not connect to \(configuration.host):\(configuration.port): \(error)"
                    )
                }
            }
        }
        while next < min(64, configuration.connections) { add() }
        do {
            while let (index, connection) = try await group.next() {
                connections[index] = connection
                if next < configuration.connections { add() }
            }
        } catch {
            for connection in connections { connection?.channel.close(promise: nil) }
            while true {
                do {
                    guard let (_, connection) = try await group.next() else { break }
                    connection.channel.close(promise: nil)
                } catch {
                    continue
                }
            }
            throw error
        }
        return connections.compactMap { $0 }
    }
}
