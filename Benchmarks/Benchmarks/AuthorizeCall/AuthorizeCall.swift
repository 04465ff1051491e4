import Benchmark
import CallgateCore
import Dispatch

// AuthorizeCall, the hot path, measured on the engine alone.
//
// Every benchmark builds its engine in `setup:` (outside the measurement; package-benchmark runs each
// benchmark in its own process, so nothing is shared between them) and precomputes the agent ids and
// destinations, so the measured loop only calls `authorizeCall`. One iteration is
// `scalingFactor.rawValue` decisions, so the scaled figures (`*`) are per decision.

/// A change sink that keeps nothing: the store's cost is measured elsewhere; this measures the engine.
final class DiscardingChangeSink: ChangeSink {
    func record(_ change: ChangeRecord) throws(CallgateError) -> ChangeTicket { ChangeTicket(sequence: 0) }
}

// MARK: - Data

/// Real US area codes; numbers cycle through them.
private let usAreaCodes: [UInt64] = [
    201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218, 219, 224, 225, 228,
    229, 231, 234, 239, 240, 248, 251, 252, 253, 254, 256, 260, 262, 267, 269, 270, 276, 281, 301, 302,
    303, 304, 305, 307, 308, 309, 310, 312, 313, 314, 315, 316, 317, 318, 319, 320,
]

/// The `index`-th US number of a series: `+1 AAA` + a 7-digit subscriber part from `firstSubscriber`
/// on (2xx-xxxx and up, so the exchange starts with 2–9). Unique per index within a series while
/// `index / 56` stays below `10_000_000 - firstSubscriber`.
private func usNumber(_ index: Int, firstSubscriber: UInt64) -> PhoneNumber {
    let areaCode = usAreaCodes[index % usAreaCodes.count]
    let subscriber = firstSubscriber + UInt64(index / usAreaCodes.count)
    precondition(subscriber >= 2_000_000 && subscriber <= 9_999_999)
    return PhoneNumber(digits: 10_000_000_000 + areaCode * 10_000_000 + subscriber)!
}

/// Agent ids such as `agent-000042`: 12 bytes, so a native small string (inline, no heap).
private func agentID(_ prefix: String, _ index: Int) -> String {
    let digits = String(index)
    return prefix + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
}

/// SplitMix64: a small deterministic generator, so every run visits the agents in the same order.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - Fixture

/// One organization with `agents` agents holding `numbersPerAgent` numbers each (daily limit 10M, so
/// every call is allowed), and optionally `limitedAgents` more whose numbers have a limit of 0.
final class Fixture: Sendable {
    let engine: Engine
    let organization: Organization
    let agents: Int
    let numbersPerAgent: Int

    /// Ids of the limit-0 agents (for the DENY benchmark), if any.
    let limitedAgents: [String]

    init(agents: Int, numbersPerAgent: Int = 5, limitedAgents limitedCount: Int = 0) throws {
        self.engine = Engine(clock: SystemClock(), changes: DiscardingChangeSink())
        self.organization = try self.engine.createOrganization(
            name: "Bench",
            timeZone: "America/New_York",
            actor: .system
        )
        self.agents = agents
        self.numbersPerAgent = numbersPerAgent
        let org = self.organization
        let terms = AssignmentTerms(dailyLimit: AssignmentTerms.maximumDailyLimit, allowedCountries: nil)
        for a in 0..<agents {
            let id = agentID("agent-", a)
            try org.upsertAgent(AgentInput(id: id), actor: .system)
            for k in 0..<numbersPerAgent {
                let number = usNumber(a * numbersPerAgent + k, firstSubscriber: 2_000_000)
                try org.addNumber(NumberInput(number: number, provider: "telnyx"), actor: .system)
                try org.assign(number, to: id, terms: terms, actor: .system)
            }
        }
        // Agents whose numbers all have a daily limit of 0: every call is DAILY_LIMIT_REACHED.
        var limited: [String] = []
        let limitTerms = AssignmentTerms(dailyLimit: 0, allowedCountries: nil)
        for a in 0..<limitedCount {
            let id = agentID("limit-", a)
            try org.upsertAgent(AgentInput(id: id), actor: .system)
            for k in 0..<numbersPerAgent {
                let number = usNumber(a * numbersPerAgent + k, firstSubscriber: 7_000_000)
                try org.addNumber(NumberInput(number: number, provider: "telnyx"), actor: .system)
                try org.assign(number, to: id, terms: limitTerms, actor: .system)
            }
            limited.append(id)
        }
        self.limitedAgents = limited
    }
}

