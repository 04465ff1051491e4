public import CallgateCore
import Foundation

/// The durable copy of the engine, in SQLite: opens (and migrates) the database, rebuilds the engine
/// from it, and keeps it current through the group-commit ``ChangeWriter``.
///
/// ```swift
/// let store = try Store.open(StoreConfiguration(path: "callgate.sqlite"))
/// let org = store.engine.organization(OrganizationID(1))!
/// let decision = try org.authorizeCall(agent: "a1", destination: number)
/// if let ticket = decision.ticket { try await store.writer.waitForCommit(ticket) }  // `commit` durability
/// ```
public final class Store: Sendable {
    public let engine: Engine
    public let writer: ChangeWriter
    public let history: HistoryReader
    /// Usage tallies and reports, and retention of past days (UsageRecorder.swift).
    public let usage: UsageRecorder
    /// The API keys of every organization.
    public let keys: KeyRing
    private let checkpointer: Checkpointer
    public let configuration: StoreConfiguration
    /// What loading found.
    public let loadReport: LoadReport

    /// What was loaded on start, and how long it took.
    public struct LoadReport: Sendable {
        public var organizations = 0
        public var agents = 0
        public var numbers = 0
        public var assignments = 0
        public var reservations = 0
        public var seconds = 0.0
    }

    private init(
        engine: Engine,
        writer: ChangeWriter,
        history: HistoryReader,
        usage: UsageRecorder,
        keys: KeyRing,
        checkpointer: Checkpointer,
        configuration: StoreConfiguration,
        report: LoadReport
    ) {
        self.engine = engine
        self.writer = writer
        self.history = history
        self.usage = usage
        self.keys = keys
        self.checkpointer = checkpointer
        self.configuration = configuration
        self.loadReport = report
    }

    /// Opens the database at `configuration.path` (creating it), migrates it, loads the engine and the
    /// API keys, and starts the writer.
    ///
    /// - Throws: ``StoreError``: a newer schema, a storage failure, or inconsistent data.
    public static func open(
        _ configuration: StoreConfiguration,
        clock: any EngineClock = SystemClock()
    ) throws(StoreError) -> Store {
        let started = Date()
        let db: SQLiteDatabase
        do {
            db = try SQLiteDatabase(path: configuration.path)
            try db.execute("PRAGMA journal_mode = WAL")
            try db.execute("PRAGMA synchronous = \(configuration.synchronous == .full ? "FULL" : "NORMAL")")
            try db.execute("PRAGMA foreign_keys = OFF")
            try db.execute("PRAGMA cache_size = \(-1024 * max(configuration.cacheMebibytes, 2))")
            try db.execute("PRAGMA wal_autocheckpoint = \(max(configuration.walAutocheckpointPages, 100))")
        } catch {
            throw .storage(error)
        }
        try Schema.migrate(db)
        do {
            if let pages = configuration.maximumPageCount { try db.execute("PRAGMA max_page_count = \(pages)") }
        } catch {
            throw .storage(error)
        }
        let writer: ChangeWriter
        do {
            writer = try ChangeWriter(database: db, configuration: configuration)
        } catch {
            throw .storage(error)
        }
        let engine = Engine(clock: clock, changes: writer)
        var report = try Loader(db: db, engine: engine, writer: writer, clock: clock).load()
        report.seconds = Date().timeIntervalSince(started)
        let history: HistoryReader
        do {
            history = try HistoryReader(path: configuration.path)
        } catch {
            throw .storage(error)
        }
        let keys = try KeyRing(
            path: configuration.path,
            maximumPageCount: configuration.maximumPageCount,
            engine: engine
        )
        let usage: UsageRecorder
        do {
            let reader = try UsageReader(path: configuration.path)
            usage = UsageRecorder(engine: engine, writer: writer, reader: reader, configuration: configuration)
        } catch {
            throw .storage(error)
        }
        let checkpointer: Checkpointer
        do {
            checkpointer = try Checkpointer(path: configuration.path)
        } catch {
            throw .storage(error)
        }
        writer.start()
        checkpointer.start()
        usage.start()
        return Store(
            engine: engine,
            writer: writer,
            history: history,
            usage: usage,
            keys: keys,
            checkpointer: checkpointer,
            configuration: configuration,
            report: report
        )
    }

