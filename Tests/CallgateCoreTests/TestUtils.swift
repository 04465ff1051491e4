import Testing

@testable import CallgateCore

/// The instant of a UTC civil time.
func utc(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0) -> Timestamp {
    // Days from civil (Howard Hinnant).
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = (month + 9) % 12
    let doy = (153 * mp + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    let days = era * 146_097 + doe - 719_468
    return Timestamp(seconds: Int64(days * 86_400 + hour * 3600 + minute * 60 + second))
}

/// Parses a number that the test knows to be good.
func num(_ text: String) -> PhoneNumber {
    do {
        return try PhoneNumber.parse(text)
    } catch {
        Issue.record("bad test number \(text): \(error)")
        return PhoneNumber(digits: 1)!
    }
}

func country(_ code: String) -> Country { Country(code: code)! }

let admin = Actor("key:test-admin")

/// An engine with a manual clock and an in-memory change log, and one organization.
struct Fixture {
    let clock: ManualClock
    let log: InMemoryChangeLog
    let engine: Engine
    let org: Organization

    init(timeZone: String = "America/New_York", now: Timestamp = utc(2026, 6, 15, 15)) throws {
        self.clock = ManualClock(now)
        self.log = InMemoryChangeLog()
        self.engine = Engine(clock: self.clock, changes: self.log)
        self.org = try self.engine.createOrganization(name: "Acme Dialing", timeZone: timeZone, actor: admin)
    }

    /// Adds an agent and numbers, and assigns them with the given terms.
    @discardableResult
    func agent(
        _ id: String,
        numbers: [String],
        limit: UInt32 = 100,
        countries: [String]? = nil
    ) throws -> [PhoneNumber] {
        try self.org.upsertAgent(AgentInput(id: id, displayName: "Agent \(id)"), actor: admin)
        var result: [PhoneNumber] = []
        for text in numbers {
            let n = num(text)
            try self.org.addNumber(NumberInput(number: n, provider: "telnyx"), actor: admin)
            let set = try countries.map { try CountrySet(codes: $0) }
            try self.org.assign(
                n,
                to: id,
                terms: AssignmentTerms(dailyLimit: limit, allowedCountries: set),
                actor: admin
            )
            result.append(n)
        }
        return result
    }

    func authorize(
        _ agent: String,
        _ destination: String,
        from: String? = nil,
        dryRun: Bool = false
    ) throws -> CallDecision {
        try self.org.authorizeCall(agent: agent, destination: num(destination), from: from.map(num), dryRun: dryRun)
    }
}
