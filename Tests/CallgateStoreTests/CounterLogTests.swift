import CallgateCore
import Foundation
import Testing

@testable import CallgateStore

/// The counter log (ChangeWriter.swift): a group's counters are committed as one `counter_log` row and
/// written to `counters` in later fold rounds. What was acknowledged must survive a crash between the
/// two, and what writes counter rows itself (a reset, a deletion) must not be undone by an older
/// logged count.
@Suite struct CounterLogTests {
    /// A store whose counters stay in the log until it stops (no round within a test).
    static func configuration(_ path: String, foldSeconds: Double = 3600) -> StoreConfiguration {
        var configuration = StoreConfiguration(path: path)
        configuration.counterFoldSeconds = foldSeconds
        configuration.usageSnapshotSeconds = 3600
        return configuration
    }

    /// Copies the database and its WAL as they are on disk while the store is open: what a crash (of
    /// the process, after the commits) would leave.
    static func crashCopy(of path: String) throws -> String {
        let copy = path + ".crash.sqlite"
        let fileManager = FileManager.default
        for suffix in ["", "-wal", "-counters"] where fileManager.fileExists(atPath: path + suffix) {
            try? fileManager.removeItem(atPath: copy + suffix)
            try fileManager.copyItem(atPath: path + suffix, toPath: copy + suffix)
        }
        return copy
    }

    static func scalar(_ path: String, _ sql: String) throws -> Int64 {
        let db = try SQLiteDatabase(path: path, readOnly: true)
        return try db.scalar(sql) ?? -1
    }

    static let destination = n("+1 212 555 0199")
    static let numbers = [n("+1 202 555 0101"), n("+1 202 555 0102"), n("+1 202 555 0103")]

    /// An organization with agent a1 holding the three numbers (limit 1,000 each).
    static func seed(_ store: Store) throws -> Organization {
        let org = try store.engine.createOrganization(name: "Acme", actor: admin)
        try org.upsertAgent(AgentInput(id: "a1"), actor: admin)
        for number in Self.numbers {
            try org.addNumber(NumberInput(number: number, provider: "x"), actor: admin)
            try org.assign(number, to: "a1", terms: AssignmentTerms(dailyLimit: 1000), actor: admin)
        }
        return org
    }

    @Test func countsOnlyInTheLogSurviveACrash() async throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let store = try Store.open(Self.configuration(path))
        let org = try Self.seed(store)
        for _ in 0..<300 { _ = try org.authorizeCall(agent: "a1", destination: Self.destination) }
        try await store.writer.flush()

        // Committed, but only in the log so far.
        #expect(try Self.scalar(path, "SELECT COUNT(*) FROM counter_log") > 0)
        #expect(try Self.scalar(path, "SELECT COALESCE(SUM(count), 0) FROM counters") == 0)

        let copy = try Self.crashCopy(of: path)
        do {
            let reopened = try Store.open(Self.configuration(copy))
            let org = try #require(reopened.engine.allOrganizations.first)
            let counts = try org.assignments(of: "a1").map(\.countToday)
            #expect(counts.reduce(0, +) == 300)
            #expect(counts.allSatisfy { $0 == 100 }, "\(counts)")
            reopened.close()
        }
        // The open folded the log.
        #expect(try Self.scalar(copy, "SELECT COUNT(*) FROM counter_log") == 0)
        #expect(try Self.scalar(copy, "SELECT SUM(count) FROM counters") == 300)