    /// Commits everything queued, stops the writer and closes the key ring's connection. The engine
    /// must not be used afterwards (key writes fail with `unavailable`).
    public func close() {
        // The last usage tallies go through the writer, so before it stops.
        self.usage.stop()
        self.checkpointer.stop()
        self.writer.stop()
        self.keys.close()
    }
}

/// Rebuilds the engine from the tables.
private struct Loader {
    let db: SQLiteDatabase
    let engine: Engine
    let writer: ChangeWriter
    let clock: any EngineClock

    func load() throws(StoreError) -> Store.LoadReport {
        do {
            return try self.loadAll()
        } catch let error as StoreError {
            throw error
        } catch {
            throw .corrupt("\(error)")
        }
    }

    private func loadAll() throws -> Store.LoadReport {
        var report = Store.LoadReport()
        let orgs = try self.db.prepare("SELECT id, name, time_zone, created_at FROM organizations ORDER BY id").rows {
            OrganizationRecord(
                id: OrganizationID(UInt32(truncatingIfNeeded: $0.int64(0))),
                name: $0.text(1),
                timeZone: $0.text(2),
                createdAt: Timestamp(milliseconds: $0.int64(3))
            )
        }
        let now = self.clock.now()
        for record in orgs { self.writer.register(record.id, timeZone: record.timeZone) }
        // What a crash left in the counter log, into `counters` before they are read.
        try self.writer.foldLogAtOpen()
        for record in orgs {
            let org = try self.engine.restoreOrganization(record)
            report.organizations += 1
            let orgID = Int64(record.id.rawValue)
            func count(_ table: String) throws -> Int {
                let stmt = try self.db.prepare("SELECT COUNT(*) FROM \(table) WHERE organization_id = ?")
                stmt.bind(1, orgID)
                return try stmt.step() ? Int(stmt.int64(0)) : 0
            }
            let numberCount = try count("numbers")
            org.reserveCapacity(numbers: numberCount)

            let agents = try self.db.prepare(
                "SELECT id, display_name, principal, active, created_at, modified_at FROM agents WHERE organization_id = ?"
            )
            agents.bind(1, orgID)
            while try agents.step() {
                org.restoreAgent(
                    AgentRecord(
                        id: agents.text(0),
                        displayName: agents.text(1),
                        principal: agents.text(2),
                        active: agents.int64(3) != 0,
                        createdAt: Timestamp(milliseconds: agents.int64(4)),
                        modifiedAt: Timestamp(milliseconds: agents.int64(5))
                    )
                )
                report.agents += 1
            }

            // The latest counter row of each number is its counter.
            var counters: [UInt64: DailyCounter] = [:]
            counters.reserveCapacity(numberCount)
            let counterRows = try self.db.prepare(
                "SELECT e164, MAX(day_key), count FROM counters WHERE organization_id = ? GROUP BY e164"
            )
            counterRows.bind(1, orgID)
            while try counterRows.step() {
                counters[UInt64(bitPattern: counterRows.int64(0))] = DailyCounter(
                    dayKey: counterRows.int64(1),
                    count: try Self.u32(counterRows.int64(2), "count")
                )
            }
            var reservations: [UInt64: Reservation] = [:]
            let reservationRows = try self.db.prepare(
                "SELECT e164, id, expires_at, agent_id, reserved_by FROM reservations WHERE organization_id = ?"
            )
            reservationRows.bind(1, orgID)
            while try reservationRows.step() {
                let r = Reservation(
                    id: UInt64(bitPattern: reservationRows.int64(1)),
                    expiresAt: Timestamp(milliseconds: reservationRows.int64(2)),
                    agent: reservationRows.optionalText(3),
                    reservedBy: Actor(reservationRows.text(4))
                )
                if r.expiresAt > now { reservations[UInt64(bitPattern: reservationRows.int64(0))] = r }
            }
            var assignments: [UInt64: StoredAssignment] = [:]
            assignments.reserveCapacity(try count("assignments"))
            let assignmentRows = try self.db.prepare(
                "SELECT e164, agent_id, daily_limit, allowed_countries, assigned_at, assigned_by, calls FROM assignments WHERE organization_id = ?"
            )
            assignmentRows.bind(1, orgID)
            while try assignmentRows.step() {
                let countries = try CountrySet(codes: assignmentRows.text(3).split(separator: ","))
                assignments[UInt64(bitPattern: assignmentRows.int64(0))] = StoredAssignment(
                    agent: assignmentRows.text(1),
                    dailyLimit: try Self.u32(assignmentRows.int64(2), "daily_limit"),
                    allowedCountries: countries,
                    assignedAt: Timestamp(milliseconds: assignmentRows.int64(4)),
                    assignedBy: Actor(assignmentRows.text(5)),
                    callsSinceAssigned: try Self.u64(assignmentRows.int64(6), "calls")
                )
            }
            let numbers = try self.db.prepare(
                """
                SELECT e164, provider, country, capabilities, status, location, tags, number_type, created_at, created_by,
                    modified_at, modified_by, released_at
                FROM numbers WHERE organization_id = ?
                """
            )
            numbers.bind(1, orgID)
            while try numbers.step() {
                let digits = UInt64(bitPattern: numbers.int64(0))
                guard let number = PhoneNumber(digits: digits), let country = Country(code: numbers.text(2)),
                    let status = NumberStatus(rawValue: numbers.text(4))
                else {
                    let which = PhoneNumber(digits: digits).map { "\($0)" } ?? "with an invalid number"
                    throw StoreError.corrupt("a number row (\(which)) of \(record.id) has an invalid country or status")
                }
                let tags = numbers.text(6)
                let attributes = NumberAttributes(
                    provider: numbers.text(1),
                    country: country,
                    capabilities: Capabilities(rawValue: UInt8(truncatingIfNeeded: numbers.int64(3))),
                    status: status,
                    location: numbers.text(5),
                    tags: tags.isEmpty
                        ? [] : tags.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init),
                    numberType: numbers.text(7)
                )
                let assignment = assignments[digits]
                let state: NumberState =
                    assignment.map { .assigned(agent: $0.agent) } ?? reservations[digits].map { .reserved($0) }
                    ?? .available
                try org.restoreNumber(
                    NumberRecord(
                        number: number,
                        attributes: attributes,
                        state: state,
                        releasedAt: numbers.optionalInt64(12).map(Timestamp.init(milliseconds:)),
                        createdAt: Timestamp(milliseconds: numbers.int64(8)),
                        createdBy: Actor(numbers.text(9)),
                        modifiedAt: Timestamp(milliseconds: numbers.int64(10)),
                        modifiedBy: Actor(numbers.text(11)),
                        counter: counters[digits] ?? .zero
                    ),
                    assignment: assignment
                )
                report.numbers += 1
                if assignment != nil {
                    report.assignments += 1
                } else if reservations[digits] != nil {
                    report.reservations += 1
                }
            }
            let thresholds = try self.db.prepare(
                "SELECT pool, threshold FROM pool_thresholds WHERE organization_id = ?"
            )
            thresholds.bind(1, orgID)
            while try thresholds.step() {
                org.restorePoolThreshold(thresholds.text(0), try Self.u32(thresholds.int64(1), "threshold"))
            }
        }
        for org in self.engine.allOrganizations { org.finishRestore() }
        return report
    }

    static func u32(_ value: Int64, _ column: String) throws -> UInt32 {
        guard let v = UInt32(exactly: value) else { throw StoreError.corrupt("\(column) \(value) is out of range") }
        return v
    }

    static func u64(_ value: Int64, _ column: String) throws -> UInt64 {
        guard let v = UInt64(exactly: value) else { throw StoreError.corrupt("\(column) \(value) is out of range") }
        return v
    }
}
