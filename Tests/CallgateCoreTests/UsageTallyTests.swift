import Testing

@testable import CallgateCore

/// The usage tallies counted on the hot path and taken by the store.
@Suite struct UsageTallyTests {
    /// The record of (day, agent, number) in what was taken, or `nil`.
    static func record(
        _ records: [UsageRecord],
        _ day: String,
        _ agent: String,
        _ number: PhoneNumber?
    ) -> UsageRecord? {
        records.first { $0.day == day && $0.agent == agent && $0.number == number }
    }

    static func hours(_ record: UsageRecord?) -> [Int: UInt32] {
        var result: [Int: UInt32] = [:]
        for (hour, calls) in (record?.allowedByHour ?? []).enumerated() where calls > 0 { result[hour] = calls }
        return result
    }

    @Test func allowsCountInTheLocalHourOfTheirNumber() throws {
        // 15:00 UTC is 11:00 in New York (EDT).
        let f = try Fixture()
        let numbers = try f.agent("a1", numbers: ["+1 202 555 0101", "+1 202 555 0102"])
        for _ in 0..<3 { _ = try f.authorize("a1", "+1 212 555 0199", from: "+1 202 555 0101") }
        f.clock.advance(seconds: 3600 + 59)  // 12:00:59
        _ = try f.authorize("a1", "+1 212 555 0199", from: "+1 202 555 0102")
        _ = try f.authorize("a1", "+1 212 555 0199", from: "+1 202 555 0101")

        let records = f.org.takeUsage().records
        #expect(records.count == 2)
        let first = try #require(Self.record(records, "2026-06-15", "a1", numbers[0]))
        #expect(Self.hours(first) == [11: 3, 12: 1])
        #expect(first.allowed == 4)
        #expect(first.denied.allSatisfy { $0 == 0 })
        #expect(Self.hours(Self.record(records, "2026-06-15", "a1", numbers[1])) == [12: 1])
    }

