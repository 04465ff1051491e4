public import CallgateCore

/// How a usage report groups its rows.
public enum UsageGrouping: String, Sendable, Hashable, CaseIterable {
    /// One row per agent (its calls from every number).
    case agent
    /// One row per caller-ID number (the calls of every agent that held it).
    case number
}

/// What a usage report covers. Every set filter must match.
public struct UsageQuery: Sendable, Hashable {
    /// The longest range a report covers, in days.
    public static let maximumDays = 400

    /// First and last local day, both included.
    public var from: LocalDate
    public var to: LocalDate
    public var groupBy: UsageGrouping
    public var agent: String?
    public var number: PhoneNumber?
    /// One row per key and day rather than one per key for the whole range.
    public var perDay: Bool

    /// - Throws: ``CallgateError`` `invalidArgument` when `to` is before `from` or the range is longer
    ///   than ``maximumDays``.
    public init(
        from: LocalDate,
        to: LocalDate,
        groupBy: UsageGrouping = .agent,
        agent: String? = nil,
        number: PhoneNumber? = nil,
        perDay: Bool = false
    ) throws(CallgateError) {
        guard from <= to else {
            throw CallgateError(.invalidArgument, "from_day \(from) is after to_day \(to)")
        }
        let days = to.ordinal - from.ordinal + 1
        guard days <= Self.maximumDays else {
            throw CallgateError(
                .invalidArgument,
                "the range \(from) to \(to) is \(days) days; a report covers at most \(Self.maximumDays)"
            )
        }
        self.from = from
        self.to = to
        self.groupBy = groupBy
        self.agent = agent
        self.number = number
        self.perDay = perDay
    }

    /// Reads the wire's text fields: `YYYY-MM-DD` dates and `agent` / `number` (empty: `agent`).
    ///
    /// - Throws: ``CallgateError`` `invalidArgument` naming the field and what was expected.
    public init(
        fromDay: String,
        toDay: String,
        groupBy: String,
        agent: String? = nil,
        number: PhoneNumber? = nil,
        perDay: Bool = false
    ) throws(CallgateError) {
        func date(_ text: String, _ field: String) throws(CallgateError) -> LocalDate {
            guard !text.isEmpty else { throw CallgateError(.invalidArgument, "\(field) is required (YYYY-MM-DD)") }
            guard let date = LocalDate(text) else {
                throw CallgateError(.invalidArgument, "\(field) '\(text.prefix(40))' is not a date (YYYY-MM-DD)")
            }
            return date
        }
        let grouping: UsageGrouping
        if groupBy.isEmpty {
            grouping = .agent
        } else if let known = UsageGrouping(rawValue: groupBy.lowercased()) {
            grouping = known
        } else {
            throw CallgateError(.invalidArgument, "unknown group_by '\(groupBy.prefix(40))' (expected agent or number)")
        }
        try self.init(
            from: try date(fromDay, "from_day"),
            to: try date(toDay, "to_day"),
            groupBy: grouping,
            agent: agent,
            number: number,
            perDay: perDay
        )
    }
}

/// One row of a usage report: a key's totals over the range, or over one day.
public struct UsageReportRow: Sendable, Hashable {
    /// The agent id, or the number in E.164.
    public var key: String
    /// The local day (per-day reports), else `nil`.
    public var day: String?
    /// Allowed calls. By number, the larger of the daily counter and the tallies (see `proto/README.md`).
    public var allowed: UInt64 = 0
    /// Allowed calls by local hour, from the tallies (24 entries).
    public var allowedByHour = [UInt64](repeating: 0, count: 24)
    /// Denials by reason: entry `reason.rawValue - 1`.
    public var denied = [UInt64](repeating: 0, count: DenyReason.allCases.count)

    public init(key: String, day: String? = nil) {
        self.key = key
        self.day = day
    }

    /// Every denial.
    public var deniedTotal: UInt64 { self.denied.reduce(0, +) }

    public func denied(_ reason: DenyReason) -> UInt64 { self.denied[Int(reason.rawValue) - 1] }

    /// The local hour with the most allowed calls (the earliest of a tie) and its calls; `nil` when the
    /// tallies hold no allowed call.
    public var peakHour: (hour: Int, calls: UInt64)? {
        var best: (hour: Int, calls: UInt64)?
        for (hour, calls) in self.allowedByHour.enumerated() where calls > (best?.calls ?? 0) {
            best = (hour, calls)
        }
        return best
    }

    mutating func add(_ counts: UsageCounts) {
        self.allowed += counts.allowed
        for i in 0..<24 { self.allowedByHour[i] += counts.allowedByHour[i] }
        for i in self.denied.indices { self.denied[i] += counts.denied[i] }
    }
}

