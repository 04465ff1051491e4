import CallgateClient
import CallgateWire
import Foundation

/// The agents and numbers a load run works on: `--seed agents=N,numbers-per-agent=K[,limit=L][,countries=US][,spare=S]`.
public struct LoadSeed: Sendable, Hashable, Codable {
    /// Agents `load-agent-0` … `load-agent-<agents - 1>`.
    public var agents: Int
    /// Numbers assigned to each agent (agent i holds numbers i·K … i·K + K − 1 of ``LoadNumbering``).
    public var numbersPerAgent: Int
    /// The assignments' daily limit: high by default, so that a run measures the hot path, not denials.
    public var dailyLimit: UInt32 = 1_000_000
    /// The assignments' allowed countries; empty means the number's own (US).
    public var countries: [String] = []
    /// Unassigned numbers after the agents' ones, for the PickNumber / Assign / Release mix.
    public var spare = 0

    public init(
        agents: Int,
        numbersPerAgent: Int,
        dailyLimit: UInt32 = 1_000_000,
        countries: [String] = [],
        spare: Int = 0
    ) {
        self.agents = agents
        self.numbersPerAgent = numbersPerAgent
        self.dailyLimit = dailyLimit
        self.countries = countries
        self.spare = spare
    }

    /// Parses `agents=N,numbers-per-agent=K[,limit=L][,countries=US+CA][,spare=S]` (countries separated by
    /// `+` or `/`, since `,` separates the items).
    public init(parsing text: String) throws(LoadError) {
        var agents: Int?
        var perAgent: Int?
        self.init(agents: 0, numbersPerAgent: 0)
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingSpaces() }
            guard parts.count == 2 else {
                throw LoadError.invalidConfiguration("seed items are NAME=VALUE, not '\(item)'")
            }
            let (name, value) = (parts[0].lowercased(), parts[1])
            switch name {
            case "agents":
                guard let n = Int(value), n >= 1 else { throw LoadError.invalidConfiguration("agents must be ≥ 1") }
                agents = n
            case "numbers-per-agent", "numbers_per_agent", "numbers":
                guard let n = Int(value), n >= 1 else {
                    throw LoadError.invalidConfiguration("numbers-per-agent must be ≥ 1")
                }
                perAgent = n
            case "limit":
                guard let n = UInt32(value), n >= 1 else {
                    throw LoadError.invalidConfiguration("limit must be 1 to \(UInt32.max)")
                }
                self.dailyLimit = n
            case "countries":
                self.countries = value.split(whereSeparator: { $0 == "+" || $0 == "/" || $0 == " " })
                    .map { $0.uppercased() }
            case "spare":
                guard let n = Int(value), n >= 0 else { throw LoadError.invalidConfiguration("spare must be ≥ 0") }
                self.spare = n
            default:
                throw LoadError.invalidConfiguration(
                    "unknown seed item '\(name)' (agents, numbers-per-agent, limit, countries, spare)"
                )
            }
        }
        guard let agents, let perAgent else {
            throw LoadError.invalidConfiguration("--seed needs agents=N and numbers-per-agent=K")
        }
        self.agents = agents
        self.numbersPerAgent = perAgent
        guard self.totalNumbers <= LoadNumbering.capacity else {
            throw LoadError.invalidConfiguration(
                "the seed needs \(self.totalNumbers) numbers; at most \(LoadNumbering.capacity) are available"
            )
        }
    }

    /// Numbers the seed creates: the agents' and the spares.
    public var totalNumbers: Int { self.agents * self.numbersPerAgent + self.spare }
}

/// The names the load generator gives its agents and numbers.
public enum LoadNumbering {
    /// `load-agent-<index>`.
    public static func agentID(_ index: Int) -> String { "load-agent-\(index)" }

    /// Exchanges 200…999 of area code 415, except 555 (whose 01xx lines are reserved for fiction): 799
    /// exchanges of 10,000 lines.
    public static let capacity = 799 * 10_000

    /// The number of index `index` (0 ..< ``capacity``): `+1415XXXLLLL`, valid NANP, unique per index.
    public static func number(_ index: Int) -> String {
        precondition(index >= 0 && index < capacity, "number index out of range")
        var exchange = 200 + index / 10_000
        if exchange >= 555 { exchange += 1 }
        let line = index % 10_000
        let lineText = String(line)
        return "+1415\(exchange)" + String(repeating: "0", count: 4 - lineText.count) + lineText
    }

    /// A destination in the US (New York, 212) for agent `index`: the AuthorizeCall of that agent that
    /// should be allowed.
    public static func allowedDestination(_ index: Int) -> String {
        let exchange = 200 + index % 300
        let line = String((index &* 7919) % 10_000)
        return "+1212\(exchange)" + String(repeating: "0", count: 4 - line.count) + line
    }
}

/// What seeding did.
public struct SeedReport: Sendable, Hashable, Codable {
    public var agents = 0
    public var numbersAdded = 0
    public var numbersExisting = 0
    public var assigned = 0
    public var alreadyAssigned = 0
    public var spareNumbers = 0
    public var seconds = 0.0

    public init() {}

    /// `seeded 10000 agents, 50000 numbers (50000 new), 50000 assignments (50000 new) in 4.2 s`.
    public var summary: String {
        let numbers = self.numbersAdded + self.numbersExisting
        let assignments = self.assigned + self.alreadyAssigned
        return "seeded \(self.agents) agents, \(numbers) numbers (\(self.numbersAdded) new), "
            + "\(assignments) assignments (\(self.assigned) new) in \(String(format: "%.1f", self.seconds)) s"
    }
}

