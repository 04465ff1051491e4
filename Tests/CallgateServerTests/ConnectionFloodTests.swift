import CallgateClient
import CallgateServer
import CallgateWire
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One client opens thousands of connections: the server admits up to its limit, refuses the rest with
/// RESOURCE_EXHAUSTED and a close, its memory stays bounded, and a client already connected keeps being
/// served throughout.
@Suite(.timeLimit(.minutes(3))) struct ConnectionFloodTests {
    static let wanted = 2_000
    static let limit = 1_024

    /// Raises this process's open-file limit as far as allowed; returns how many flood connections fit
    /// (each takes a descriptor on both ends, as client and server share the process).
    final class Done: Sendable {
        let flag = Atomic<Bool>(false)
        let connections = Mutex<[RawConnection]>([])
    }

    static func floodSize() -> Int {
        var limits = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits)
        limits.rlim_cur = limits.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits)
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limits)
        return min(Self.wanted, (Int(limits.rlim_cur) - 256) / 2)
    }

    static func residentMebibytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return 0 }
        return kib / 1024
    }

    static func percentile(_ samples: [Duration], _ p: Double) -> Duration {
        let sorted = samples.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    /// One dry-run AuthorizeCall of the good client (a dry run counts nothing, so the limit never ends
    /// the probing); returns how long the answer took.
    static func probe(_ client: CallgateClient, _ clock: ContinuousClock) async throws -> Duration {
        let started = clock.now
        let answer = try await client.authorizeCall(
            Wire.AuthorizeCallRequest(agentID: "good", destination: ProtocolAbuseTests.destination, dryRun: true)
        )
        #expect(answer.verdict == .allow)
        return started.duration(to: clock.now)
    }

    @Test func thousandsOfConnectionsAreCappedAndAClientOnTheSideIsServed() async throws {
        let flood = Self.floodSize()
        // A machine with a low open-file limit floods with fewer: the limit is then half the flood.
        let limit = min(Self.limit, flood / 2)
        try #require(limit >= 64, "the open-file limit allows only \(flood) connections")
        let configure: (inout ServerConfiguration) -> Void = {
            $0.maximumConnections = limit
            // The admitted flood connections stay silent; they must outlive the test's checks.
            $0.helloTimeout = .seconds(100)
        }
        try await withTestServer(configure: configure) { server in
            let good = try await ProtocolAbuseTests.wellBehavedClient(server)
            defer { Task { await good.close() } }
            let clock = ContinuousClock()
            var before: [Duration] = []
            for _ in 0..<200 { before.append(try await Self.probe(good, clock)) }
            let memoryBefore = Self.residentMebibytes()

            // The flood: blocking connects from another thread while the good client keeps asking.
            let done = Done()
            // The task hands the connections over through `done` rather than as its value, which the
            // task would keep (and with it every connection open) for as long as it exists.
            let opening = Task.detached {
                var connections: [RawConnection] = []
                for _ in 0..<flood {
                    guard let connection = try? RawConnection(port: server.port) else { break }
                    connections.append(connection)
                }
                done.connections.withLock { $0 = connections }
                done.flag.store(true, ordering: .releasing)
            }
            var during: [Duration] = []
            while during.count < 200 || !done.flag.load(ordering: .acquiring) {
                during.append(try await Self.probe(good, clock))
            }
            await opening.value
            var connections = done.connections.withLock { taken in
                defer { taken = [] }
                return taken
            }
            #expect(connections.count == flood)

            // Admitted connections stay open and silent; refused ones get RESOURCE_EXHAUSTED and a close.
            // The refusals arrive asynchronously: poll every connection until no new one becomes readable.
            var readable = Set<Int>()
            var quietRounds = 0
            while quietRounds < 3 {
                try await Task.sleep(for: .milliseconds(300))
                let before = readable.count
                for (i, connection) in connections.enumerated() where !readable.contains(i) {
                    if connection.isReadable(withinMilliseconds: 0) { readable.insert(i) }
                }
                quietRounds = readable.count == before ? quietRounds + 1 : 0
            }
            var admitted: [RawConnection] = []
            var refused = 0
            for (i, connection) in connections.enumerated() {
                if readable.contains(i) {
                    ProtocolAbuseTests.expectErrorThenClose(connection, .resourceExhausted)
                    refused += 1
                } else {
                    admitted.append(connection)
                }
            }
            let memoryDuring = Self.residentMebibytes()
            // The good client holds one of the places.
            #expect(admitted.count == limit - 1)
            #expect(refused == flood - (limit - 1))
            // An admitted connection is a real session.
            #expect(ProtocolAbuseTests.hello(try #require(admitted.last), key: server.adminKey))
            // Bounded memory: a connection costs kilobytes. This is the whole test process (the flooding
            // client and any test running alongside included), so the bound is loose.
            #expect(memoryDuring - memoryBefore < 512, "\(memoryBefore) MiB → \(memoryDuring) MiB")

            // Once the flood goes away, new clients are admitted again.
            admitted.removeAll()
            connections.removeAll()
            var readmitted = false
            for _ in 0..<200 where !readmitted {
                if let client = try? await server.connect(name: "after-flood") {
                    readmitted = true
                    await client.close()
                } else {
                    try await Task.sleep(for: .milliseconds(25))
                }
            }
            #expect(readmitted)
            try await ProtocolAbuseTests.expectAllow(good)

            // Figures for docs/reliability.md (not asserted: timing belongs to benchmarks).
            print(
                "connection flood: \(flood) opened, \(refused) refused; good client p50/p99/max before",
                Self.percentile(before, 0.5),
                Self.percentile(before, 0.99),
                before.max()!,
                "during",
                Self.percentile(during, 0.5),
                Self.percentile(during, 0.99),
                during.max()!,
                "(\(during.count) requests); memory \(memoryBefore) → \(memoryDuring) MiB"
            )
        }
    }
}