/// A page of a usage report.
public struct UsageReport: Sendable {
    public var rows: [UsageReportRow]
    /// `nil` on the last page.
    public var nextCursor: String?
    /// The denials of agent ids that are not in the organization, over the range: on the first page of
    /// a report by agent without filters, else `nil`.
    public var unknownAgents: UsageReportRow?
}

/// The counted columns of one stored row (or of several added up).
struct UsageCounts {
    var allowed: UInt64 = 0
    var allowedByHour = [UInt64](repeating: 0, count: 24)
    var denied = [UInt64](repeating: 0, count: DenyReason.allCases.count)

    /// Reads `allowed, h00…h23, denied_…` starting at `column`.
    init(_ row: SQLiteStatement, from column: Int32) {
        self.allowed = UInt64(clamping: row.int64(column))
        for i in 0..<24 { self.allowedByHour[i] = UInt64(clamping: row.int64(column + 1 + Int32(i))) }
        for i in self.denied.indices { self.denied[i] = UInt64(clamping: row.int64(column + 25 + Int32(i))) }
    }

    init() {}

    mutating func add(_ other: UsageCounts) {
        self.allowed += other.allowed
        for i in 0..<24 { self.allowedByHour[i] += other.allowedByHour[i] }
        for i in self.denied.indices { self.denied[i] += other.denied[i] }
    }
}

/// Reads usage reports (and what retention would delete) over its own SQLite connection, so reads
/// never wait for the writer.
public final class UsageReader: Sendable {
    private let connection: Locked<SQLiteDatabase>

    init(path: String) throws(SQLiteError) {
        self.connection = Locked(try SQLiteDatabase(path: path, readOnly: true, create: false))
    }

    /// One page of a report, rows in key order (then day): agent ids as text, numbers by their digits.
    ///
    /// A page holds at most `limit` rows; the query reads only the rows of the page's keys (and the
    /// ones it skips at the cursor), through the indexes by agent and by number.
    ///
    /// - Parameters:
    ///   - cursor: the previous page's ``UsageReport/nextCursor``.
    ///   - limit: 1…1000.
    public func report(
        _ organization: OrganizationID,
        _ query: UsageQuery,
        cursor: String? = nil,
        limit: Int = 100
    ) throws(CallgateError) -> UsageReport {
        guard limit >= 1, limit <= 1000 else {
            throw CallgateError(.invalidArgument, "page size must be 1 to 1000, got \(limit)")
        }
        let after = try Cursor(cursor, query)
        do {
            return try self.connection.withLock { (db) throws(SQLiteError) -> UsageReport in
                var report: UsageReport
                switch query.groupBy {
                case .agent: report = try self.byAgent(db, organization, query, after, limit)
                case .number: report = try self.byNumber(db, organization, query, after, limit)
                }
                if query.groupBy == .agent, after == nil, query.agent == nil, query.number == nil {
                    report.unknownAgents = try self.unknownAgents(db, organization, query)
                }
                return report
            }
        } catch {
            throw CallgateError(.unavailable, "cannot read the usage tallies: \(error)")
        }
    }

    private static let counts = UsageSchema.countColumns.joined(separator: ", ")

    private func byAgent(
        _ db: SQLiteDatabase,
        _ organization: OrganizationID,
        _ query: UsageQuery,
        _ after: Cursor?,
        _ limit: Int
    ) throws(SQLiteError) -> UsageReport {
        var sql = """
            SELECT agent_id, day, \(Self.counts) FROM usage INDEXED BY usage_by_agent
            WHERE organization_id = ? AND agent_id != '' AND day BETWEEN ? AND ?
            """
        var values: [SQLiteValue] = [
            .int(Int64(organization.rawValue)), .text(query.from.description), .text(query.to.description),
        ]
        if let agent = query.agent {
            sql += " AND agent_id = ?"
            values.append(.text(agent))
        }
        if let number = query.number {
            sql += " AND e164 = ?"
            values.append(.int(Int64(number.digits)))
        }
        if let after {
            sql += " AND agent_id >= ?"
            values.append(.text(after.key))
        }
        sql += " ORDER BY agent_id, day"
        let stmt = try db.prepare(sql)
        stmt.bindAll(values)
        var page = Page(query: query, after: after, limit: limit)
        while try stmt.step() {
            let done = page.add(key: stmt.text(0), day: stmt.text(1), UsageCounts(stmt, from: 2), counter: nil)
            if done { break }
        }
        return page.finish()
    }