        // A clean stop folds too.
        store.close()
        #expect(try Self.scalar(path, "SELECT COUNT(*) FROM counter_log") == 0)
        #expect(try Self.scalar(path, "SELECT SUM(count) FROM counters") == 300)
    }

    /// Calls an event loop committed to the counter journal (``CounterJournal``) and the writer had not
    /// copied into the database yet survive a crash; whichever got copied are counted once.
    @Test func journaledCallsSurviveACrash() async throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let store = try Store.open(Self.configuration(path))
        let org = try Self.seed(store)
        try await store.writer.flush()
        for _ in 0..<300 {
            _ = try org.authorizeCall(agent: "a1", destination: Self.destination)
            let ticket = try #require(store.writer.lastTicket)
            if !store.writer.commitIfIdle(through: ticket) { try await store.writer.waitForCommit(ticket) }
        }
        // (`commitIfIdle` is also `true` when the writer had just committed the call.)
        #expect(store.writer.statistics.inlineBatches > 0)
        // The files as a crash would leave them (the writer held off while they are copied).
        let copy = try store.writer.whileHeld { try Self.crashCopy(of: path) }
        do {
            let reopened = try Store.open(Self.configuration(copy))
            let counts = try #require(reopened.engine.allOrganizations.first).assignments(of: "a1").map(\.countToday)
            #expect(counts == [100, 100, 100])
            reopened.close()
        }
        #expect(try Self.scalar(copy, "SELECT SUM(count) FROM counters") == 300)
        #expect(try FileManager.default.attributesOfItem(atPath: copy + "-counters")[.size] as? Int == 0)
        // A clean stop copies the journal into the database and empties it.
        store.close()
        #expect(try Self.scalar(path, "SELECT SUM(count) FROM counters") == 300)
        #expect(try FileManager.default.attributesOfItem(atPath: path + "-counters")[.size] as? Int == 0)
    }

    /// What the open reads from the journal: the records above the mark, in order, after the log; not
    /// those at or below it (a crash after the transaction that copied them, before the file was
    /// emptied), nor a record cut short by a crash in the middle of an append.
    @Test func theOpenAppliesOnlyJournalRecordsAboveTheMark() async throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        do {
            let store = try Store.open(Self.configuration(path))
            let org = try Self.seed(store)
            for _ in 0..<30 { _ = try org.authorizeCall(agent: "a1", destination: Self.destination) }
            store.close()
        }
        let dayKey = try Self.scalar(path, "SELECT MIN(day_key) FROM counters")
        let salt = UInt64(bitPattern: try Self.scalar(path, "SELECT salt FROM counter_journal"))
        let db = try SQLiteDatabase(path: path)
        try db.execute("UPDATE counter_journal SET absorbed_through = 50")
        func entry(_ number: PhoneNumber, _ count: UInt32) -> [UInt8] {
            var bytes: [UInt8] = []
            withUnsafeBytes(of: UInt32(1).littleEndian) { bytes.append(contentsOf: $0) }
            withUnsafeBytes(of: number.digits.littleEndian) { bytes.append(contentsOf: $0) }
            withUnsafeBytes(of: dayKey.littleEndian) { bytes.append(contentsOf: $0) }
            withUnsafeBytes(of: count.littleEndian) { bytes.append(contentsOf: $0) }
            return bytes
        }
        var file: [UInt8] = []
        // Already in the database (an older count): skipped.
        CounterJournal.appendRecord(id: 50, entries: entry(Self.numbers[2], 3), salt: salt, to: &file)
        CounterJournal.appendRecord(
            id: 51,
            entries: entry(Self.numbers[0], 40) + entry(Self.numbers[1], 11),
            salt: salt,
            to: &file
        )
        CounterJournal.appendRecord(id: 52, entries: entry(Self.numbers[0], 41), salt: salt, to: &file)
        // Torn: the last record lost its end.
        var torn: [UInt8] = []
        CounterJournal.appendRecord(id: 53, entries: entry(Self.numbers[1], 99), salt: salt, to: &torn)
        file += torn.dropLast(5)
        try Data(file).write(to: URL(fileURLWithPath: path + "-counters"))
        for reopen in 0..<2 {
            if reopen == 1 {
                // Records of the previous start (its salt) beside the database: not applied.
                var stale: [UInt8] = []
                CounterJournal.appendRecord(id: 60, entries: entry(Self.numbers[0], 7), salt: salt, to: &stale)
                try Data(stale).write(to: URL(fileURLWithPath: path + "-counters"))
            }
            let store = try Store.open(Self.configuration(path))
            let org = try #require(store.engine.allOrganizations.first)
            let counts = try Self.numbers.map { number in try #require(org.number(number)).counter.count }
            #expect(counts == [41, 11, 10])
            #expect(try FileManager.default.attributesOfItem(atPath: path + "-counters")[.size] as? Int == 0)
            // New ids go on above the records read, and each start draws a new salt.
            #expect(try Self.scalar(path, "SELECT absorbed_through FROM counter_journal") == 52)
            #expect(try Self.scalar(path, "SELECT salt FROM counter_journal") != Int64(bitPattern: salt))
            store.close()
        }
    }

    /// A journal that exists but cannot be read may hold acknowledged calls: the open refuses, with the
    /// reason, rather than going on without them (and later applying them over newer counts).
    @Test(arguments: [true, false]) func anUnreadableJournalRefusesTheOpen(journal: Bool) async throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        try Store.open(Self.configuration(path)).close()
        try FileManager.default.removeItem(atPath: path + "-counters")
        try FileManager.default.createDirectory(atPath: path + "-counters", withIntermediateDirectories: false)
        var configuration = Self.configuration(path)
        configuration.counterJournal = journal
        #expect {
            try Store.open(configuration)
        } throws: { error in
            "\(error)".contains("the counter journal \(path)-counters cannot be opened")
        }
    }

    /// A second store on the same database would rotate the salt and empty the first one's journal:
    /// it is refused while the first is open, and opens once it is closed.
    @Test func aSecondStoreOnTheSameDatabaseIsRefused() async throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let first = try Store.open(Self.configuration(path))
        #expect {
            try Store.open(Self.configuration(path))
        } throws: { error in
            "\(error)".contains("is in use by another store")
        }
        first.close()
        try Store.open(Self.configuration(path)).close()
    }

    @Test func aResetOrADeletionIsNotUndoneByAnOlderLoggedCount() async throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let store = try Store.open(Self.configuration(path))
        defer { store.close() }
        let org = try Self.seed(store)
        for _ in 0..<30 { _ = try org.authorizeCall(agent: "a1", destination: Self.destination) }
        try await store.writer.flush()
        // Reset the first number (assigned); release and delete the last one; count once more after.
        try org.resetCounters([Self.numbers[0]], actor: admin)
        try org.release(Self.numbers[2], actor: admin)
        try org.deleteNumbers([Self.numbers[2]], actor: admin)
        _ = try org.authorizeCall(agent: "a1", destination: Self.destination)
        try await store.writer.flush()

        let copy = try Self.crashCopy(of: path)
        let reopened = try Store.open(Self.configuration(copy))
        defer { reopened.close() }
        let reopenedOrg = try #require(reopened.engine.allOrganizations.first)
        let counts = Dictionary(
            uniqueKeysWithValues: try reopenedOrg.assignments(of: "a1").map { ($0.number, $0.countToday) }
        )
        let live = Dictionary(uniqueKeysWithValues: try org.assignments(of: "a1").map { ($0.number, $0.countToday) })
        #expect(counts == live)
        #expect(counts.count == 2)
        #expect(counts[Self.numbers[0]].map { $0 <= 1 } == true, "reset to 0, then at most one more call")
        #expect(counts[Self.numbers[1]].map { $0 >= 10 } == true)
        let deleted = Int64(Self.numbers[2].digits)
        #expect(try Self.scalar(copy, "SELECT COUNT(*) FROM counters WHERE e164 = \(deleted)") == 0)
    }

    @Test func roundsFoldEverythingAndEmptyTheLog() async throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let store = try Store.open(Self.configuration(path, foldSeconds: 0.02))
        defer { store.close() }
        let org = try Self.seed(store)
        for i in 0..<600 {
            _ = try org.authorizeCall(agent: "a1", destination: Self.destination)
            if i % 50 == 0 { try await Task.sleep(for: .milliseconds(10)) }
        }
        try await store.writer.flush()
        // The writer folds while idle: the log empties without a stop.
        var logged: Int64 = -1
        for _ in 0..<200 {
            logged = try Self.scalar(path, "SELECT COUNT(*) FROM counter_log")
            if logged == 0 { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        #expect(logged == 0)
        #expect(try Self.scalar(path, "SELECT SUM(count) FROM counters") == 600)
        #expect(try Self.scalar(path, "SELECT SUM(calls) FROM assignments") == 600)
    }

    /// A paced round is spread evenly over its window (half the interval) and is all due after it; an
    /// unpaced one (a report waits, too many numbers, the stop) is all due at once. An idle writer
    /// writes it a whole slice at a time.
    @Test func aPacedRoundIsSpreadOverHalfTheInterval() {
        let window: UInt64 = 2_500_000_000
        func due(_ done: Int, at elapsed: UInt64, paced: Bool = true) -> Int {
            ChangeWriter.dueRows(total: 50_000, done: done, elapsed: elapsed, window: window, paced: paced)
        }
        #expect(due(0, at: 0) == 0)
        #expect(due(0, at: 250_000_000) == 5_000)
        #expect(due(4_000, at: 250_000_000) == 1_000)
        #expect(due(6_000, at: 250_000_000) == 0)  // ahead of the pace: nothing yet
        #expect(due(20_000, at: 1_250_000_000) == 5_000)
        #expect(due(20_000, at: window) == 30_000)  // the window is over: the rest
        #expect(due(20_000, at: 10 * window) == 30_000)
        #expect(due(0, at: 0, paced: false) == 50_000)
        #expect(due(50_000, at: 0, paced: false) == 0)
        #expect(ChangeWriter.dueRows(total: 10, done: 3, elapsed: 5, window: 0, paced: true) == 7)
        // While idle, a transaction per whole slice (128 rows) or for the rest of a round, not per row.
        #expect(!ChangeWriter.idleSliceDue(1, left: 300))
        #expect(!ChangeWriter.idleSliceDue(127, left: 300))
        #expect(ChangeWriter.idleSliceDue(128, left: 300))
        #expect(ChangeWriter.idleSliceDue(44, left: 44))
        #expect(!ChangeWriter.idleSliceDue(0, left: 0))
    }

    /// Rounds run all the time (every 1 ms) while numbers move between agents: each holding period's
    /// calls-since-assigned are exactly the calls made in it, whether its deltas were pending, in a
    /// round being written, or written when the move came.
    @Test func callsSinceAssignedStayExactWhileRoundsRun() async throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let store = try Store.open(Self.configuration(path, foldSeconds: 0.001))
        let org = try Self.seed(store)
        try org.upsertAgent(AgentInput(id: "a2"), actor: admin)
        var holder = ["a1", "a1", "a1"]
        var made: [[(agent: String, calls: UInt64)]] = Self.numbers.map { _ in [("a1", 0)] }
        var random = SystemRandomNumberGenerator()
        for step in 0..<400 {
            let i = Int.random(in: 0..<3, using: &random)
            if step % 7 == 6 {
                // Move number i to the other agent.
                let next = holder[i] == "a1" ? "a2" : "a1"
                try org.release(Self.numbers[i], actor: admin)
                try org.assign(Self.numbers[i], to: next, terms: AssignmentTerms(dailyLimit: 1000), actor: admin)
                holder[i] = next
                made[i].append((next, 0))
            } else {
                let decision = try org.authorizeCall(agent: holder[i], destination: Self.destination)
                let caller = try #require(decision.callerID)
                let index = try #require(Self.numbers.firstIndex(of: caller))
                made[index][made[index].count - 1].calls += 1
            }
            if step % 25 == 0 { try await store.writer.flush() }
        }
        try await store.writer.flush()
        store.close()

        let reopened = try Store.open(Self.configuration(path))
        defer { reopened.close() }
        let reopenedOrg = try #require(reopened.engine.allOrganizations.first)
        for (i, number) in Self.numbers.enumerated() {
            let periods = try reopened.history.timeline(reopenedOrg.id, number: number)
            let closed = periods.filter { $0.to != nil }.map { ($0.agent, $0.calls) }
            let expectedClosed = made[i].dropLast()
            #expect(closed.map(\.0) == expectedClosed.map(\.agent), "number \(i)")
            #expect(closed.map(\.1) == expectedClosed.map(\.calls), "number \(i)")
            let current = try reopenedOrg.assignments(of: holder[i]).first { $0.number == number }
            #expect(current?.callsSinceAssigned == made[i].last?.calls, "number \(i)")
        }
    }

    /// A usage report (or retention pass) needs every logged counter in `counters`. It waits for fold
    /// rounds, which start at once and write a slice per transaction, instead of folding thousands of
    /// counters in one transaction that every call committed meanwhile would wait behind.
    @Test func aReportWaitsForRoundsInSlicesNotOneLargeFold() async throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let store = try Store.open(Self.configuration(path))
        defer { store.close() }
        let org = try store.engine.createOrganization(name: "Acme", actor: admin)
        // 3,000 numbers on 30 agents, two calls each: 3,000 counters in the log, none folded.
        var digits = 12_025_550_000 as UInt64
        for a in 0..<30 {
            try org.upsertAgent(AgentInput(id: "a\(a)"), actor: admin)
            for _ in 0..<100 {
                digits += 1
                let number = n("+\(digits)")
                try org.addNumber(NumberInput(number: number, provider: "x"), actor: admin)
                try org.assign(number, to: "a\(a)", terms: AssignmentTerms(dailyLimit: 1000), actor: admin)
            }
        }
        for _ in 0..<2 {
            for a in 0..<30 {
                for _ in 0..<100 { _ = try org.authorizeCall(agent: "a\(a)", destination: Self.destination) }
            }
        }
        try await store.writer.flush()
        #expect(try Self.scalar(path, "SELECT COALESCE(SUM(count), 0) FROM counters") == 0)

        // What a report does first: every counter logged so far is visible once this returns.
        try store.usage.takeNow(foldingCounters: true, of: org.id)
        #expect(try Self.scalar(path, "SELECT SUM(count) FROM counters") == 6000)
        #expect(try Self.scalar(path, "SELECT COUNT(*) FROM counters") == 3000)
        #expect(try Self.scalar(path, "SELECT COUNT(*) FROM counter_log") == 0)
        let sliced = store.writer.statistics.largestFold
        #expect(sliced > 0 && sliced <= 1024, "largest fold in one transaction: \(sliced)")

        // Nothing logged since: the next report does not wait for a round.
        try store.usage.takeNow(foldingCounters: true, of: org.id)

        // The negative control: a reset folds everything logged in its own transaction.
        for a in 0..<30 {
            for _ in 0..<100 { _ = try org.authorizeCall(agent: "a\(a)", destination: Self.destination) }
        }
        try org.resetCounters([n("+12025550001")], actor: admin)
        try await store.writer.flush()
        #expect(store.writer.statistics.largestFold > 2000, "\(store.writer.statistics.largestFold)")
    }

    @Test func aDamagedLogRowRefusesToOpenWithTheReason() async throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        do {
            let store = try Store.open(Self.configuration(path))
            _ = try Self.seed(store)
            store.close()
        }
        do {
            let db = try SQLiteDatabase(path: path)
            try db.execute("INSERT INTO counter_log (id, entries) VALUES (7, x'0102030405')")
        }
        do {
            let store = try Store.open(Self.configuration(path))
            store.close()
            Issue.record("opened a store with a damaged counter log")
        } catch {
            #expect("\(error)".contains("counter_log row 7 has 5 bytes"), "\(error)")
        }
    }
}
