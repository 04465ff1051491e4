import CSQLite
public import CallgateCore

/// An API key as stored and listed: everything but its secret, which exists only in the string
/// handed out once by ``KeyRing/create(organization:role:agent:label:actor:now:)``.
public struct APIKeyRecord: Sendable, Hashable {
    /// 16 lowercase hex characters; the public part of the key (`cgk_<id>_<secret>`).
    public var id: String
    public var organization: OrganizationID
    public var role: Role
    /// The agent a key of role ``Role/agent`` is bound to; `nil` for every other role.
    public var agent: String?
    public var label: String
    public var createdAt: Timestamp
    public var createdBy: Actor
    /// When the key was revoked; `nil` while it is active.
    public var revokedAt: Timestamp?

    public init(
        id: String,
        organization: OrganizationID,
        role: Role,
        agent: String?,
        label: String,
        createdAt: Timestamp,
        createdBy: Actor,
        revokedAt: Timestamp? = nil
    ) {
        self.id = id
        self.organization = organization
        self.role = role
        self.agent = agent
        self.label = label
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.revokedAt = revokedAt
    }

    /// Whether the key still authenticates.
    public var isActive: Bool { self.revokedAt == nil }
}

/// The API keys of all organizations (design: "Access"): created, authenticated, listed, revoked.
///
/// A key is `cgk_<id>_<secret>`: `id` is 16 lowercase hex characters (8 random bytes), `secret` 64
/// (32 random bytes from `SystemRandomNumberGenerator`). Only SHA-256 of the secret's 64 ASCII
/// characters is stored, in `api_keys.hash`; the secret is returned once by ``create(organization:role:agent:label:actor:now:)``
/// and never stored, kept or logged.
///
/// All keys live in memory (loaded by ``Store/open(_:clock:)``), so ``authenticate(_:)`` reads no
/// disk. Writes are rare admin operations: each runs synchronously in one transaction over the ring's
/// own SQLite connection (WAL, busy timeout), together with its audit row (`key.create`,
/// `key.revoke`), and memory changes only after the commit. Revoking takes effect at once for
/// ``authenticate(_:)`` and ``isActive(id:)``, which servers check on open connections.
public final class KeyRing: Sendable {
    /// The longest label, in characters.
    public static let maximumLabelLength = 200

    static let prefix = "cgk_"
    /// `cgk_` + 16 + `_` + 64.
    static let presentedLength = 85

    private struct Entry {
        var record: APIKeyRecord
        /// SHA-256 of the secret.
        var hash: [UInt8]
    }

    /// The write connection; `nil` once closed. Lock order: `connection`, then `keys`.
    private let connection: Locked<SQLiteDatabase?>
    /// Every key by id.
    private let keys: Locked<[String: Entry]>
    /// To check that an organization exists; `nil` in tests of the ring alone.
    private let engine: Engine?