/// Creates the seed's agents and numbers through the admin API, `concurrency` requests in flight over one
/// connection: upsert each agent, then add each number and assign it to its agent. Numbers that are there
/// (`ALREADY_EXISTS`) and assignments that are there (`FAILED_PRECONDITION`) count as done, so seeding twice
/// is harmless (the second run does not change terms of assignments that exist).
public func seedLoadData(
    _ seed: LoadSeed,
    configuration: LoadConfiguration,
    concurrency: Int = 64
) async throws -> SeedReport {
    let started = ContinuousClock.now
    return try await withAdminClient(configuration) { client in
        var report = try await performSeed(seed, client: client, concurrency: concurrency)
        report.seconds = (ContinuousClock.now - started).seconds
        return report
    }
}

private func performSeed(_ seed: LoadSeed, client: CallgateClient, concurrency: Int) async throws -> SeedReport {
    let agentResults = try await forEachConcurrently(seed.agents, limit: concurrency) { index in
        _ = try await client.upsertAgent(Wire.UpsertAgentRequest(id: LoadNumbering.agentID(index)))
        return SeedStep.created
    }
    var report = SeedReport()
    report.agents = agentResults.created

    let assignedCount = seed.agents * seed.numbersPerAgent
    let terms = Wire.AssignmentTerms(dailyLimit: seed.dailyLimit, allowedCountries: seed.countries)
    let numberResults = try await forEachConcurrently(seed.totalNumbers, limit: concurrency) { index in
        let number = LoadNumbering.number(index)
        var step = SeedStep.created
        do {
            _ = try await client.addNumber(Wire.AddNumberRequest(number: number, provider: "load", tags: ["load"]))
        } catch let error as CallgateClientError where error.statusCode == .alreadyExists {
            step = .existed
        }
        guard index < assignedCount else { return step == .created ? .spareCreated : .spareExisted }
        let agent = LoadNumbering.agentID(index / seed.numbersPerAgent)
        do {
            _ = try await client.assign(Wire.AssignRequest(number: number, agentID: agent, terms: terms))
            return step == .created ? .created : .existedAssigned
        } catch let error as CallgateClientError where error.statusCode == .failedPrecondition {
            return step == .created ? .createdAlreadyAssigned : .existed
        }
    }
    report.numbersAdded = numberResults.created + numberResults.createdAlreadyAssigned + numberResults.spareCreated
    report.numbersExisting = numberResults.existed + numberResults.existedAssigned + numberResults.spareExisted
    report.assigned = numberResults.created + numberResults.existedAssigned
    report.alreadyAssigned = numberResults.existed + numberResults.createdAlreadyAssigned
    report.spareNumbers = seed.spare
    return report
}

/// Releases the spare numbers (ignoring "not assigned") so that a lifecycle mix starts from available ones.
func releaseSpares(_ configuration: LoadConfiguration, concurrency: Int = 64) async throws {
    let first = configuration.agentCount * configuration.numbersPerAgent
    try await withAdminClient(configuration) { client in
        _ = try await forEachConcurrently(configuration.spareNumbers, limit: concurrency) { index in
            _ = try? await client.release(Wire.ReleaseRequest(number: LoadNumbering.number(first + index)))
            return SeedStep.created
        }
    }
}

/// Connects an admin client, runs `body`, and closes the client.
func withAdminClient<T>(
    _ configuration: LoadConfiguration,
    _ body: (CallgateClient) async throws -> T
) async throws -> T {
    let client = try await connectAdmin(configuration)
    do {
        let result = try await body(client)
        await client.close()
        return result
    } catch {
        await client.close()
        throw error
    }
}

func connectAdmin(_ configuration: LoadConfiguration) async throws -> CallgateClient {
    var clientConfiguration = CallgateClientConfiguration(
        host: configuration.host,
        port: configuration.port,
        apiKey: configuration.apiKey,
        clientName: configuration.clientName + " (seed)"
    )
    clientConfiguration.requestTimeout = .seconds(60)
    clientConfiguration.tls = configuration.tls
    do {
        return try await CallgateClient.connect(clientConfiguration)
    } catch {
        throw LoadError.connectFailed("\(error)")
    }
}

enum SeedStep: Sendable {
    case created, existed, existedAssigned, createdAlreadyAssigned, spareCreated, spareExisted
}

struct SeedCounts {
    var created = 0
    var existed = 0
    var existedAssigned = 0
    var createdAlreadyAssigned = 0
    var spareCreated = 0
    var spareExisted = 0
}

/// Runs `body(0 ..< count)` with at most `limit` calls in flight; the first unexpected error stops it.
func forEachConcurrently(
    _ count: Int,
    limit: Int,
    _ body: @escaping @Sendable (Int) async throws -> SeedStep
) async throws -> SeedCounts {
    try await withThrowingTaskGroup(of: SeedStep.self) { group in
        var counts = SeedCounts()
        var next = 0
        func tally(_ step: SeedStep) {
            switch step {
            case .created: counts.created += 1
            case .existed: counts.existed += 1
            case .existedAssigned: counts.existedAssigned += 1
            case .createdAlreadyAssigned: counts.createdAlreadyAssigned += 1
            case .spareCreated: counts.spareCreated += 1
            case .spareExisted: counts.spareExisted += 1
            }
        }
        while next < min(count, max(1, limit)) {
            let index = next
            group.addTask { try await body(index) }
            next += 1
        }
        do {
            while let step = try await group.next() {
                tally(step)
                if next < count {
                    let index = next
                    group.addTask { try await body(index) }
                    next += 1
                }
            }
        } catch {
            group.cancelAll()
            throw LoadError.seedFailed("seeding failed: \(error)")
        }
        return counts
    }
}
