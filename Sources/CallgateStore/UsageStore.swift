import CallgateCore

/// The tables of the usage report.
///
/// ```
/// usage     one row per (organization, local day, agent, number): allowed calls by local hour
///           (h00…h23, and their sum), denials by reason; agent '' = agent ids not in the organization,
///           e164 0 = denials tied to none of the agent's numbers. Rows grow by deltas (+=).
/// counters  (existing) the daily counter of each number; counters_by_day serves retention.
/// ```
enum UsageSchema {
    /// Migration 3. Never edit it once shipped: append a new migration.
    static let migration = """
        CREATE TABLE usage (
            organization_id INTEGER NOT NULL,
            day TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            e164 INTEGER NOT NULL,
            allowed INTEGER NOT NULL DEFAULT 0,
            h00 INTEGER NOT NULL DEFAULT 0, h01 INTEGER NOT NULL DEFAULT 0, h02 INTEGER NOT NULL DEFAULT 0,
            h03 INTEGER NOT NULL DEFAULT 0, h04 INTEGER NOT NULL DEFAULT 0, h05 INTEGER NOT NULL DEFAULT 0,
            h06 INTEGER NOT NULL DEFAULT 0, h07 INTEGER NOT NULL DEFAULT 0, h08 INTEGER NOT NULL DEFAULT 0,
            h09 INTEGER NOT NULL DEFAULT 0, h10 INTEGER NOT NULL DEFAULT 0, h11 INTEGER NOT NULL DEFAULT 0,
            h12 INTEGER NOT NULL DEFAULT 0, h13 INTEGER NOT NULL DEFAULT 0, h14 INTEGER NOT NULL DEFAULT 0,
            h15 INTEGER NOT NULL DEFAULT 0, h16 INTEGER NOT NULL DEFAULT 0, h17 INTEGER NOT NULL DEFAULT 0,
            h18 INTEGER NOT NULL DEFAULT 0, h19 INTEGER NOT NULL DEFAULT 0, h20 INTEGER NOT NULL DEFAULT 0,
            h21 INTEGER NOT NULL DEFAULT 0, h22 INTEGER NOT NULL DEFAULT 0, h23 INTEGER NOT NULL DEFAULT 0,
            denied_no_assignment INTEGER NOT NULL DEFAULT 0,
            denied_number_not_assigned_to_agent INTEGER NOT NULL DEFAULT 0,
            denied_daily_limit_reached INTEGER NOT NULL DEFAULT 0,
            denied_country_not_allowed INTEGER NOT NULL DEFAULT 0,
            denied_number_inactive INTEGER NOT NULL DEFAULT 0,
            denied_agent_inactive INTEGER NOT NULL DEFAULT 0,
            denied_unknown_agent INTEGER NOT NULL DEFAULT 0,
            denied_invalid_destination INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (organization_id, day, agent_id, e164)
        ) WITHOUT ROWID;
        CREATE INDEX usage_by_agent ON usage (organization_id, agent_id, day);
        CREATE INDEX usage_by_number ON usage (organization_id, e164, day);
        CREATE INDEX counters_by_day ON counters (organization_id, day);
        """

    /// `h00, …, h23`.
    static let hourColumns = (0..<24).map { $0 < 10 ? "h0\($0)" : "h\($0)" }

    /// `denied_no_assignment, …` in the order of ``DenyReason``'s raw values.
    static let deniedColumns = DenyReason.allCases.sorted { $0.rawValue < $1.rawValue }.map {
        "denied_" + $0.description.lowercased()
    }

    /// `allowed, h00…h23, denied_…`: the counted columns, in the order the writer binds them.
    static let countColumns = ["allowed"] + hourColumns + deniedColumns
}

/// The writer thread's side of usage: adds the engine's tallies and deletes past days, in the writer's
/// transactions (so they never compete with it for the database). Separate from the writer's own
/// statements; used only on the writer thread.
final class UsageWriter {
    private let upsert: SQLiteStatement
    private let pruneUsage: SQLiteStatement
    private let pruneCounters: SQLiteStatement
    private let insertAudit: SQLiteStatement

    init(_ db: SQLiteDatabase) throws(SQLiteError) {
        let columns = UsageSchema.countColumns
        self.upsert = try db.prepare(
            """
            INSERT INTO usage (organization_id, day, agent_id, e164, \(columns.joined(separator: ", ")))
            VALUES (?, ?, ?, ?, \(columns.map { _ in "?" }.joined(separator: ", ")))
            ON CONFLICT (organization_id, day, agent_id, e164) DO UPDATE SET
            \(columns.map { "\($0) = \($0) + excluded.\($0)" }.joined(separator: ", "))
            """
        )
        self.pruneUsage = try db.prepare(
            """
            DELETE FROM usage WHERE (organization_id, day, agent_id, e164) IN (
                SELECT organization_id, day, agent_id, e164 FROM usage
                WHERE organization_id = ?1 AND day < ?2 LIMIT ?3)
            """
        )
        self.pruneCounters = try db.prepare(
            """
            DELETE FROM counters WHERE (organization_id, e164, day_key) IN (
                SELECT organization_id, e164, day_key FROM counters INDEXED BY counters_by_day
                WHERE organization_id = ?1 AND day < ?2 LIMIT ?3)
            """
        )
        self.insertAudit = try db.prepare(
            """
            INSERT INTO audit_log (organization_id, at, actor, action, e164, agent_id, before, after)
            VALUES (?, ?, ?, ?, NULL, NULL, NULL, ?)
            """
        )
    }

    /// Applies a usage change (``ChangeEvent/usageTallied(_:)`` or ``ChangeEvent/retentionPruned(_:)``)
    /// inside the writer's open transaction.
    func apply(_ record: ChangeRecord) throws(SQLiteError) {
        let org = Int64(record.organization.rawValue)
        switch record.event {
        case .usageTallied(let records):
            for r in records where !r.isEmpty {
                self.upsert.bind(1, org)
                self.upsert.bind(2, r.day)
                self.upsert.bind(3, r.agent)
                self.upsert.bind(4, Int64(r.number?.digits ?? 0))
                self.upsert.bind(5, Int64(r.allowed))
                var index: Int32 = 6
                for value in r.allowedByHour + r.denied {
                    self.upsert.bind(index, Int64(value))
                    index += 1
                }
                try self.upsert.run()
            }
        case .retentionPruned(let prune):
            for statement in [self.pruneUsage, self.pruneCounters] {
                statement.bind(1, org)
                statement.bind(2, prune.beforeDay)
                statement.bind(3, Int64(prune.limit))
                try statement.run()
            }
            if let summary = prune.summary {
                var after = AuditJSON.Object()
                after.add("before_day", prune.beforeDay)
                after.add("retention_days", summary.retentionDays)
                after.add("counters", summary.counters)
                after.add("usage", summary.usage)
                self.insertAudit.bindAll([
                    .int(org), .int(record.at.milliseconds), .text(record.actor?.id ?? "system"),
                    .text(record.event.action ?? "retention.prune"), .text(after.json),
                ])
                try self.insertAudit.run()
            }
        default:
            break
        }
    }
}