/// A precomputed, pseudo-random visiting order over a set of agents, each with a destination, and a
/// cursor that carries on across iterations (so large fixtures are not served from a warm subset).
final class Visits: @unchecked Sendable {
    // @unchecked: `cursor` and `lastAllowed` are used by one thread at a time (one Visits per
    // benchmark thread, read by the benchmark closure only after concurrentPerform returns).
    let agentIDs: [String]
    let destinations: [PhoneNumber]
    var cursor = 0
    /// Calls allowed in the last ``run(_:count:)``.
    var lastAllowed = 0

    /// - Parameters:
    ///   - ids: the agents to visit; each appears once per pass, in shuffled order.
    ///   - seed: seed of the shuffle and of the destinations.
    init(ids: [String], seed: UInt64) {
        var rng = SplitMix64(state: seed)
        var order = ids
        order.shuffle(using: &rng)
        self.agentIDs = order
        // Destinations: US numbers over the same area codes, so some calls find a local number.
        self.destinations = (0..<order.count).map { _ in
            usNumber(Int(rng.next() % 1_000_000), firstSubscriber: 4_000_000)
        }
    }

    /// Runs `count` decisions from the cursor on; sets ``lastAllowed``.
    func run(_ organization: Organization, count: Int) throws(CallgateError) {
        let ids = self.agentIDs
        let destinations = self.destinations
        let n = ids.count
        var i = self.cursor
        var allowed = 0
        for _ in 0..<count {
            let decision = try organization.authorizeCall(agent: ids[i], destination: destinations[i])
            allowed &+= decision.isAllowed ? 1 : 0
            blackHole(decision)
            i &+= 1
            if i == n { i = 0 }
        }
        self.cursor = i
        self.lastAllowed = allowed
    }
}

/// A fixture with one visiting order over all its regular agents.
struct SingleThreadState {
    let fixture: Fixture
    let visits: Visits
}

/// The measured loop of the single-thread benchmarks: `scaledIterations` decisions from the cursor
/// on, nothing else. Returns how many were allowed.
private func measure(_ benchmark: Benchmark, _ state: SingleThreadState) throws(CallgateError) -> Int {
    let organization = state.fixture.organization
    let visits = state.visits
    let ids = visits.agentIDs
    let destinations = visits.destinations
    let n = ids.count
    var i = visits.cursor
    var allowed = 0
    benchmark.startMeasurement()
    for _ in benchmark.scaledIterations {
        let decision = try organization.authorizeCall(agent: ids[i], destination: destinations[i])
        allowed &+= decision.isAllowed ? 1 : 0
        blackHole(decision)
        i &+= 1
        if i == n { i = 0 }
    }
    benchmark.stopMeasurement()
    visits.cursor = i
    return allowed
}

/// Ids of the fixture's regular agents whose index is `part` modulo `parts`.
private func agentIDs(of fixture: Fixture, part: Int = 0, parts: Int = 1) -> [String] {
    stride(from: part, to: fixture.agents, by: parts).map { agentID("agent-", $0) }
}

/// Fails setup unless a dry run of the first visit comes out as expected (`allowed`).
private func check(_ fixture: Fixture, _ visits: Visits, allowed: Bool) throws {
    let decision = try fixture.organization.authorizeCall(
        agent: visits.agentIDs[0],
        destination: visits.destinations[0],
        dryRun: true
    )
    guard decision.isAllowed == allowed else {
        throw BenchmarkSetupError(message: "unexpected decision in setup: \(decision)")
    }
}

struct BenchmarkSetupError: Error, CustomStringConvertible {
    let message: String
    var description: String { self.message }
}

// MARK: - Benchmarks

