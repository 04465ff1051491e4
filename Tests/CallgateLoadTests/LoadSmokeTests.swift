import CallgateLoad
import CallgateServer
import CallgateStore
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// Runs the load generator against a real `callgated` on 127.0.0.1 (port 0, fresh data directory).
@Suite("Load generator against the server", .serialized)
struct LoadGeneratorSmokeTests {
    private func configuration(port: Int, key: String) -> LoadConfiguration {
        var configuration = LoadConfiguration(host: "127.0.0.1", port: port, apiKey: key)
        configuration.connections = 4
        configuration.depth = 8
        configuration.duration = .seconds(1)
        configuration.warmup = .milliseconds(200)
        configuration.threads = 2
        configuration.randomSeed = 1
        return configuration
    }

    @Test func closedLoopAllowsThenDeniesForeignCountries() async throws {
        try await withLoadTestServer { port, key in
            var configuration = self.configuration(port: port, key: key)
            // The comparison's countries: the deny share's destination must still be denied.
            configuration.use(seed: LoadSeed(agents: 20, numbersPerAgent: 2, countries: ["US", "CA", "GB"]))
            let report = try await runLoad(configuration)
            #expect(report.seed?.agents == 20)
            #expect(report.seed?.numbersAdded == 40)
            #expect(report.seed?.assigned == 40)
            #expect(report.requests > 0)
            #expect(report.errorCount == 0, "\(report.errors)")
            #expect((report.decisions["ALLOW"] ?? 0) > 0)
            #expect(report.decisions["ALLOW"] == report.requests)
            #expect(report.latencyMicroseconds.p50 > 0)
            #expect(report.latencyMicroseconds.p50 <= report.latencyMicroseconds.p99)
            #expect(report.latencyMicroseconds.p99 <= report.latencyMicroseconds.max)

            // Seeding again finds everything there; half the calls go to Japan, which the agents may not call.
            configuration.denyShare = 0.5
            configuration.agents = .zipf(exponent: 1.1)
            let denied = try await runLoad(configuration)
            #expect(denied.seed?.numbersExisting == 40)
            #expect(denied.seed?.alreadyAssigned == 40)
            #expect(denied.errorCount == 0, "\(denied.errors)")
            let deny = denied.decisions["DENY/COUNTRY_NOT_ALLOWED"] ?? 0
            let allow = denied.decisions["ALLOW"] ?? 0
            #expect(deny > 0 && allow > 0)
            let share = Double(deny) / Double(deny + allow)
            #expect(share > 0.4 && share < 0.6)
            #expect(denied.renderText().contains("DENY/COUNTRY_NOT_ALLOWED"))
            let decoded = try JSONDecoder().decode(LoadReport.self, from: Data(denied.renderJSON().utf8))
            #expect(decoded == denied)
        }
    }

    @Test func lifecycleMixOpenLoopAndRequestCount() async throws {
        try await withLoadTestServer { port, key in
            var configuration = self.configuration(port: port, key: key)
            configuration.use(seed: LoadSeed(agents: 10, numbersPerAgent: 1, spare: 16))
            configuration.mix = LoadMix(authorize: 40, pick: 20, assign: 20, release: 20)
            let mixed = try await runLoad(configuration)
            #expect(mixed.errorCount == 0, "\(mixed.errors)")
            for method in ["authorize_call", "pick_number", "assign", "release"] {
                #expect((mixed.operations[method] ?? 0) > 0, "\(method): \(mixed.operations)")
            }

            // Open loop: 1,000 per second for a second.
            configuration.seed = nil
            configuration.mix = LoadMix()
            configuration.rate = 1000
            let open = try await runLoad(configuration)
            #expect(open.mode == "open")
            #expect(open.errorCount == 0, "\(open.errors)")
            #expect(open.requests > 700 && open.requests < 1300, "\(open.requests)")

            // A request count instead of a duration.
            configuration.rate = 0
            configuration.duration = nil
            configuration.requests = 500
            let counted = try await runLoad(configuration)
            #expect(counted.requests == 500)
            #expect(counted.errorCount == 0, "\(counted.errors)")

            // A wrong key fails at hello.
            configuration.apiKey = "cgk_nope_nope"
            await #expect(throws: LoadError.self) { try await runLoad(configuration) }
        }
    }
}

/// Starts `callgated` on a fresh data directory (as `Tests/CallgateServerTests/TestServer.swift` does), runs
/// `body` with its port and admin key, then shuts it down.
private func withLoadTestServer(_ body: @Sendable (Int, String) async throws -> Void) async throws {
    let path = NSTemporaryDirectory() + "callgate-load-tests-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: path) }
    let directory = DataDirectory(path: path + "/data")
    let (store, firstStart) = try await directory.open(
        durability: .commit,
        synchronous: .normal,
        organizationName: "Load Org",
        timeZone: "UTC"
    )
    defer { store.close() }
    let keyPath = try #require(firstStart?.adminKeyPath)
    let adminKey = try String(contentsOfFile: keyPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    var configuration = ServerConfiguration()
    configuration.port = 0
    configuration.metricsPort = nil
    var logger = Logger(label: "callgated-load-test")
    logger.logLevel = .warning
    let (addresses, continuation) = AsyncStream.makeStream(of: CallgateServer.Addresses.self)
    let server = CallgateServer(store: store, configuration: configuration, logger: logger) { addresses in
        continuation.yield(addresses)
        continuation.finish()
    }
    let group = ServiceGroup(configuration: .init(services: [server], logger: logger))
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        var iterator = addresses.makeAsyncIterator()
        guard let bound = await iterator.next() else { throw CancellationError() }
        do {
            try await body(bound.port, adminKey)
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
    }
}
