import CallgateCore
import Foundation
import Testing

@testable import CallgateStore

/// Usage tallies through the writer, the report read back, and retention.
@Suite struct UsageStoreTests {
    static let n1 = n("+1 202 555 0101")
    static let n2 = n("+1 202 555 0102")
    static let n3 = n("+1 202 555 0103")
    static let us = n("+1 212 555 0199")
    static let gb = n("+44 20 7946 0000")

    /// Agents a1 (n1, n2, limit 3) and a2 (n3, limit 5) in a New York organization.
    static func setUp(_ store: Store) throws -> Organization {
        let org = try store.engine.createOrganization(name: "Acme", timeZone: "America/New_York", actor: admin)
        for agent in ["a1", "a2"] { try org.upsertAgent(AgentInput(id: agent), actor: admin) }
        for (number, agent, limit) in [(n1, "a1", 3), (n2, "a1", 3), (n3, "a2", 5)] as [(PhoneNumber, String, UInt32)] {
            try org.addNumber(NumberInput(number: number, provider: "telnyx"), actor: admin)
            try org.assign(number, to: agent, terms: AssignmentTerms(dailyLimit: limit), actor: admin)
        }
        return org
    }

    static func day(_ text: String) -> LocalDate { LocalDate(text)! }

    static func query(
        _ from: String,
        _ to: String? = nil,
        by: UsageGrouping = .agent,
        agent: String? = nil,
        number: PhoneNumber? = nil,
        perDay: Bool = false
    ) throws -> UsageQuery {
        try UsageQuery(from: day(from), to: day(to ?? from), groupBy: by, agent: agent, number: number, perDay: perDay)
    }

    @Test func talliesAreStoredAsDeltasAndReportedExactly() async throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let clock = ManualClock(start)  // 11:00 in New York
        do {
            let store = try Store.open(StoreConfiguration(path: path), clock: clock)
            let org = try Self.setUp(store)
            for _ in 0..<3 { _ = try org.authorizeCall(agent: "a1", destination: Self.us, from: Self.n1) }
            #expect(
                try org.authorizeCall(agent: "a1", destination: Self.us, from: Self.n1).denyReason == .dailyLimitReached
            )
            #expect(try org.authorizeCall(agent: "a1", destination: Self.gb).denyReason == .countryNotAllowed)
            clock.advance(seconds: 2 * 3600)  // 13:00
            for _ in 0..<2 { _ = try org.authorizeCall(agent: "a1", destination: Self.us, from: Self.n2) }
            _ = try org.authorizeCall(agent: "a2", destination: Self.us)
            _ = try org.authorizeCall(agent: "ghost", destination: Self.us)
            #expect(try store.usage.takeNow() == 5)  // a1: n1, n2, no number; a2: n3; unknown agents
            #expect(try store.usage.takeNow() == 0)  // nothing new

            let byAgent = try store.usage.report(org.id, Self.query("2026-06-15"))
            #expect(byAgent.rows.map(\.key) == ["a1", "a2"] && byAgent.nextCursor == nil)
            let a1 = byAgent.rows[0]
            #expect(a1.allowed == 5 && a1.deniedTotal == 2)
            #expect(a1.denied(.dailyLimitReached) == 1 && a1.denied(.countryNotAllowed) == 1)
            #expect(a1.allowedByHour[11] == 3 && a1.allowedByHour[13] == 2 && a1.allowedByHour.reduce(0, +) == 5)
            #expect(a1.peakHour?.hour == 11 && a1.peakHour?.calls == 3)
            #expect(byAgent.rows[1].allowed == 1 && byAgent.rows[1].peakHour?.hour == 13)
            #expect(byAgent.unknownAgents?.denied(.unknownAgent) == 1)
            #expect(byAgent.unknownAgents?.deniedTotal == 1)