let benchmarks: @Sendable () -> Void = {
    /// No malloc on the hot path, checked against `Thresholds/AuthorizeCall.<name>.p90.json`
    /// (`{"mallocCountTotal": 0}`) with no tolerance.
    let noMalloc: [BenchmarkMetric: BenchmarkThresholds] = [.mallocCountTotal: .init(absolute: [.p90: 0])]

    // No `.cpuTotal` here: on Linux it is read from /proc with 10 ms resolution (0 or 10,000 ns for
    // an iteration of ~0.5 ms), and reading it mallocs 16 times per iteration inside the measured
    // window, which would hide the engine's own zero. The two-thread benchmark keeps it.
    let singleThread = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        timeUnits: .nanoseconds,
        warmupIterations: 20,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 1_000_000,
        thresholds: noMalloc
    )

    // 1. ALLOW with automatic caller-ID selection, at three sizes.
    for (name, agents) in [
        ("AuthorizeCall 1k assignments", 200),
        ("AuthorizeCall 100k agents x 5", 100_000),
        ("AuthorizeCall 1M assignments", 200_000),
    ] {
        Benchmark(name, configuration: singleThread) { (benchmark, state: SingleThreadState) throws in
            let allowed = try measure(benchmark, state)
            let expected = benchmark.scaledIterations.count
            if allowed != expected { benchmark.error("only \(allowed) of \(expected) calls were allowed") }
        } setup: {
            let fixture = try Fixture(agents: agents)
            let visits = Visits(ids: agentIDs(of: fixture), seed: 42)
            try check(fixture, visits, allowed: true)
            return SingleThreadState(fixture: fixture, visits: visits)
        }
    }

    // 2. DENY: DAILY_LIMIT_REACHED. The 100k x 5 engine plus 1,000 agents whose 5 numbers have a daily
    // limit of 0: the selection scans every holding, finds none under its limit, and reports the best
    // one at its limit; nothing is recorded.
    Benchmark("AuthorizeCall deny (limit reached)", configuration: singleThread) {
        (benchmark, state: SingleThreadState) throws in
        let allowed = try measure(benchmark, state)
        if allowed != 0 { benchmark.error("\(allowed) calls were allowed, expected none") }
    } setup: {
        let fixture = try Fixture(agents: 100_000, limitedAgents: 1_000)
        let visits = Visits(ids: fixture.limitedAgents, seed: 43)
        try check(fixture, visits, allowed: false)
        return SingleThreadState(fixture: fixture, visits: visits)
    }

    // 3. Two threads on the 100k x 5 engine, each deciding for its own half of the agents (even and odd
    // indexes). One iteration = one concurrentPerform of two batches of 500k decisions: the scaled
    // figures are per decision across both threads (wall clock per decision = 1 / aggregate
    // throughput, which the table rounds to whole millions; CPU total counts both threads). Thread
    // dispatch and the `.cpuTotal` probe allocate a few times per iteration (about 21 per 1M
    // decisions), so this benchmark checks no malloc threshold.
    Benchmark(
        "AuthorizeCall 2 threads",
        configuration: .init(
            metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
            timeUnits: .nanoseconds,
            warmupIterations: 1,
            scalingFactor: .mega,
            maxDuration: .seconds(3),
            maxIterations: 1_000,
            thresholds: nil
        )
    ) { (benchmark, state: (fixture: Fixture, halves: [Visits])) in
        let perThread = benchmark.scaledIterations.count / state.halves.count
        let organization = state.fixture.organization
        let halves = state.halves
        benchmark.startMeasurement()
        DispatchQueue.concurrentPerform(iterations: halves.count) { t in
            do {
                try halves[t].run(organization, count: perThread)
            } catch {
                halves[t].lastAllowed = 0
            }
        }
        benchmark.stopMeasurement()
        let total = halves.reduce(0) { $0 + $1.lastAllowed }
        if total != perThread * halves.count {
            benchmark.error("only \(total) of \(perThread * halves.count) calls were allowed")
        }
    } setup: {
        let fixture = try Fixture(agents: 100_000)
        let halves = (0..<2).map { t in
            Visits(ids: agentIDs(of: fixture, part: t, parts: 2), seed: 44 + UInt64(t))
        }
        for half in halves { try check(fixture, half, allowed: true) }
        return (fixture: fixture, halves: halves)
    }
}