    @Test func denialsCountByReasonAndNumber() throws {
        let f = try Fixture()
        let numbers = try f.agent("a1", numbers: ["+1 202 555 0101"], limit: 1)
        let other = try f.agent("a2", numbers: ["+1 202 555 0109"])
        try f.org.upsertAgent(AgentInput(id: "idle"), actor: admin)
        #expect(try f.authorize("a1", "+1 212 555 0199").isAllowed)
        #expect(try f.authorize("a1", "+1 212 555 0199").denyReason == .dailyLimitReached)
        #expect(try f.authorize("a1", "+1 212 555 0199", from: "+1 202 555 0101").denyReason == .dailyLimitReached)
        #expect(try f.authorize("a1", "+44 20 7946 0000", from: "+1 202 555 0101").denyReason == .countryNotAllowed)
        #expect(try f.authorize("a1", "+44 20 7946 0000").denyReason == .countryNotAllowed)
        #expect(
            try f.authorize("a1", "+1 212 555 0199", from: "+1 202 555 0109").denyReason == .numberNotAssignedToAgent
        )
        #expect(try f.authorize("idle", "+1 212 555 0199").denyReason == .noAssignment)
        #expect(try f.authorize("ghost", "+1 212 555 0199").denyReason == .unknownAgent)
        #expect(try f.authorize("ghost", "+1 212 555 0199").denyReason == .unknownAgent)
        // A destination the server could not read at all.
        #expect(
            f.org.denyUnparsableDestination(agent: "a1", callerID: numbers[0], dryRun: false).denyReason
                == .invalidDestination
        )
        #expect(
            f.org.denyUnparsableDestination(agent: "ghost", callerID: nil, dryRun: false).denyReason
                == .invalidDestination
        )
        try f.org.deactivateAgent("a2", actor: admin)
        #expect(try f.authorize("a2", "+1 212 555 0199").denyReason == .agentInactive)
        // Dry runs are not calls: nothing is counted.
        #expect(try f.authorize("a1", "+1 212 555 0199", dryRun: true).denyReason == .dailyLimitReached)
        #expect(try f.authorize("ghost", "+1 212 555 0199", dryRun: true).denyReason == .unknownAgent)
        #expect(
            f.org.denyUnparsableDestination(agent: "a1", callerID: nil, dryRun: true).denyReason == .invalidDestination
        )

        let records = f.org.takeUsage().records
        let day = "2026-06-15"
        let held = try #require(Self.record(records, day, "a1", numbers[0]))
        #expect(held.allowed == 1)
        #expect(held.denied(.dailyLimitReached) == 2)
        #expect(held.denied(.countryNotAllowed) == 1)
        #expect(held.denied(.invalidDestination) == 1)
        #expect(held.denied.reduce(0, +) == 4)
        // Denials tied to none of the agent's numbers (the other agent's number is not a1's).
        let none = try #require(Self.record(records, day, "a1", nil))
        #expect(none.denied(.countryNotAllowed) == 1)
        #expect(none.denied(.numberNotAssignedToAgent) == 1)
        #expect(none.denied.reduce(0, +) == 2 && none.allowed == 0)
        #expect(Self.record(records, day, "a1", other[0]) == nil)
        #expect(Self.record(records, day, "idle", nil)?.denied(.noAssignment) == 1)
        #expect(Self.record(records, day, "a2", nil)?.denied(.agentInactive) == 1)
        let unknown = try #require(Self.record(records, day, "", nil))
        #expect(unknown.denied(.unknownAgent) == 2)
        #expect(unknown.denied(.invalidDestination) == 1)
        #expect(records.count == 5)
    }

    @Test func theDayRollsOverAtLocalMidnight() throws {
        let f = try Fixture(now: utc(2026, 6, 16, 3, 30))  // 23:30 on June 15 in New York
        let numbers = try f.agent("a1", numbers: ["+1 202 555 0101"], limit: 1)
        #expect(try f.authorize("a1", "+1 212 555 0199").isAllowed)
        #expect(try f.authorize("a1", "+1 212 555 0199").denyReason == .dailyLimitReached)
        _ = try f.authorize("ghost", "+1 212 555 0199")
        f.clock.set(utc(2026, 6, 16, 4, 0, 1))  // 00:00:01 on June 16: a new day, a new count
        #expect(try f.authorize("a1", "+1 212 555 0199").isAllowed)
        _ = try f.authorize("ghost", "+1 212 555 0199")
        _ = try f.authorize("ghost", "+1 212 555 0199")

        let records = f.org.takeUsage().records
        let before = try #require(Self.record(records, "2026-06-15", "a1", numbers[0]))
        #expect(Self.hours(before) == [23: 1] && before.denied(.dailyLimitReached) == 1)
        let after = try #require(Self.record(records, "2026-06-16", "a1", numbers[0]))
        #expect(Self.hours(after) == [0: 1] && after.denied.allSatisfy { $0 == 0 })
        #expect(Self.record(records, "2026-06-15", "", nil)?.denied(.unknownAgent) == 1)
        #expect(Self.record(records, "2026-06-16", "", nil)?.denied(.unknownAgent) == 2)
    }

    @Test func theHourRepeatedByDSTCountsOnce() throws {
        // 2026-11-01 in New York: 01:00–01:59 happens twice (EDT, then EST from 06:00 UTC).
        let f = try Fixture(now: utc(2026, 11, 1, 5, 30))  // 01:30 EDT
        let numbers = try f.agent("a1", numbers: ["+1 202 555 0101"])
        _ = try f.authorize("a1", "+1 212 555 0199")
        f.clock.set(utc(2026, 11, 1, 6, 30))  // 01:30 EST
        _ = try f.authorize("a1", "+1 212 555 0199")
        f.clock.set(utc(2026, 11, 1, 7, 30))  // 02:30 EST
        _ = try f.authorize("a1", "+1 212 555 0199")
        let record = Self.record(f.org.takeUsage().records, "2026-11-01", "a1", numbers[0])
        #expect(Self.hours(record) == [1: 2, 2: 1])
    }

    @Test func whatWasStoredIsRemovedAndTheRestStays() throws {
        let f = try Fixture()
        let numbers = try f.agent("a1", numbers: ["+1 202 555 0101"])
        _ = try f.authorize("a1", "+1 212 555 0199")
        _ = try f.authorize("ghost", "+1 212 555 0199")
        let snapshot = f.org.takeUsage()
        #expect(snapshot.parts.count == 2)
        // Counted after the take: not in it, and not removed by confirming it.
        _ = try f.authorize("a1", "+1 212 555 0199")
        _ = try f.authorize("a1", "+1 212 555 0199")
        for part in snapshot.parts { f.org.usageStored(part) }
        let next = f.org.takeUsage().records
        #expect(next.count == 1)
        #expect(Self.record(next, "2026-06-15", "a1", numbers[0])?.allowed == 2)
        // The unknown agent's denial was taken with the first snapshot.
        #expect(Self.record(next, "2026-06-15", "", nil) == nil)
    }

    @Test func whatTheStoreRefusedIsTakenAgain() throws {
        let f = try Fixture()
        let numbers = try f.agent("a1", numbers: ["+1 202 555 0101"])
        _ = try f.authorize("a1", "+1 212 555 0199")
        _ = try f.authorize("ghost", "+1 212 555 0199")
        let refused = f.org.takeUsage()
        for part in refused.parts { f.org.usageNotStored(part) }
        _ = try f.authorize("ghost", "+1 212 555 0199")
        let again = f.org.takeUsage().records
        #expect(Self.record(again, "2026-06-15", "a1", numbers[0])?.allowed == 1)
        #expect(Self.record(again, "2026-06-15", "", nil)?.denied(.unknownAgent) == 2)
    }

    @Test func aDayTallyKeepsTheDayBeforeUntilTaken() {
        let tally = DayTally()
        tally.add(dayStartMinute: 1000)
        tally.add(dayStartMinute: 1000)
        tally.add(dayStartMinute: 2440)  // the next day: the first day's count moves aside
        tally.add(dayStartMinute: 2440, count: 4)
        let taken = tally.take()
        #expect(taken.map(\.tag) == [1000, 2440] && taken.map(\.count) == [2, 5])
        #expect(tally.take().isEmpty)
        tally.giveBack(tag: 1000, count: 2)
        tally.add(dayStartMinute: 2440)
        let again = tally.take().sorted { $0.tag < $1.tag }
        #expect(again.map(\.tag) == [1000, 2440] && again.map(\.count) == [2, 1])
    }

    @Test func capacityIsReservedForEveryNumberAndHour() throws {
        let f = try Fixture()
        try f.agent("a1", numbers: ["+1 202 555 0101", "+1 202 555 0102", "+1 202 555 0103"])
        f.org.reserveUsageCapacity()
        let capacity = try #require(f.org.directory.lookup("a1")).state.withLock { $0.usage.slots.capacity }
        #expect(capacity >= 2 * (3 + 1))
    }

    @Test func localDatesParseStrictlyAndCount() {
        #expect(LocalDate("2026-11-21")?.description == "2026-11-21")
        #expect(LocalDate("2024-02-29") != nil)
        for bad in ["2026-02-29", "2026-13-01", "2026-00-10", "2026-1-01", "26-11-21", "2026/11/21", "", "2026-11-21x"]
        {
            #expect(LocalDate(bad) == nil, "\(bad)")
        }
        let date = LocalDate("2026-03-01")!
        #expect(date.adding(days: -1).description == "2026-02-28")
        #expect(date.adding(days: 365).description == "2027-03-01")
        #expect(LocalDate("1970-01-01")?.ordinal == 0)
        #expect(LocalDate(ordinal: date.ordinal) == date)
    }
}
