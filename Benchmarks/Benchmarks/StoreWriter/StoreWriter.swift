import Benchmark
import BenchmarkSupport
import CallgateCore
import CallgateStore
import Dispatch
import Foundation
import Synchronization

// AuthorizeCall through the engine *and* the SQLite store (group commit), on a temp database.
//
// One organization, 1,000 agents × 5 numbers (daily limit 10M), two threads each deciding for its own
// half of the agents. One iteration is `perThread` decisions on each thread; every decision is an
// ALLOW and so one counter change for the writer. The variants differ in when a decision counts as
// done (the store does the same work in each; `durability` is the caller's policy):
//
// - `commit, wait per batch`: each thread decides its batch, then waits for its last ticket's commit.
// - `commit, reply per decision`: every decision registers `whenCommitted` (its reply is held until
//   its change is committed, as a server in `commit` mode does); the iteration ends when every reply
//   has been released. Nothing bounds the replies outstanding.
// - `commit, N clients per thread`: closed loop: each thread serves N clients (64, 1024), and a client
//   sends its next request only when the reply to its previous one (after that one's commit) arrived.
// - `async`: replies at once; one flush at the end of the iteration.
//
// Figures: wall clock per iteration, `decisions/s` (both threads), and from `writer.statistics` over
// the iteration the average group (`changes/batch`) and the mean time of one transaction
// (`commit µs`: BEGIN … COMMIT, as the writer measures it).

// MARK: - Setup

struct BenchmarkSetupError: Error, CustomStringConvertible {
    let message: String
    var description: String { self.message }
}

// MARK: - Fixture

/// A store on a fresh temp file with the organization loaded; removed by ``close()``.
final class StoreFixture: Sendable {
    static let agents = 1_000
    static let numbersPerAgent = 5

    let directory: URL
    let store: Store
    let organization: Organization
    /// Per thread: agent ids (shuffled) and a destination for each.
    let visits: [Visits]

    init(durability: StoreConfiguration.Durability, threads: Int = 2) async throws {
        self.directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("callgate-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        let path = self.directory.appendingPathComponent("bench.sqlite").path
        self.store = try Store.open(StoreConfiguration(path: path, durability: durability), clock: SystemClock())
        let org = try self.store.engine.createOrganization(name: "Bench", timeZone: "America/New_York", actor: .system)
        self.organization = org
        let terms = AssignmentTerms(dailyLimit: AssignmentTerms.maximumDailyLimit)
        for a in 0..<Self.agents {
            try org.upsertAgent(AgentInput(id: agentID(a)), actor: .system)
            for k in 0..<Self.numbersPerAgent {
                let number = usNumber(a * Self.numbersPerAgent + k, firstSubscriber: 2_000_000)
                try org.addNumber(NumberInput(number: number, provider: "telnyx"), actor: .system)
                try org.assign(number, to: agentID(a), terms: terms, actor: .system)
            }
        }
        try await self.store.writer.flush()
        self.visits = (0..<threads).map { t in
            Visits(ids: stride(from: t, to: Self.agents, by: threads).map { agentID($0) }, seed: 44 + UInt64(t))
        }
        let probe = try org.authorizeCall(
            agent: self.visits[0].agentIDs[0],
            destination: self.visits[0].destinations[0],
            dryRun: true
        )
        guard probe.isAllowed else { throw BenchmarkSetupError(message: "unexpected decision in setup: \(probe)") }
    }

    func close() {
        self.store.close()
        try? FileManager.default.removeItem(at: self.directory)
    }
}

extension Visits {
    /// The next decision; `nil` when it was not an ALLOW with a ticket.
    @inline(__always)
    func next(_ organization: Organization) -> ChangeTicket? {
        let i = self.cursor
        self.cursor = i + 1 == self.agentIDs.count ? 0 : i + 1
        return (try? organization.authorizeCall(agent: self.agentIDs[i], destination: self.destinations[i]))?.ticket
    }
}

/// Holds the fixture between `setup` and `teardown` (package-benchmark's teardown gets no state).
final class FixtureBox: Sendable {
    let fixture = Mutex<StoreFixture?>(nil)

    func set(_ fixture: StoreFixture) -> StoreFixture {
        self.fixture.withLock { $0 = fixture }
        return fixture
    }

    func close() {
        self.fixture.withLock {
            $0?.close()
            $0 = nil
        }
    }
}

// MARK: - Waiting

/// Blocks until the ticket's change is committed; `false` if it failed.
private func waitForCommit(_ writer: ChangeWriter, _ ticket: ChangeTicket) -> Bool {
    let done = DispatchSemaphore(value: 0)
    let ok = Atomic<Bool>(false)
    writer.whenCommitted(ticket) { error in
        ok.store(error == nil, ordering: .releasing)
        done.signal()
    }
    done.wait()
    return ok.load(ordering: .acquiring)
}

/// Counts replies released by commits and wakes the waiting thread when all `expected` arrived.
final class ReplyCounter: Sendable {
    let released = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let expected: Int
    let done = DispatchSemaphore(value: 0)

    init(expected: Int) { self.expected = expected }

    func reply(_ error: CallgateError?) {
        if error != nil { self.failed.add(1, ordering: .relaxed) }
        if self.released.add(1, ordering: .acquiringAndReleasing).newValue == self.expected { self.done.signal() }
    }
}

/// One thread's clients in the closed loop: the writer thread hands back clients whose reply was
/// released, the benchmark thread sends their next request.
final class ClientLoop: Sendable {
    private let ready = Mutex<[Int]>([])
    private let wake = DispatchSemaphore(value: 0)
    let failed = Atomic<Int>(0)

