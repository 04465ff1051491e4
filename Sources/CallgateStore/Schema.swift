/// The database schema, as an ordered list of migrations. `PRAGMA user_version` holds how many have
/// been applied; each runs in its own transaction.
///
/// - Important: Never edit a migration that has shipped: append a new one.
enum Schema {
    static let migrations: [String] = [
        // 1: the first schema.
        """
        CREATE TABLE organizations (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            time_zone TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            organization_id INTEGER NOT NULL REFERENCES organizations(id),
            hash BLOB NOT NULL,
            role TEXT NOT NULL,
            agent_id TEXT,
            label TEXT NOT NULL DEFAULT '',
            created_at INTEGER NOT NULL,
            created_by TEXT NOT NULL,
            revoked_at INTEGER
        );
        CREATE TABLE numbers (
            organization_id INTEGER NOT NULL,
            e164 INTEGER NOT NULL,
            provider TEXT NOT NULL,
            country TEXT NOT NULL,
            capabilities INTEGER NOT NULL,
            status TEXT NOT NULL,
            location TEXT NOT NULL,
            tags TEXT NOT NULL,
            number_type TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            created_by TEXT NOT NULL,
            modified_at INTEGER NOT NULL,
            modified_by TEXT NOT NULL,
            released_at INTEGER,
            PRIMARY KEY (organization_id, e164)
        ) WITHOUT ROWID;
        CREATE TABLE agents (
            organization_id INTEGER NOT NULL,
            id TEXT NOT NULL,
            display_name TEXT NOT NULL,
            principal TEXT NOT NULL,
            active INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            modified_at INTEGER NOT NULL,
            PRIMARY KEY (organization_id, id)
        ) WITHOUT ROWID;
        CREATE TABLE assignments (
            organization_id INTEGER NOT NULL,
            e164 INTEGER NOT NULL,
            agent_id TEXT NOT NULL,
            daily_limit INTEGER NOT NULL,
            allowed_countries TEXT NOT NULL,
            assigned_at INTEGER NOT NULL,
            assigned_by TEXT NOT NULL,
            calls INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (organization_id, e164)
        ) WITHOUT ROWID;
        CREATE INDEX assignments_by_agent ON assignments (organization_id, agent_id);
        CREATE TABLE counters (
            organization_id INTEGER NOT NULL,
            e164 INTEGER NOT NULL,
            day_key INTEGER NOT NULL,
            day TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (organization_id, e164, day_key)
        ) WITHOUT ROWID;
        CREATE TABLE reservations (
            organization_id INTEGER NOT NULL,
            e164 INTEGER NOT NULL,
            id INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            agent_id TEXT,
            reserved_by TEXT NOT NULL,
            PRIMARY KEY (organization_id, e164)
        ) WITHOUT ROWID;
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            organization_id INTEGER NOT NULL,
            at INTEGER NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            e164 INTEGER,
            agent_id TEXT,
            before TEXT,
            after TEXT
        );
        CREATE INDEX audit_by_time ON audit_log (organization_id, at);
        CREATE INDEX audit_by_number ON audit_log (organization_id, e164, at) WHERE e164 IS NOT NULL;
        CREATE INDEX audit_by_agent ON audit_log (organization_id, agent_id, at) WHERE agent_id IS NOT NULL;
        CREATE TABLE assignment_history (
            id INTEGER PRIMARY KEY,
            organization_id INTEGER NOT NULL,
            e164 INTEGER NOT NULL,
            agent_id TEXT NOT NULL,
            from_at INTEGER NOT NULL,
            to_at INTEGER NOT NULL,
            calls INTEGER NOT NULL
        );
        CREATE INDEX history_by_number ON assignment_history (organization_id, e164, from_at);
        """,
        // 2: low-capacity thresholds of pools (tags, in lower case).
        """
        CREATE TABLE pool_thresholds (
            organization_id INTEGER NOT NULL,
            pool TEXT NOT NULL,
            threshold INTEGER NOT NULL,
            PRIMARY KEY (organization_id, pool)
        ) WITHOUT ROWID;
        """,
        // 3: usage tallies, and counters by day for retention (UsageStore.swift).
        UsageSchema.migration,
        // 4: the counter log: each group's counters, folded into `counters` every few seconds
        // (ChangeWriter.swift). `entries` packs 24-byte little-endian entries: organization u32,
        // e164 digits u64, day key i64, count u32.
        """
        CREATE TABLE counter_log (
            id INTEGER PRIMARY KEY,
            entries BLOB NOT NULL
        );
        """,
        // 5: the counter journal (CounterJournal.swift): its mark, the largest counter log id whose
        // journal record is in `counter_log` or `counters` (records up to it are skipped at open), and
        // the salt of this start's records.
        """
        CREATE TABLE counter_journal (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            absorbed_through INTEGER NOT NULL,
            salt INTEGER NOT NULL
        );
        INSERT INTO counter_journal (id, absorbed_through, salt) VALUES (1, 0, 0);
        """,
    ]

    /// The schema version this build writes.
    static var currentVersion: Int64 { Int64(self.migrations.count) }

    /// Brings the database to ``currentVersion``.
    ///
    /// - Throws: ``StoreError`` when the file was written by a newer Callgate (never downgraded), or a
    ///   migration fails (then that migration is rolled back).
    static func migrate(_ db: SQLiteDatabase) throws(StoreError) {
        let version: Int64
        do {
            version = try db.scalar("PRAGMA user_version") ?? 0
        } catch {
            throw StoreError.storage(error)
        }
        guard version <= self.currentVersion else {
            throw StoreError.schemaTooNew(found: version, known: self.currentVersion)
        }
        for index in Int(version)..<self.migrations.count {
            do {
                try db.execute("BEGIN IMMEDIATE")
                try db.execute(self.migrations[index])
                try db.execute("PRAGMA user_version = \(index + 1)")
                try db.execute("COMMIT")
            } catch {
                try? db.execute("ROLLBACK")
                throw StoreError.storage(error)
            }
        }
    }
}

/// Why the store cannot be used.
public enum StoreError: Error, CustomStringConvertible {
    /// The database was written by a newer Callgate.
    case schemaTooNew(found: Int64, known: Int64)
    /// SQLite or the disk failed.
    case storage(any Error)
    /// The stored data is not what this Callgate expects.
    case corrupt(String)

    public var description: String {
        switch self {
        case .schemaTooNew(let found, let known):
            return "the database has schema version \(found), newer than this callgate knows (\(known)); "
                + "run a newer callgate or restore a backup (it is never downgraded)"
        case .storage(let error):
            return "storage failure: \(error)"
        case .corrupt(let what):
            return "the database is inconsistent: \(what)"
        }
    }
}
