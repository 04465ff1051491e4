import CallgateCore
import Foundation
import Testing

@testable import CallgateStore

@Suite struct SHA256Tests {
    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test(
        arguments: [
            ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
            ),
        ]
    )
    func fipsVectors(message: String, digest: String) {
        #expect(Self.hex(SHA256.hash(Array(message.utf8))) == digest)
        #expect(Self.hex(SHA256.hash(message.utf8)) == digest)
    }

    /// Lengths around the padding boundaries (55/56 and 64 bytes), from Python's hashlib.
    @Test(
        arguments: [
            (55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"),
            (56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"),
            (63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"),
            (64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"),
            (65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"),
            (119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"),
            (120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"),
            (128, "6836cf13bac400e9105071cd6af47084dfacad4e5e302c94bfed24e013afb73e"),
        ]
    )
    func paddingBoundaries(count: Int, digest: String) {
        #expect(Self.hex(SHA256.hash([UInt8](repeating: UInt8(ascii: "a"), count: count))) == digest)
    }

    /// 1000 bytes `i * 7 % 256` (`hashlib.sha256(bytes(i*7%256 for i in range(1000)))`).
    @Test func aThousandBytes() {
        let message = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        #expect(Self.hex(SHA256.hash(message)) == "89f4ff56a25dd1db06a4ce6033603775d705fb96f30f8693733fef602a1ca532")
    }

    @Test func constantTimeEquality() {
        #expect(constantTimeEqual([], []))
        #expect(constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!constantTimeEqual([0, 2, 3], [1, 2, 3]))
        #expect(!constantTimeEqual([1, 2, 3], [1, 2]))
    }
}

@Suite struct KeyRingTests {
    let acme = OrganizationID(1)
    let other = OrganizationID(2)

    /// A store with two organizations (ids 1 and 2).
    static func openStore(_ path: String) throws -> Store {
        let store = try Store.open(StoreConfiguration(path: path), clock: ManualClock(start))
        if store.engine.organization(OrganizationID(1)) == nil {
            _ = try store.engine.createOrganization(name: "Acme", timeZone: "America/New_York", actor: admin)
            _ = try store.engine.createOrganization(name: "Other", timeZone: "Europe/Paris", actor: admin)
        }
        return store
    }

    /// The `<secret>` part of `cgk_<id>_<secret>`.
    static func secretPart(_ key: String) -> String { String(key.suffix(64)) }

    @Test func roles() {
        #expect(Role.allCases.map(\.rawValue) == [1, 2, 3, 4])
        #expect(Role.allCases.map(\.description) == ["admin", "manager", "dialer", "agent"])
        #expect(Role(name: "dialer") == .dialer && Role(name: "Admin") == .admin)
        #expect(Role(name: "root") == nil && Role(name: "") == nil)
    }

    @Test func aCreatedKeyAuthenticates() throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let store = try Self.openStore(path)
        defer { store.close() }
        let (record, key) = try store.keys.create(
            organization: acme,
            role: .dialer,
            agent: nil,
            label: "dialer 1",
            actor: admin,
            now: start
        )
        #expect(key.hasPrefix("cgk_\(record.id)_") && key.utf8.count == 85)
        #expect(record.id.utf8.count == 16 && record.id.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(Self.secretPart(key).allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(record.organization == acme && record.role == .dialer && record.agent == nil)
        #expect(record.label == "dialer 1" && record.createdAt == start && record.createdBy == admin)
        #expect(record.revokedAt == nil && record.isActive)
        #expect(store.keys.authenticate(key) == record)
        #expect(store.keys.isActive(id: record.id))
        #expect(store.keys.list(organization: acme, includeRevoked: false) == [record])
        #expect(store.keys.list(organization: other, includeRevoked: true).isEmpty)

        // Two keys never share an id or a secret.
        let second = try store.keys.create(
            organization: acme,
            role: .dialer,
            agent: nil,
            label: "",
            actor: admin,
            now: start
        )
        #expect(second.record.id != record.id && Self.secretPart(second.secret) != Self.secretPart(key))
        #expect(store.keys.authenticate(second.secret) == second.record)
    }

    @Test func wrongMalformedAndUnknownKeysDoNotAuthenticate() throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let store = try Self.openStore(path)
        defer { store.close() }
        let (record, key) = try store.keys.create(
            organization: acme,
            role: .admin,
            agent: nil,
            label: "",
            actor: admin,
            now: start
        )
        let last = key.last!
        let wrongSecret = String(key.dropLast()) + (last == "0" ? "1" : "0")
        let unknownID = "cgk_" + String(repeating: record.id.first == "0" ? "1" : "0", count: 16) + key.dropFirst(20)
        let otherKeysSecret = "cgk_\(record.id)_" + String(repeating: "ab", count: 32)
        for presented in [
            wrongSecret, unknownID, otherKeysSecret,
            "", "cgk_", key.uppercased(), "CGK" + key.dropFirst(3), String(key.dropLast()), key + "0", " " + key,
            key.replacingOccurrences(of: "cgk_\(record.id)_", with: "cgk_\(record.id)-"),
            "xyz_" + key.dropFirst(4), String(key.dropLast()) + "g", String(key.dropLast()) + "é",
        ] {
            #expect(store.keys.authenticate(presented) == nil, "\(presented.prefix(30))")
        }
        #expect(store.keys.authenticate(key) == record)
        #expect(!store.keys.isActive(id: "0000000000000000") && !store.keys.isActive(id: ""))
    }

    @Test func aRevokedKeyNoLongerAuthenticates() throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let store = try Self.openStore(path)
        defer { store.close() }
        let (record, key) = try store.keys.create(
            organization: acme,
            role: .manager,
            agent: nil,
            label: "ops",
            actor: admin,
            now: start
        )
        let later = start.adding(seconds: 60)
        let revoked = try store.keys.revoke(id: record.id, organization: acme, actor: admin, now: later)
        #expect(revoked.revokedAt == later && !revoked.isActive)
        #expect(store.keys.authenticate(key) == nil)
        #expect(!store.keys.isActive(id: record.id))
        #expect(store.keys.list(organization: acme, includeRevoked: false).isEmpty)
        #expect(store.keys.list(organization: acme, includeRevoked: true) == [revoked])
        // Idempotent: the same record, the first revocation time, no second audit row.
        let again = try store.keys.revoke(
            id: record.id,
            organization: acme,
            actor: admin,
            now: later.adding(seconds: 1)
        )
        #expect(again == revoked)
        #expect(try store.history.audit(acme).items.filter { $0.action == "key.revoke" }.count == 1)
    }

    @Test func keysSurviveAReopenAndRevokedStayRevoked() throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let kept: (record: APIKeyRecord, secret: String)
        let agentKey: (record: APIKeyRecord, secret: String)
        let gone: (record: APIKeyRecord, secret: String)
        let revoked: APIKeyRecord
        do {
            let store = try Self.openStore(path)
            defer { store.close() }
            kept = try store.keys.create(
                organization: acme,
                role: .admin,
                agent: nil,
                label: "first admin",
                actor: .system,
                now: start
            )
            agentKey = try store.keys.create(
                organization: other,
                role: .agent,
                agent: "a1",
                label: "Ada's softphone",
                actor: admin,
                now: start.adding(seconds: 1)
            )
            gone = try store.keys.create(
                organization: acme,
                role: .dialer,
                agent: nil,
                label: "old",
                actor: admin,
                now: start.adding(seconds: 2)
            )
            revoked = try store.keys.revoke(
                id: gone.record.id,
                organization: acme,
                actor: admin,
                now: start.adding(seconds: 3)
            )
        }
        let store = try Self.openStore(path)
        defer { store.close() }
        #expect(store.keys.authenticate(kept.secret) == kept.record)
        #expect(store.keys.authenticate(agentKey.secret) == agentKey.record)
        #expect(store.keys.authenticate(gone.secret) == nil)
        #expect(!store.keys.isActive(id: gone.record.id))
        #expect(store.keys.list(organization: acme, includeRevoked: true) == [kept.record, revoked])
        #expect(store.keys.list(organization: other, includeRevoked: false) == [agentKey.record])
        // Still writable after the reopen.
        let back = try store.keys.revoke(
            id: kept.record.id,
            organization: acme,
            actor: admin,
            now: start.adding(seconds: 9)
        )
        #expect(back.revokedAt == start.adding(seconds: 9) && store.keys.authenticate(kept.secret) == nil)
    }

    @Test func theDatabaseHoldsOnlyTheHash() throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let store = try Self.openStore(path)
        defer { store.close() }
        let (record, key) = try store.keys.create(
            organization: acme,
            role: .agent,
            agent: "a7",
            label: "softphone",
            actor: admin,
            now: start
        )
        _ = try store.keys.revoke(id: record.id, organization: acme, actor: admin, now: start.adding(seconds: 5))
        let secret = Self.secretPart(key)
        let db = try SQLiteDatabase(path: path, readOnly: true, create: false)
        let row = try db.prepare("SELECT hash, role, agent_id FROM api_keys WHERE id = ?")
        row.bind(1, record.id)
        #expect(try row.step())
        #expect(row.blob(0) == SHA256.hash(Array(secret.utf8)))
        #expect(row.text(1) == "agent" && row.text(2) == "a7")
        // Neither the secret nor the hash appears anywhere else (the audit rows included).
        let hashHex = SHA256Tests.hex(row.blob(0))
        let audit = try db.prepare(
            "SELECT COALESCE(before, '') || COALESCE(after, '') FROM audit_log WHERE action LIKE 'key.%'"
        ).rows {
            $0.text(0)
        }
        #expect(audit.count == 2 && audit.allSatisfy { !$0.contains(secret) && !$0.contains(hashHex) })
        // The file bytes (database and WAL) never contain the secret, in hex or as its 32 raw bytes.
        var raw: [UInt8] = []
        var i = secret.utf8.startIndex
        while i != secret.utf8.endIndex {
            let next = secret.utf8.index(i, offsetBy: 2)
            raw.append(UInt8(String(secret[i..<next]), radix: 16)!)
            i = next
        }
        for file in [path, path + "-wal"] {
            guard let bytes = FileManager.default.contents(atPath: file) else { continue }
            #expect(bytes.range(of: Data(secret.utf8)) == nil, "\(file)")
            #expect(bytes.range(of: Data(raw)) == nil, "\(file)")
        }
    }

    @Test func rolesAndAgentsAreValidated() throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let store = try Self.openStore(path)
        defer { store.close() }
        func create(_ role: Role, _ agent: String?, label: String = "") throws(CallgateError) -> APIKeyRecord {
            try store.keys.create(organization: acme, role: role, agent: agent, label: label, actor: admin, now: start)
                .record
        }
        for (role, agent) in [
            (Role.agent, nil), (.agent, ""), (.agent, "a b"), (.agent, String(repeating: "x", count: 129)),
        ] {
            let error = try #require(throws: CallgateError.self) { try create(role, agent) }
            #expect(error.code == .invalidArgument && error.message.contains("agent"), "\(error)")
        }
        for role in [Role.admin, .manager, .dialer] {
            let error = try #require(throws: CallgateError.self) { try create(role, "a1") }
            #expect(error.code == .invalidArgument && error.message.contains("\(role) key"), "\(error)")
            #expect(try create(role, "").agent == nil)  // an empty string (protobuf default) is no agent
        }
        #expect(try create(.agent, "a1").agent == "a1")
        #expect(try create(.admin, nil, label: String(repeating: "é", count: 200)).label.count == 200)
        let long = try #require(throws: CallgateError.self) {
            try create(.admin, nil, label: String(repeating: "x", count: 201))
        }
        #expect(long.code == .invalidArgument && long.message.contains("label"))
        #expect(throws: CallgateError.self) { try create(.admin, nil, label: "a\nb") }
        let noOrg = try #require(throws: CallgateError.self) {
            try store.keys.create(
                organization: OrganizationID(9),
                role: .admin,
                agent: nil,
                label: "",
                actor: admin,
                now: start
            )
        }
        #expect(noOrg.code == .notFound)
        #expect(store.keys.list(organization: acme, includeRevoked: true).count == 5)
    }

    @Test func revokingAnotherOrganizationsKeyIsNotFound() throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let store = try Self.openStore(path)
        defer { store.close() }
        let (record, key) = try store.keys.create(
            organization: acme,
            role: .admin,
            agent: nil,
            label: "",
            actor: admin,
            now: start
        )
        for (id, org) in [(record.id, other), ("0123456789abcdef", acme), ("", acme)] {
            let error = try #require(throws: CallgateError.self) {
                try store.keys.revoke(id: id, organization: org, actor: admin, now: start)
            }
            #expect(error.code == .notFound)
        }
        #expect(store.keys.authenticate(key) == record)
        #expect(try store.history.audit(other).items.allSatisfy { !$0.action.hasPrefix("key.") })
    }

    @Test func createAndRevokeAreAudited() async throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let store = try Self.openStore(path)
        defer { store.close() }
        let (record, key) = try store.keys.create(
            organization: acme,
            role: .agent,
            agent: "a1",
            label: "Ada \"softphone\"",
            actor: admin,
            now: start
        )
        _ = try store.keys.revoke(
            id: record.id,
            organization: acme,
            actor: Actor("key:boss"),
            now: start.adding(seconds: 1)
        )
        try await store.writer.flush()
        let entries = try store.history.audit(acme).items.filter { $0.action.hasPrefix("key.") }
        #expect(entries.map(\.action) == ["key.revoke", "key.create"])
        let (revoke, create) = (entries[0], entries[1])
        #expect(create.actor == admin.id && create.at == start && create.agent == "a1" && create.before == nil)
        #expect(
            create.after == #"{"id":"\#(record.id)","role":"agent","agent":"a1","label":"Ada \"softphone\""}"#
        )
        #expect(revoke.actor == "key:boss" && revoke.at == start.adding(seconds: 1))
        #expect(revoke.before == create.after)
        #expect(revoke.after?.contains(#""revokedAt":"\#(start.adding(seconds: 1).iso8601)""#) == true)
        #expect(entries.allSatisfy { "\($0)".contains(Self.secretPart(key)) == false })
        // The audit filter by agent finds a key bound to the agent.
        #expect(try store.history.audit(acme, AuditQuery(agent: "a1")).items.count == 2)
    }

    @Test func aFailedWriteLeavesMemoryUnchanged() throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let store = try Self.openStore(path)
        defer { store.close() }
        let (record, key) = try store.keys.create(
            organization: acme,
            role: .admin,
            agent: nil,
            label: "",
            actor: admin,
            now: start
        )
        // Make the audit insert fail: the key row written before it in the transaction is rolled back.
        let db = try SQLiteDatabase(path: path)
        try db.execute(
            """
            CREATE TRIGGER refuse_keys BEFORE INSERT ON audit_log WHEN NEW.action LIKE 'key.%'
            BEGIN SELECT RAISE(ABORT, 'refused'); END
            """
        )
        let revokeError = try #require(throws: CallgateError.self) {
            try store.keys.revoke(id: record.id, organization: acme, actor: admin, now: start)
        }
        #expect(revokeError.code == .unavailable && revokeError.message.contains("refused"))
        #expect(store.keys.isActive(id: record.id) && store.keys.authenticate(key) == record)
        let createError = try #require(throws: CallgateError.self) {
            try store.keys.create(organization: acme, role: .admin, agent: nil, label: "", actor: admin, now: start)
        }
        #expect(createError.code == .unavailable)
        #expect(store.keys.list(organization: acme, includeRevoked: true) == [record])
        #expect(try db.scalar("SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL") == 1)
        #expect(try db.scalar("SELECT COUNT(*) FROM api_keys") == 1)

        // Once the database works again, so do writes.
        try db.execute("DROP TRIGGER refuse_keys")
        _ = try store.keys.revoke(id: record.id, organization: acme, actor: admin, now: start)
        #expect(store.keys.authenticate(key) == nil)
    }

    @Test func writesAfterCloseAreUnavailable() throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let store = try Self.openStore(path)
        let (record, key) = try store.keys.create(
            organization: acme,
            role: .admin,
            agent: nil,
            label: "",
            actor: admin,
            now: start
        )
        store.close()
        let error = try #require(throws: CallgateError.self) {
            try store.keys.revoke(id: record.id, organization: acme, actor: admin, now: start)
        }
        #expect(error.code == .unavailable)
        #expect(store.keys.authenticate(key) == record)  // reads keep working
    }

    @Test func listIsOrderedByCreationThenID() throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let store = try Self.openStore(path)
        defer { store.close() }
        var created: [APIKeyRecord] = []
        for i in [3, 1, 2, 1, 3, 0] {
            created.append(
                try store.keys.create(
                    organization: acme,
                    role: .manager,
                    agent: nil,
                    label: "\(i)",
                    actor: admin,
                    now: start.adding(seconds: Int64(i))
                ).record
            )
        }
        let expected = created.sorted { ($0.createdAt.milliseconds, $0.id) < ($1.createdAt.milliseconds, $1.id) }
        #expect(store.keys.list(organization: acme, includeRevoked: false) == expected)
    }

    @Test func authenticatesConcurrentlyWithRevocations() async throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let store = try Self.openStore(path)
        defer { store.close() }
        var issued: [(record: APIKeyRecord, secret: String)] = []
        for _ in 0..<8 {
            issued.append(
                try store.keys.create(
                    organization: acme,
                    role: .dialer,
                    agent: nil,
                    label: "",
                    actor: admin,
                    now: start
                )
            )
        }
        let keys = issued
        await withTaskGroup(of: Void.self) { group in
            for key in keys {
                group.addTask {
                    for _ in 0..<50 { _ = store.keys.authenticate(key.secret) }
                }
            }
            group.addTask {
                for key in keys.prefix(4) {
                    _ = try? store.keys.revoke(id: key.record.id, organization: self.acme, actor: admin, now: start)
                }
            }
        }
        #expect(
            keys.map { store.keys.authenticate($0.secret) != nil } == [
                false, false, false, false, true, true, true, true,
            ]
        )
    }
}