    private func byNumber(
        _ db: SQLiteDatabase,
        _ organization: OrganizationID,
        _ query: UsageQuery,
        _ after: Cursor?,
        _ limit: Int
    ) throws(SQLiteError) -> UsageReport {
        let org = Int64(organization.rawValue)
        let from = query.from.description
        let to = query.to.description
        // From the cursor's number on; the page skips what it already returned.
        let start = after.flatMap { PhoneNumber.digits(e164: $0.key) }.map { Int64($0) } ?? 1
        var usageSQL = """
            SELECT e164, day, \(Self.counts) FROM usage INDEXED BY usage_by_number
            WHERE organization_id = ? AND e164 >= ? AND day BETWEEN ? AND ?
            """
        var usageValues: [SQLiteValue] = [.int(org), .int(start), .text(from), .text(to)]
        if let agent = query.agent {
            usageSQL += " AND agent_id = ?"
            usageValues.append(.text(agent))
        }
        if let number = query.number {
            usageSQL += " AND e164 = ?"
            usageValues.append(.int(Int64(number.digits)))
        }
        usageSQL += " ORDER BY e164, day"
        let usage = try db.prepare(usageSQL)
        usage.bindAll(usageValues)
        // The daily counters are per number, not per agent: with an agent filter only the tallies count.
        var counters: SQLiteStatement?
        if query.agent == nil {
            var sql =
                "SELECT e164, day, count FROM counters WHERE organization_id = ? AND e164 >= ? AND day BETWEEN ? AND ?"
            var values: [SQLiteValue] = [.int(org), .int(start), .text(from), .text(to)]
            if let number = query.number {
                sql += " AND e164 = ?"
                values.append(.int(Int64(number.digits)))
            }
            sql += " ORDER BY e164, day_key"
            counters = try db.prepare(sql)
            counters?.bindAll(values)
        }

        // Merge the two streams, both in (number, day) order.
        var page = Page(query: query, after: after, limit: limit)
        var u = try usage.step() ? (usage.int64(0), usage.text(1)) : nil
        var c = try counters?.step() == true ? (counters!.int64(0), counters!.text(1)) : nil
        while u != nil || c != nil {
            let key: (Int64, String) =
                switch (u, c) {
                case (let u?, let c?): u.0 < c.0 || (u.0 == c.0 && u.1 <= c.1) ? u : c
                case (let u?, nil): u
                case (nil, let c?): c
                case (nil, nil): (0, "")
                }
            var counts = UsageCounts()
            while let row = u, row == key {
                counts.add(UsageCounts(usage, from: 2))
                u = try usage.step() ? (usage.int64(0), usage.text(1)) : nil
            }
            var counter: UInt64?
            if let row = c, row == key, let stmt = counters {
                counter = UInt64(clamping: stmt.int64(2))
                c = try stmt.step() ? (stmt.int64(0), stmt.text(1)) : nil
            }
            let e164 = "+\(key.0)"
            if page.add(key: e164, day: key.1, counts, counter: counter) { break }
        }
        return page.finish()
    }

    private func unknownAgents(
        _ db: SQLiteDatabase,
        _ organization: OrganizationID,
        _ query: UsageQuery
    ) throws(SQLiteError) -> UsageReportRow? {
        let sums = UsageSchema.countColumns.map { "SUM(\($0))" }.joined(separator: ", ")
        let stmt = try db.prepare(
            """
            SELECT COUNT(*), \(sums) FROM usage INDEXED BY usage_by_agent
            WHERE organization_id = ? AND agent_id = '' AND day BETWEEN ? AND ?
            """
        )
        stmt.bindAll([.int(Int64(organization.rawValue)), .text(query.from.description), .text(query.to.description)])
        guard try stmt.step(), stmt.int64(0) > 0 else { return nil }
        var row = UsageReportRow(key: "")
        row.add(UsageCounts(stmt, from: 1))
        return row
    }

    // MARK: - Retention

    /// Whether either table has a row of a day before `day`.
    func hasRowsBefore(_ organization: OrganizationID, day: String) throws(CallgateError) -> Bool {
        do {
            return try self.connection.withLock { (db) throws(SQLiteError) -> Bool in
                let stmt = try db.prepare(
                    """
                    SELECT EXISTS (SELECT 1 FROM usage WHERE organization_id = ?1 AND day < ?2)
                        OR EXISTS (SELECT 1 FROM counters INDEXED BY counters_by_day WHERE organization_id = ?1 AND day < ?2)
                    """
                )
                stmt.bindAll([.int(Int64(organization.rawValue)), .text(day)])
                return try stmt.step() && stmt.int64(0) != 0
            }
        } catch {
            throw CallgateError(.unavailable, "cannot read the usage tallies: \(error)")
        }
    }