            let byNumber = try store.usage.report(org.id, Self.query("2026-06-15", by: .number))
            #expect(byNumber.rows.map(\.key) == ["+12025550101", "+12025550102", "+12025550103"])
            #expect(byNumber.rows.map(\.allowed) == [3, 2, 1])
            #expect(byNumber.rows[0].denied(.dailyLimitReached) == 1 && byNumber.rows[0].deniedTotal == 1)
            #expect(byNumber.unknownAgents == nil)
            // Another day of the range has nothing; a range without calls is empty.
            #expect(try store.usage.report(org.id, Self.query("2026-06-14", "2026-06-16")).rows.count == 2)
            #expect(try store.usage.report(org.id, Self.query("2026-06-16", "2026-07-16")).rows.isEmpty)
            // Calls not yet taken are written when the store closes.
            _ = try org.authorizeCall(agent: "a2", destination: Self.us)
            store.close()
        }
        let store = try Store.open(StoreConfiguration(path: path), clock: clock)
        defer { store.close() }
        let org = try #require(store.engine.organization(OrganizationID(1)))
        #expect(try store.usage.report(org.id, Self.query("2026-06-15")).rows.map(\.allowed) == [5, 2])
        // After a restart the tallies add up: deltas, never overwritten.
        _ = try org.authorizeCall(agent: "a2", destination: Self.us)
        // A counter reset lowers the counter, not the calls made: by number, the larger of the two.
        try org.resetCounters([Self.n3], actor: admin)
        _ = try org.authorizeCall(agent: "a2", destination: Self.us)
        try store.usage.takeNow()
        #expect(try store.usage.report(org.id, Self.query("2026-06-15")).rows.map(\.allowed) == [5, 4])
        let n3 = try store.usage.report(org.id, Self.query("2026-06-15", by: .number, number: Self.n3))
        #expect(n3.rows.map(\.allowed) == [4] && org.number(Self.n3)?.counter.count == 1)
    }

    @Test func daysFiltersAndPages() async throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let clock = ManualClock(start)
        let store = try Store.open(StoreConfiguration(path: path), clock: clock)
        defer { store.close() }
        let org = try Self.setUp(store)
        for id in ["b1", "b2", "b3"] {
            try org.upsertAgent(AgentInput(id: id), actor: admin)
            _ = try org.authorizeCall(agent: id, destination: Self.us)  // NO_ASSIGNMENT
        }
        _ = try org.authorizeCall(agent: "a1", destination: Self.us, from: Self.n1)
        clock.advance(seconds: 86_400)  // June 16
        _ = try org.authorizeCall(agent: "a1", destination: Self.us, from: Self.n1)
        _ = try org.authorizeCall(agent: "a1", destination: Self.us, from: Self.n2)
        try store.usage.takeNow()

        // Two days of a1: per day, or one row for the range.
        let perDay = try store.usage.report(org.id, Self.query("2026-06-15", "2026-06-16", agent: "a1", perDay: true))
        #expect(perDay.rows.map(\.day) == ["2026-06-15", "2026-06-16"] && perDay.rows.map(\.allowed) == [1, 2])
        let total = try store.usage.report(org.id, Self.query("2026-06-15", "2026-06-16", agent: "a1"))
        #expect(total.rows.count == 1 && total.rows[0].allowed == 3 && total.rows[0].day == nil)
        let fromN1 = try store.usage.report(org.id, Self.query("2026-06-15", "2026-06-16", number: Self.n1))
        #expect(fromN1.rows.map(\.key) == ["a1"] && fromN1.rows[0].allowed == 2)
        let a1ByNumber = try store.usage.report(
            org.id,
            Self.query("2026-06-15", "2026-06-16", by: .number, agent: "a1")
        )
        #expect(a1ByNumber.rows.map(\.allowed) == [2, 1])

        // Pages of two: a1, b1 | b2, b3 — and per day the cursor stops inside a key.
        var keys: [String] = []
        var cursor: String?
        repeat {
            let page = try store.usage.report(org.id, Self.query("2026-06-15", "2026-06-16"), cursor: cursor, limit: 2)
            #expect(page.rows.count <= 2)
            keys += page.rows.map(\.key)
            cursor = page.nextCursor
        } while cursor != nil
        #expect(keys == ["a1", "b1", "b2", "b3"])
        let first = try store.usage.report(org.id, Self.query("2026-06-15", "2026-06-16", perDay: true), limit: 1)
        #expect(first.rows.map(\.day) == ["2026-06-15"])
        let second = try store.usage.report(
            org.id,
            Self.query("2026-06-15", "2026-06-16", perDay: true),
            cursor: first.nextCursor,
            limit: 1
        )
        #expect(second.rows.map(\.key) == ["a1"] && second.rows.map(\.day) == ["2026-06-16"])
        var numbers: [String] = []
        cursor = nil
        repeat {
            let page = try store.usage.report(
                org.id,
                Self.query("2026-06-15", "2026-06-16", by: .number),
                cursor: cursor,
                limit: 1
            )
            numbers += page.rows.map(\.key)
            cursor = page.nextCursor
        } while cursor != nil
        #expect(numbers == ["+12025550101", "+12025550102"])

        // A cursor of another kind of report, or none at all, is refused.
        for bad in ["k:", "garbage", first.nextCursor ?? ""] {
            #expect(throws: CallgateError(.invalidArgument, "invalid cursor '\(bad)' for this report")) {
                try store.usage.report(org.id, Self.query("2026-06-15", by: .number), cursor: bad)
            }
        }
        #expect(throws: CallgateError.self) { try store.usage.report(org.id, Self.query("2026-06-15"), limit: 0) }
    }

    @Test func retentionDeletesOldDaysInSlicesAndAuditsThePass() async throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let clock = ManualClock(start)
        var configuration = StoreConfiguration(path: path)
        configuration.usageRetentionDays = 3
        configuration.usageSnapshotSeconds = 3600  // no automatic take or prune during the test
        let store = try Store.open(configuration, clock: clock)
        defer { store.close() }
        let org = try Self.setUp(store)
        // Calls on June 15, 16 and 19.
        for offset in [0, 1, 4] {
            clock.set(start.adding(seconds: Int64(offset) * 86_400))
            _ = try org.authorizeCall(agent: "a1", destination: Self.us, from: Self.n1)
            _ = try org.authorizeCall(agent: "a2", destination: Self.us)
            _ = try org.authorizeCall(agent: "ghost", destination: Self.us)
            try store.usage.takeNow()
            if offset == 1 { #expect(try store.usage.pruneNow().isEmpty) }  // June 14–16 are kept
        }
        clock.set(start.adding(seconds: 5 * 86_400))  // June 20: June 18–20 are kept
        let pruned = try store.usage.pruneNow(rowsPerChange: 2)
        // Counters: n1 and n3 on two days; usage: a1/n1, a2/n3 and the unknown agents on two days.
        #expect(pruned[org.id] == RetentionPrune.Summary(counters: 4, usage: 6, retentionDays: 3))
        #expect(try store.usage.pruneNow().isEmpty)
        let kept = try store.usage.report(org.id, Self.query("2026-06-01", "2026-06-30", perDay: true))
        #expect(kept.rows.map(\.day) == ["2026-06-19", "2026-06-19"])
        #expect(kept.unknownAgents?.deniedTotal == 1)
        let numbers = try store.usage.report(org.id, Self.query("2026-06-01", "2026-06-30", by: .number, perDay: true))
        #expect(numbers.rows.map(\.day) == ["2026-06-19", "2026-06-19"])
        // One audit entry for the pass, by the system.
        try await store.writer.flush()
        let audit = try store.history.audit(org.id).items.filter { $0.action == "retention.prune" }
        #expect(audit.count == 1)
        #expect(audit.first?.actor == "system")
        #expect(audit.first?.after == #"{"before_day":"2026-06-18","retention_days":3,"counters":4,"usage":6}"#)
        // The engine goes on counting.
        #expect(try org.authorizeCall(agent: "a1", destination: Self.us).isAllowed)
    }

    @Test func queriesAreValidated() throws {
        #expect(throws: CallgateError(.invalidArgument, "from_day 2026-11-21 is after to_day 2026-11-01")) {
            try UsageQuery(fromDay: "2026-11-21", toDay: "2026-11-01", groupBy: "")
        }
        #expect(
            throws: CallgateError(
                .invalidArgument,
                "the range 2025-01-01 to 2026-02-05 is 401 days; a report covers at most 400"
            )
        ) {
            try UsageQuery(fromDay: "2025-01-01", toDay: "2026-02-05", groupBy: "agent")
        }
        #expect(throws: CallgateError(.invalidArgument, "to_day '2026-02-30' is not a date (YYYY-MM-DD)")) {
            try UsageQuery(fromDay: "2026-02-01", toDay: "2026-02-30", groupBy: "agent")
        }
        #expect(throws: CallgateError(.invalidArgument, "from_day is required (YYYY-MM-DD)")) {
            try UsageQuery(fromDay: "", toDay: "2026-02-01", groupBy: "agent")
        }
        #expect(throws: CallgateError(.invalidArgument, "unknown group_by 'team' (expected agent or number)")) {
            try UsageQuery(fromDay: "2026-02-01", toDay: "2026-02-01", groupBy: "team")
        }
        #expect(try UsageQuery(fromDay: "2025-01-01", toDay: "2026-02-04", groupBy: "NUMBER").groupBy == .number)
    }

    @Test func aDatabaseFromBeforeUsageGetsTheUsageTables() throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let usageVersion = try #require(Schema.migrations.firstIndex(of: UsageSchema.migration))
        do {
            let db = try SQLiteDatabase(path: path)
            for (index, migration) in Schema.migrations.prefix(usageVersion).enumerated() {
                try db.execute(migration)
                try db.execute("PRAGMA user_version = \(index + 1)")
            }
            try db.execute("INSERT INTO counters VALUES (1, 12025550101, 1781582400, '2026-06-15', 7)")
        }
        let store = try Store.open(StoreConfiguration(path: path))
        defer { store.close() }
        let db = try SQLiteDatabase(path: path, readOnly: true, create: false)
        #expect(try db.scalar("PRAGMA user_version") == Schema.currentVersion)
        #expect(try db.scalar("SELECT COUNT(*) FROM usage") == 0)
        #expect(
            try db.scalar("SELECT COUNT(*) FROM counters INDEXED BY counters_by_day WHERE organization_id = 1") == 1
        )
    }
}