    func release(_ client: Int, _ error: CallgateError?) {
        if error != nil { self.failed.add(1, ordering: .relaxed) }
        self.ready.withLock { $0.append(client) }
        self.wake.signal()
    }

    /// Sends `requests` requests from `clients` clients, each waiting for its previous reply; returns
    /// when every reply was released.
    func run(_ organization: Organization, _ writer: ChangeWriter, _ visits: Visits, clients: Int, requests: Int) {
        var sent = 0
        var released = 0
        var batch = Array(0..<clients)
        while released < requests {
            if batch.isEmpty {
                self.wake.wait()
                batch = self.ready.withLock { ready in
                    defer { ready.removeAll(keepingCapacity: true) }
                    return ready
                }
                released += batch.count
                // A client whose last request was the final one has nothing more to send.
                if sent == requests { batch.removeAll() }
                continue
            }
            for client in batch where sent < requests {
                sent += 1
                if let ticket = visits.next(organization) {
                    writer.whenCommitted(ticket) { self.release(client, $0) }
                } else {
                    self.release(client, CallgateError(.internal, "not allowed"))
                }
            }
            batch.removeAll(keepingCapacity: true)
        }
    }
}

// MARK: - Benchmarks

enum Mode: Equatable {
    case waitPerBatch
    case replyPerDecision
    /// Closed loop with this many clients per thread.
    case clients(Int)
    case async

    var name: String {
        switch self {
        case .waitPerBatch: return "commit, wait per batch"
        case .replyPerDecision: return "commit, reply per decision"
        case .clients(let n): return "commit, \(n) clients per thread"
        case .async: return "async"
        }
    }
}

let decisionsPerSecond = BenchmarkMetric.custom("decisions/s", polarity: .prefersLarger, useScalingFactor: false)
let changesPerBatch = BenchmarkMetric.custom("changes/batch", polarity: .prefersLarger, useScalingFactor: false)
let commitMicroseconds = BenchmarkMetric.custom("commit µs", polarity: .prefersSmaller, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    let threads = 2
    let perThread = 100_000
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, decisionsPerSecond, changesPerBatch, commitMicroseconds],
        timeUnits: .milliseconds,
        warmupIterations: 1,
        scalingFactor: .one,
        maxDuration: .seconds(6),
        maxIterations: 30,
        thresholds: nil
    )

    for mode in [Mode.waitPerBatch, .replyPerDecision, .clients(64), .clients(1024), .async] {
        let box = FixtureBox()
        Benchmark("Store \(mode.name), 2 threads", configuration: configuration) {
            (benchmark, fixture: StoreFixture) in
            let org = fixture.organization
            let writer = fixture.store.writer
            let before = writer.statistics
            let started = DispatchTime.now().uptimeNanoseconds
            let failures = Atomic<Int>(0)
            let replies = ReplyCounter(expected: perThread * threads)
            let loops = (0..<threads).map { _ in ClientLoop() }
            let lastTickets = Mutex<[ChangeTicket]>([])

            benchmark.startMeasurement()
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                let visits = fixture.visits[t]
                switch mode {
                case .waitPerBatch:
                    var last: ChangeTicket?
                    for _ in 0..<perThread {
                        if let ticket = visits.next(org) { last = ticket } else { failures.add(1, ordering: .relaxed) }
                    }
                    if let last, !waitForCommit(writer, last) { failures.add(1, ordering: .relaxed) }
                case .replyPerDecision:
                    for _ in 0..<perThread {
                        if let ticket = visits.next(org) {
                            writer.whenCommitted(ticket) { replies.reply($0) }
                        } else {
                            failures.add(1, ordering: .relaxed)
                            replies.reply(nil)
                        }
                    }
                case .clients(let clients):
                    loops[t].run(org, writer, visits, clients: clients, requests: perThread)
                case .async:
                    var last: ChangeTicket?
                    for _ in 0..<perThread {
                        if let ticket = visits.next(org) { last = ticket } else { failures.add(1, ordering: .relaxed) }
                    }
                    if let last { lastTickets.withLock { $0.append(last) } }
                }
            }
            switch mode {
            case .replyPerDecision:
                replies.done.wait()
                failures.add(replies.failed.load(ordering: .relaxed), ordering: .relaxed)
            case .async:
                // The final flush: everything decided in this iteration is committed.
                if let last = lastTickets.withLock({ $0.max() }), !waitForCommit(writer, last) {
                    failures.add(1, ordering: .relaxed)
                }
            case .clients:
                for loop in loops { failures.add(loop.failed.load(ordering: .relaxed), ordering: .relaxed) }
            case .waitPerBatch:
                break
            }
            benchmark.stopMeasurement()

            let elapsed = DispatchTime.now().uptimeNanoseconds - started
            let after = writer.statistics
            let batches = after.batches - before.batches
            let changes = after.changes - before.changes
            benchmark.measurement(decisionsPerSecond, Int(Double(perThread * threads) * 1e9 / Double(elapsed)))
            if batches > 0 {
                benchmark.measurement(changesPerBatch, changes / batches)
                let commitNanoseconds = after.commitNanoseconds - before.commitNanoseconds
                benchmark.measurement(commitMicroseconds, Int(commitNanoseconds / UInt64(batches) / 1_000))
            }
            let failed = failures.load(ordering: .relaxed)
            if failed > 0 { benchmark.error("\(failed) decisions were not allowed or not committed") }
        } setup: {
            box.set(try await StoreFixture(durability: mode == .async ? .async : .commit, threads: threads))
        } teardown: {
            box.close()
        }
    }
}
