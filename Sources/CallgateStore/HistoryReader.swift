public import CallgateCore

/// One entry of the audit log.
public struct AuditEntry: Sendable, Hashable {
    public var id: Int64
    public var organization: OrganizationID
    public var at: Timestamp
    public var actor: String
    public var action: String
    public var number: PhoneNumber?
    public var agent: String?
    /// JSON of the record before the change (`nil` for additions).
    public var before: String?
    /// JSON of the record after the change (`nil` for deletions).
    public var after: String?
}

/// One period during which an agent held a number.
public struct HoldingPeriod: Sendable, Hashable {
    public var agent: String
    public var from: Timestamp
    /// `nil` while the agent still holds the number.
    public var to: Timestamp?
    /// Calls placed from the number during the period.
    public var calls: UInt64
}

/// Filters for the audit log. Every set field must match.
public struct AuditQuery: Sendable, Hashable {
    public var number: PhoneNumber?
    public var agent: String?
    /// Inclusive lower bound.
    public var from: Timestamp?
    /// Exclusive upper bound.
    public var to: Timestamp?

    public init(number: PhoneNumber? = nil, agent: String? = nil, from: Timestamp? = nil, to: Timestamp? = nil) {
        self.number = number
        self.agent = agent
        self.from = from
        self.to = to
    }
}

/// Reads the history (audit log and assignment timelines) over its own SQLite connection, so reads
/// never wait for the writer (WAL lets readers and the writer work at once).
public final class HistoryReader: Sendable {
    private let connection: Locked<SQLiteDatabase>

    init(path: String) throws(SQLiteError) {
        let db = try SQLiteDatabase(path: path, readOnly: true, create: false)
        self.connection = Locked(db)
    }

    /// Audit entries of an organization, newest first, one page at a time.
    ///
    /// - Parameters:
    ///   - cursor: the previous page's ``Page/nextCursor``.
    ///   - limit: 1…1000.
    public func audit(
        _ organization: OrganizationID,
        _ query: AuditQuery = AuditQuery(),
        cursor: String? = nil,
        limit: Int = 100
    ) throws(CallgateError) -> Page<AuditEntry> {
        guard limit >= 1, limit <= 1000 else {
            throw CallgateError(.invalidArgument, "page size must be 1 to 1000, got \(limit)")
        }
        var before = Int64.max
        if let cursor, !cursor.isEmpty {
            guard let value = Int64(cursor) else { throw CallgateError(.invalidArgument, "invalid cursor '\(cursor)'") }
            before = value
        }
        var sql =
            "SELECT id, at, actor, action, e164, agent_id, before, after FROM audit_log WHERE organization_id = ? AND id < ?"
        var values: [SQLiteValue] = [.int(Int64(organization.rawValue)), .int(before)]
        if let number = query.number {
            sql += " AND e164 = ?"
            values.append(.int(Int64(number.digits)))
        }
        if let agent = query.agent {
            sql += " AND agent_id = ?"
            values.append(.text(agent))
        }
        if let from = query.from {
            sql += " AND at >= ?"
            values.append(.int(from.milliseconds))
        }
        if let to = query.to {
            sql += " AND at < ?"
            values.append(.int(to.milliseconds))
        }
        sql += " ORDER BY id DESC LIMIT \(limit + 1)"
        let rows: [AuditEntry]
        do {
            rows = try self.connection.withLock { (db) throws(SQLiteError) -> [AuditEntry] in
                let stmt = try db.prepare(sql)
                stmt.bindAll(values)
                return try stmt.rows { row in
                    AuditEntry(
                        id: row.int64(0),
                        organization: organization,
                        at: Timestamp(milliseconds: row.int64(1)),
                        actor: row.text(2),
                        action: row.text(3),
                        number: row.optionalInt64(4).flatMap { PhoneNumber(digits: UInt64(bitPattern: $0)) },
                        agent: row.optionalText(5),
                        before: row.optionalText(6),
                        after: row.optionalText(7)
                    )
                }
            }
        } catch {
            throw CallgateError(.unavailable, "cannot read the audit log: \(error)")
        }
        let page = Array(rows.prefix(limit))
        return Page(items: page, nextCursor: rows.count > limit ? page.last.map { String($0.id) } : nil)
    }

    /// Who held a number, from when to when, and how many calls they made, oldest first; the current
    /// holder (from `current`, the engine's view) comes last with no end.
    public func timeline(
        _ organization: OrganizationID,
        number: PhoneNumber,
        current: AssignmentRecord? = nil
    ) throws(CallgateError) -> [HoldingPeriod] {
        do {
            var periods = try self.connection.withLock { (db) throws(SQLiteError) -> [HoldingPeriod] in
                let stmt = try db.prepare(
                    "SELECT agent_id, from_at, to_at, calls FROM assignment_history WHERE organization_id = ? AND e164 = ? ORDER BY from_at, id"
                )
                stmt.bindAll([.int(Int64(organization.rawValue)), .int(Int64(number.digits))])
                return try stmt.rows {
                    HoldingPeriod(
                        agent: $0.text(0),
                        from: Timestamp(milliseconds: $0.int64(1)),
                        to: Timestamp(milliseconds: $0.int64(2)),
                        calls: UInt64(clamping: $0.int64(3))
                    )
                }
            }
            if let current {
                periods.append(
                    HoldingPeriod(
                        agent: current.agent,
                        from: current.assignedAt,
                        to: nil,
                        calls: current.callsSinceAssigned
                    )
                )
            }
            return periods
        } catch {
            throw CallgateError(.unavailable, "cannot read the assignment history: \(error)")
        }
    }
}