    /// Opens a connection to the (migrated) database at `path` and loads every key.
    init(path: String, maximumPageCount: Int? = nil, engine: Engine?) throws(StoreError) {
        let db: SQLiteDatabase
        var keys: [String: Entry] = [:]
        do {
            db = try SQLiteDatabase(path: path, create: false)
            try db.execute("PRAGMA journal_mode = WAL")
            // Wait for the group-commit writer rather than fail; its transactions are short.
            try db.execute("PRAGMA busy_timeout = 10000")
            // Rare writes: sync each one, so that a revocation survives a power loss.
            try db.execute("PRAGMA synchronous = FULL")
            if let maximumPageCount { try db.execute("PRAGMA max_page_count = \(maximumPageCount)") }
            let rows = try db.prepare(
                """
                SELECT id, organization_id, hash, role, agent_id, label, created_at, created_by, revoked_at
                FROM api_keys
                """
            )
            while try rows.step() {
                let id = rows.text(0)
                let hash = rows.blob(2)
                guard let role = Role(name: rows.text(3)), hash.count == 32 else {
                    throw StoreError.corrupt("API key \(id) has an invalid role or hash")
                }
                let record = APIKeyRecord(
                    id: id,
                    organization: OrganizationID(UInt32(truncatingIfNeeded: rows.int64(1))),
                    role: role,
                    agent: rows.optionalText(4),
                    label: rows.text(5),
                    createdAt: Timestamp(milliseconds: rows.int64(6)),
                    createdBy: Actor(rows.text(7)),
                    revokedAt: rows.optionalInt64(8).map(Timestamp.init(milliseconds:))
                )
                keys[id] = Entry(record: record, hash: hash)
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw .storage(error)
        }
        self.connection = Locked(db)
        self.keys = Locked(keys)
        self.engine = engine
    }

    /// Closes the write connection: later writes fail with `unavailable`. Reads keep working.
    func close() {
        self.connection.withLock { $0 = nil }
    }

    // MARK: - Writes

    /// Creates a key and returns its record and the key itself (`cgk_<id>_<secret>`), the only time
    /// the secret exists outside the caller: show it once, never log it.
    ///
    /// - Parameters:
    ///   - agent: required (a valid agent id) for ``Role/agent``, `nil` for the other roles; an empty
    ///     string counts as `nil` (a protobuf default).
    ///   - label: at most ``maximumLabelLength`` characters, no control characters.
    /// - Throws: `invalidArgument` (agent, label), `notFound` (no such organization), `unavailable`
    ///   (the database failed or the store is closed; nothing changed).
    public func create(
        organization: OrganizationID,
        role: Role,
        agent: String?,
        label: String,
        actor: Actor,
        now: Timestamp
    ) throws(CallgateError) -> (record: APIKeyRecord, secret: String) {
        let agent = agent?.isEmpty == true ? nil : agent
        try Self.validate(role: role, agent: agent, label: label)
        if let engine = self.engine, engine.organization(organization) == nil {
            throw CallgateError(.notFound, "no organization \(organization)")
        }
        return try self.connection.withLock { (db) throws(CallgateError) -> (record: APIKeyRecord, secret: String) in
            guard let db else { throw Self.closed }
            var generator = SystemRandomNumberGenerator()
            // 64 random bits: a collision is next to impossible, but it would draw again, not share an id
            // (memory holds every key, so it is checked there).
            for _ in 0..<4 {
                let id = Self.randomHex(byteCount: 8, using: &generator)
                if self.keys.withLock({ $0[id] != nil }) { continue }
                let secret = Self.randomHex(byteCount: 32, using: &generator)
                let record = APIKeyRecord(
                    id: id,
                    organization: organization,
                    role: role,
                    agent: agent,
                    label: label,
                    createdAt: now,
                    createdBy: actor
                )
                let hash = SHA256.hash(secret.utf8)
                do throws(SQLiteError) {
                    try Self.transaction(db) { () throws(SQLiteError) in
                        let insert = try db.prepare(
                            """
                            INSERT INTO api_keys (id, organization_id, hash, role, agent_id, label, created_at,
                                created_by, revoked_at)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)
                            """
                        )
                        insert.bindAll([
                            .text(id), .int(Int64(organization.rawValue)), .null, .text(role.description),
                            agent.map { .text($0) } ?? .null, .text(label), .int(now.milliseconds), .text(actor.id),
                        ])
                        insert.bind(3, hash)
                        try insert.run()
                        try Self.audit(db, "key.create", record, at: now, actor: actor, before: nil, after: record)
                    }
                } catch {
                    throw Self.unavailable(error)
                }
                self.keys.withLock { $0[id] = Entry(record: record, hash: hash) }
                return (record, Self.prefix + id + "_" + secret)
            }
            throw CallgateError(.internal, "could not draw an unused API key id")
        }
    }

    /// Revokes a key: from now on it authenticates nothing, including on open connections that check
    /// ``isActive(id:)``.
    ///
    /// Idempotent: revoking a revoked key changes nothing (no second audit row) and returns its record
    /// with the original ``APIKeyRecord/revokedAt``, so a retried request succeeds.
    ///
    /// - Throws: `notFound` when `organization` has no key `id` (a key of another organization is not
    ///   found either), `unavailable` (the database failed or the store is closed; nothing changed).
    public func revoke(
        id: String,
        organization: OrganizationID,
        actor: Actor,
        now: Timestamp
    ) throws(CallgateError) -> APIKeyRecord {
        try self.connection.withLock { (db) throws(CallgateError) -> APIKeyRecord in
            guard let entry = self.keys.withLock({ $0[id] }), entry.record.organization == organization else {
                throw CallgateError(.notFound, "no API key '\(id)' in \(organization)")
            }
            if !entry.record.isActive { return entry.record }
            guard let db else { throw Self.closed }
            var revoked = entry.record
            revoked.revokedAt = now
            do throws(SQLiteError) {
                try Self.transaction(db) { () throws(SQLiteError) in
                    let update = try db.prepare(
                        "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND organization_id = ? AND revoked_at IS NULL"
                    )
                    update.bindAll([.int(now.milliseconds), .text(id), .int(Int64(organization.rawValue))])
                    try update.run()
                    guard db.changes == 1 else {
                        throw SQLiteError(
                            code: SQLITE_NOTFOUND,
                            message: "the row of API key \(id) is missing or already revoked",
                            context: "revoking"
                        )
                    }
                    try Self.audit(
                        db,
                        "key.revoke",
                        revoked,
                        at: now,
                        actor: actor,
                        before: entry.record,
                        after: revoked
                    )
                }
            } catch {
                throw Self.unavailable(error)
            }
            self.keys.withLock { $0[id]?.record = revoked }
            return revoked
        }
    }

    // MARK: - Reads

    /// The active key `presented` (`cgk_<id>_<secret>`) is, or `nil` when it is malformed, unknown,
    /// revoked or its secret is wrong. The hashes are compared in constant time; `presented` is
    /// neither kept nor logged.
    public func authenticate(_ presented: String) -> APIKeyRecord? {
        guard let id = Self.parse(presented) else { return nil }
        let hash = SHA256.hash(presented.utf8.suffix(64))
        guard let entry = self.keys.withLock({ $0[id] }), entry.record.isActive,
            constantTimeEqual(hash, entry.hash)
        else { return nil }
        return entry.record
    }

    /// Whether `id` names a key that is not revoked.
    public func isActive(id: String) -> Bool {
        self.keys.withLock { $0[id]?.record.isActive ?? false }
    }

    /// The keys of an organization, oldest first (then by id).
    public func list(organization: OrganizationID, includeRevoked: Bool) -> [APIKeyRecord] {
        let records = self.keys.withLock { keys in
            keys.values.compactMap { entry in
                entry.record.organization == organization && (includeRevoked || entry.record.isActive)
                    ? entry.record : nil
            }
        }
        return records.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    // MARK: - Helpers

    /// The id of a well-formed `cgk_<16 hex>_<64 hex>` (lowercase), else `nil`.
    static func parse(_ presented: String) -> String? {
        let bytes = presented.utf8
        guard bytes.count == Self.presentedLength, bytes.starts(with: Self.prefix.utf8) else { return nil }
        let id = bytes.dropFirst(4).prefix(16)
        let separator = bytes.index(bytes.startIndex, offsetBy: 20)
        guard bytes[separator] == UInt8(ascii: "_"), id.allSatisfy(Self.isLowerHex),
            bytes[bytes.index(after: separator)...].allSatisfy(Self.isLowerHex)
        else { return nil }
        return String(Substring(id))
    }

    private static func isLowerHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }

    private static func randomHex(byteCount: Int, using generator: inout SystemRandomNumberGenerator) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(byteCount * 2)
        for _ in 0..<byteCount {
            let byte: UInt8 = generator.next()
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    private static func validate(role: Role, agent: String?, label: String) throws(CallgateError) {
        if role == .agent {
            guard let agent else { throw CallgateError(.invalidArgument, "a key of role agent needs an agent id") }
            guard agent.utf8.count <= 128 else {
                throw CallgateError(.invalidArgument, "agent id is longer than 128 bytes")
            }
            guard !agent.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == " " })
            else {
                throw CallgateError(.invalidArgument, "agent id must not contain blanks or control characters")
            }
        } else if agent != nil {
            throw CallgateError(
                .invalidArgument,
                "only a key of role agent is bound to an agent; a \(role) key must not name one"
            )
        }
        guard label.count <= Self.maximumLabelLength else {
            throw CallgateError(.invalidArgument, "label is longer than \(Self.maximumLabelLength) characters")
        }
        guard !label.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw CallgateError(.invalidArgument, "label contains control characters")
        }
    }

    /// Runs `body` in one `BEGIN IMMEDIATE` … `COMMIT`, rolled back when anything fails.
    private static func transaction(
        _ db: SQLiteDatabase,
        _ body: () throws(SQLiteError) -> Void
    ) throws(SQLiteError) {
        try db.execute("BEGIN IMMEDIATE")
        do {
            try body()
            try db.execute("COMMIT")
        } catch {
            try? db.execute("ROLLBACK")
            throw error
        }
    }

    /// Writes one audit row; the JSON names the key (id, role, agent, label), never its secret or hash.
    private static func audit(
        _ db: SQLiteDatabase,
        _ action: String,
        _ record: APIKeyRecord,
        at: Timestamp,
        actor: Actor,
        before: APIKeyRecord?,
        after: APIKeyRecord?
    ) throws(SQLiteError) {
        let insert = try db.prepare(
            """
            INSERT INTO audit_log (organization_id, at, actor, action, e164, agent_id, before, after)
            VALUES (?, ?, ?, ?, NULL, ?, ?, ?)
            """
        )
        insert.bindAll([
            .int(Int64(record.organization.rawValue)), .int(at.milliseconds), .text(actor.id), .text(action),
            record.agent.map { .text($0) } ?? .null, before.map { .text(Self.json($0)) } ?? .null,
            after.map { .text(Self.json($0)) } ?? .null,
        ])
        try insert.run()
    }

    static func json(_ record: APIKeyRecord) -> String {
        var object = AuditJSON.Object()
        object.add("id", record.id)
        object.add("role", record.role.description)
        if let agent = record.agent { object.add("agent", agent) }
        object.add("label", record.label)
        if let revokedAt = record.revokedAt { object.add("revokedAt", revokedAt.iso8601) }
        return object.json
    }

    private static let closed = CallgateError(.unavailable, "the store is closed")

    private static func unavailable(_ error: SQLiteError) -> CallgateError {
        CallgateError(.unavailable, "cannot write the API key: \(error)")
    }
}