    /// How many rows of each table are of days before `day`.
    func countBefore(_ organization: OrganizationID, day: String) throws(CallgateError) -> (counters: Int, usage: Int) {
        do {
            return try self.connection.withLock { (db) throws(SQLiteError) -> (counters: Int, usage: Int) in
                func count(_ sql: String) throws(SQLiteError) -> Int {
                    let stmt = try db.prepare(sql)
                    stmt.bindAll([.int(Int64(organization.rawValue)), .text(day)])
                    return try stmt.step() ? Int(stmt.int64(0)) : 0
                }
                return (
                    try count(
                        "SELECT COUNT(*) FROM counters INDEXED BY counters_by_day WHERE organization_id = ? AND day < ?"
                    ),
                    try count("SELECT COUNT(*) FROM usage WHERE organization_id = ? AND day < ?")
                )
            }
        } catch {
            throw CallgateError(.unavailable, "cannot read the usage tallies: \(error)")
        }
    }
}

/// Where a page starts: after this key (and day, in per-day reports).
///
/// Written as `k:<key>` or `d:<YYYY-MM-DD>:<key>`.
struct Cursor: Equatable {
    var key: String
    var day: String?

    init(key: String, day: String?) {
        self.key = key
        self.day = day
    }

    /// - Throws: `invalidArgument` for a cursor this kind of report did not write.
    init?(_ text: String?, _ query: UsageQuery) throws(CallgateError) {
        guard let text, !text.isEmpty else { return nil }
        let invalid = CallgateError(.invalidArgument, "invalid cursor '\(text.prefix(40))' for this report")
        if query.perDay {
            guard text.hasPrefix("d:"), text.utf8.count >= 13 else { throw invalid }
            let day = String(text.dropFirst(2).prefix(10))
            guard LocalDate(day) != nil, text.dropFirst(12).first == ":" else { throw invalid }
            self.init(key: String(text.dropFirst(13)), day: day)
        } else {
            guard text.hasPrefix("k:") else { throw invalid }
            self.init(key: String(text.dropFirst(2)), day: nil)
        }
        if query.groupBy == .number, PhoneNumber.digits(e164: self.key) == nil { throw invalid }
    }

    var text: String { self.day.map { "d:\($0):\(self.key)" } ?? "k:\(self.key)" }
}

/// A page being filled from rows in (key, day) order.
private struct Page {
    let query: UsageQuery
    let after: Cursor?
    let limit: Int
    var rows: [UsageReportRow] = []
    var more = false

    init(query: UsageQuery, after: Cursor?, limit: Int) {
        self.query = query
        self.after = after
        self.limit = limit
    }

    /// Adds one day of one key (`counter`: the number's daily counter that day, when known).
    ///
    /// - Returns: `true` once the page is full and a further row exists.
    mutating func add(key: String, day: String, _ counts: UsageCounts, counter: UInt64?) -> Bool {
        if let after, !self.isAfter(key, day, after) { return false }
        let rowDay = self.query.perDay ? day : nil
        if self.rows.last?.key != key || self.rows.last?.day != rowDay {
            if self.rows.count == self.limit {
                self.more = true
                return true
            }
            self.rows.append(UsageReportRow(key: key, day: rowDay))
        }
        var counts = counts
        // The counter is exact per number and day unless it was reset; the tallies are exact unless a
        // crash took their last interval: each is a lower bound of the calls allowed.
        if let counter, counter > counts.allowed { counts.allowed = counter }
        self.rows[self.rows.count - 1].add(counts)
        return false
    }

    /// Whether (key, day) comes after the cursor, in the order of the query's keys.
    private func isAfter(_ key: String, _ day: String, _ after: Cursor) -> Bool {
        if key != after.key {
            if self.query.groupBy == .number {
                return (PhoneNumber.digits(e164: key) ?? 0) > (PhoneNumber.digits(e164: after.key) ?? 0)
            }
            // SQLite's order of text: bytes of the UTF-8.
            return after.key.utf8.lexicographicallyPrecedes(key.utf8)
        }
        guard let afterDay = after.day else { return false }
        return day > afterDay
    }

    func finish() -> UsageReport {
        let next = self.more ? self.rows.last.map { Cursor(key: $0.key, day: $0.day).text } : nil
        return UsageReport(rows: self.rows, nextCursor: next, unknownAgents: nil)
    }
}

extension PhoneNumber {
    /// The digits of `+<digits>` as written by reports; `nil` for anything else.
    static func digits(e164 text: String) -> UInt64? {
        guard text.hasPrefix("+"), let digits = UInt64(text.dropFirst()) else { return nil }
        return PhoneNumber(digits: digits)?.digits
    }
}
