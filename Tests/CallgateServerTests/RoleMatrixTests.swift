import CallgateClient
import CallgateCore
import CallgateServer
import CallgateStore
import CallgateWire
import Testing

/// Who may call what, over the wire: every role against every method, then the record-level rules.
@Suite("Roles: the method table and record-level rules")
struct RoleMatrixTests {
    /// The roles column of the method table in `proto/README.md`, copied by hand (A admin, M manager,
    /// D dialer, G agent key). Deliberately not derived from the server's `AccessPolicy`.
    static let table: [String: String] = [
        "authorize_call": "ADG",
        "pick_number": "AD",  // D with `reserve` only; the representative request reserves
        "assign": "A",
        "release": "A",
        "add_number": "A",
        "import_numbers": "A",
        "list_numbers": "AMDG",  // G: own numbers
        "get_number": "AMDG",  // G: own numbers
        "update_number": "A",
        "delete_numbers": "A",
        "upsert_agent": "A",
        "list_agents": "AMD",
        "deactivate_agent": "A",
        "list_assignments": "AMDG",  // G: own
        "update_assignment": "A",
        "reset_counters": "A",
        "audit_log": "AM",
        "number_timeline": "AM",
        "usage_report": "AMG",  // G: its own agent's usage
        "sync_numbers": "A",
        "pool_capacity": "AM",
        "set_pool_threshold": "A",
        "bulk_assign": "A",
        "bulk_release": "A",
        "bulk_update_status": "A",
        "bulk_delete": "A",
        "create_key": "A",
        "list_keys": "A",
        "revoke_key": "A",
        "stats": "AM",
    ]

    static func letter(_ role: Role) -> Character {
        switch role {
        case .admin: "A"
        case .manager: "M"
        case .dialer: "D"
        case .agent: "G"
        }
    }

    /// Alice's and Bob's numbers; the others are there for the admin's changes to land on.
    static let alice = ["+14155550101", "+14155550102"]
    static let bob = ["+14155550201"]
    static let carol = "+14155550301"  // released by the admin's `release`
    static let toAssign = "+14155550401"
    static let toUpdate = "+14155550402"
    static let toDelete = "+14155550403"
    static let toPick = ["+14155550404", "+14155550405"]

    /// The organization every test starts from: agents alice, bob, carol and erin; alice holds two
    /// numbers, bob one, carol one; a few available numbers. Returns the id of a spare key to revoke.
    static func setUp(_ server: TestServer) async throws -> String {
        let admin = try await server.connect()
        defer { Task { await admin.close() } }
        let all = Self.alice + Self.bob + [Self.carol, Self.toAssign, Self.toUpdate, Self.toDelete] + Self.toPick
        let imported = try await admin.importNumbers(
            Wire.ImportNumbersRequest(csv: "number,provider\n" + all.map { "\($0),telnyx\n" }.joined())
        )
        #expect(imported.added == UInt32(all.count))
        for agent in ["alice", "bob", "carol", "erin"] {
            _ = try await admin.upsertAgent(Wire.UpsertAgentRequest(id: agent))
        }
        let holdings = Self.alice.map { ($0, "alice") } + Self.bob.map { ($0, "bob") } + [(Self.carol, "carol")]
        for (number, agent) in holdings {
            _ = try await admin.assign(
                Wire.AssignRequest(number: number, agentID: agent, terms: Wire.AssignmentTerms(dailyLimit: 10))
            )
        }
        let spare = try await admin.createKey(Wire.CreateKeyRequest(role: .manager, label: "to revoke"))
        return try #require(spare.key?.id)
    }

    /// One representative request per method (hello aside), each aimed where an allowed caller's
    /// change does not get in the way of the next request.
    static func requests(spareKeyID: String) -> [(name: String, method: Wire.Request.Method)] {
        [
            (
                "authorize_call",
                .authorizeCall(Wire.AuthorizeCallRequest(agentID: "alice", destination: "+12025550123"))
            ),
            (
                "pick_number",
                .pickNumber(
                    Wire.PickNumberRequest(
                        criteria: Wire.NumberCriteria(prefix: "1415555040"),
                        mode: .reserve(Wire.ReserveMode(ttlSeconds: 60, agentID: "bob"))
                    )
                )
            ),
            ("assign", .assign(Wire.AssignRequest(number: Self.toAssign, agentID: "carol"))),
            ("release", .release(Wire.ReleaseRequest(number: Self.carol))),
            ("add_number", .addNumber(Wire.AddNumberRequest(number: "+14155550901", provider: "telnyx"))),
            (
                "import_numbers",
                .importNumbers(Wire.ImportNumbersRequest(csv: "number,provider\n+14155550902,telnyx\n"))
            ),
            ("list_numbers", .listNumbers(Wire.ListNumbersRequest())),
            ("get_number", .getNumber(Wire.GetNumberRequest(number: Self.alice[0]))),
            (
                "update_number",
                .updateNumber(Wire.UpdateNumberRequest(number: Self.toUpdate, fields: ["location"], location: "LA"))
            ),
            ("delete_numbers", .deleteNumbers(Wire.DeleteNumbersRequest(numbers: [Self.toDelete]))),
            ("upsert_agent", .upsertAgent(Wire.UpsertAgentRequest(id: "dave"))),
            ("list_agents", .listAgents(Wire.ListAgentsRequest())),
            ("deactivate_agent", .deactivateAgent(Wire.DeactivateAgentRequest(id: "erin"))),
            ("list_assignments", .listAssignments(Wire.ListAssignmentsRequest())),
            (
                "update_assignment",
                .updateAssignment(
                    Wire.UpdateAssignmentRequest(number: Self.bob[0], fields: ["daily_limit"], dailyLimit: 20)
                )
            ),
            ("reset_counters", .resetCounters(Wire.ResetCountersRequest(numbers: [Self.bob[0]]))),
            ("audit_log", .auditLog(Wire.AuditLogRequest())),
            ("number_timeline", .numberTimeline(Wire.NumberTimelineRequest(number: Self.alice[0]))),
            ("usage_report", .usageReport(Wire.UsageReportRequest(fromDay: "2026-11-01", toDay: "2026-11-21"))),
            ("sync_numbers", .syncNumbers(Wire.SyncNumbersRequest(csv: "number,provider\n+14155550901,telnyx\n"))),
            ("pool_capacity", .poolCapacity(Wire.PoolCapacityRequest())),
            ("set_pool_threshold", .setPoolThreshold(Wire.SetPoolThresholdRequest(tag: "sales", threshold: 3))),
            (
                "bulk_assign",
                .bulkAssign(
                    Wire.BulkAssignRequest(agentIds: ["erin"], criteria: Wire.NumberCriteria(tag: "none"), perAgent: 1)
                )
            ),
            ("bulk_release", .bulkRelease(Wire.BulkReleaseRequest(numbers: [Self.toUpdate]))),
            (
                "bulk_update_status",
                .bulkUpdateStatus(Wire.BulkUpdateStatusRequest(numbers: [Self.toUpdate], status: .active))
            ),
            ("bulk_delete", .bulkDelete(Wire.BulkDeleteRequest(numbers: [Self.toUpdate], skipHeld: true))),
            ("create_key", .createKey(Wire.CreateKeyRequest(role: .manager, label: "made by the matrix"))),
            ("list_keys", .listKeys(Wire.ListKeysRequest())),
            ("revoke_key", .revokeKey(Wire.RevokeKeyRequest(id: spareKeyID))),
            ("stats", .stats(Wire.StatsRequest())),
        ]
    }

    @Test func theTableAndTheRequestsCoverEveryMethod() {
        let methods = Self.requests(spareKeyID: "x")
        let names = Set(Wire.Request.Method.allNames).subtracting(["hello"])
        #expect(methods.count == names.count)  // each method once
        #expect(Set(methods.map(\.name)) == names)
        #expect(Set(Self.table.keys) == names)
        for (name, method) in methods { #expect(method.name == name) }
    }

    @Test(arguments: [Role.admin, .manager, .dialer, .agent])
    func everyMethodAnswersAsTheTableSays(role: Role) async throws {
        try await withTestServer { server in
            let spareKeyID = try await Self.setUp(server)
            let key = role == .admin ? server.adminKey : try server.makeKey(role, agent: role == .agent ? "alice" : nil)
            let client = try await server.connect(key: key)
            defer { Task { await client.close() } }
            #expect(client.session.role == role.wire)

            for (name, method) in Self.requests(spareKeyID: spareKeyID) {
                let allowed = try #require(Self.table[name]).contains(Self.letter(role))
                do {
                    _ = try await client.send(method)
                    #expect(allowed, "\(role) \(name): expected PERMISSION_DENIED, the call succeeded")
                } catch let error as CallgateClientError where error.statusCode != nil {
                    if allowed {
                        #expect(error.statusCode != .permissionDenied, "\(role) \(name): \(error)")
                    } else {
                        #expect(error.statusCode == .permissionDenied, "\(role) \(name): \(error)")
                    }
                } catch {
                    Issue.record("\(role) \(name): \(error)")
                }
            }
        }
    }

    @Test func anAgentKeyActsForItsOwnAgentOnly() async throws {
        try await withTestServer { server in
            _ = try await Self.setUp(server)
            let agent = try await server.connect(key: try server.makeKey(.agent, agent: "alice"))
            defer { Task { await agent.close() } }
            #expect(agent.session.agentID == "alice")

            await expectStatus(.permissionDenied) {
                try await agent.authorizeCall(Wire.AuthorizeCallRequest(agentID: "bob", destination: "+12025550123"))
            }
            let own = try await agent.authorizeCall(
                Wire.AuthorizeCallRequest(agentID: "alice", destination: "+12025550123")
            )
            #expect(own.verdict == .allow)
            #expect(Self.alice.contains(own.callerID))
            // Without an agent id, an agent key authorizes for its own agent.
            let implicit = try await agent.authorizeCall(Wire.AuthorizeCallRequest(destination: "+12025550123"))
            #expect(implicit.verdict == .allow)
            #expect(Self.alice.contains(implicit.callerID))
            let deny = try await agent.authorizeCall(
                Wire.AuthorizeCallRequest(agentID: "alice", destination: "+442079460000")
            )
            #expect(deny.verdict == .deny)
            #expect(deny.reason == .countryNotAllowed)

            let listed = try await agent.listNumbers(Wire.ListNumbersRequest())
            #expect(listed.numbers.map(\.number).sorted() == Self.alice.sorted())
            #expect(listed.numbers.allSatisfy { $0.agentID == "alice" })
            await expectStatus(.permissionDenied) {
                try await agent.listNumbers(Wire.ListNumbersRequest(agentID: "bob"))
            }
            #expect(try await agent.getNumber(Wire.GetNumberRequest(number: Self.alice[1])).agentID == "alice")
            await expectStatus(.permissionDenied) {
                try await agent.getNumber(Wire.GetNumberRequest(number: Self.bob[0]))
            }
            await expectStatus(.permissionDenied) {
                try await agent.getNumber(Wire.GetNumberRequest(number: Self.toAssign))
            }

            let assignments = try await agent.listAssignments(Wire.ListAssignmentsRequest())
            #expect(assignments.assignments.map(\.number).sorted() == Self.alice.sorted())
            #expect(assignments.assignments.map(\.countToday).reduce(0, +) == 2)
            #expect(
                try await agent.listAssignments(Wire.ListAssignmentsRequest(agentID: "alice")).assignments.count == 2
            )
            await expectStatus(.permissionDenied) {
                try await agent.listAssignments(Wire.ListAssignmentsRequest(agentID: "bob"))
            }
        }
    }

    @Test func aDialerMayReserveButNotAssign() async throws {
        try await withTestServer { server in
            _ = try await Self.setUp(server)
            let dialer = try await server.connect(key: try server.makeKey(.dialer))
            defer { Task { await dialer.close() } }

            let reserved = try await dialer.pickNumber(
                Wire.PickNumberRequest(
                    criteria: Wire.NumberCriteria(prefix: "1415555040"),
                    mode: .reserve(Wire.ReserveMode(ttlSeconds: 60, agentID: "bob"))
                )
            )
            #expect(reserved.reservationToken != 0)
            #expect(reserved.number?.state == "reserved")
            await expectStatus(.permissionDenied) {
                try await dialer.pickNumber(
                    Wire.PickNumberRequest(
                        criteria: Wire.NumberCriteria(prefix: "1415555040"),
                        mode: .assign(Wire.AssignMode(agentID: "bob"))
                    )
                )
            }
            // The refused pick changed nothing: bob still holds his one number.
            let bobs = try await dialer.listAssignments(Wire.ListAssignmentsRequest(agentID: "bob"))
            #expect(bobs.assignments.map(\.number) == Self.bob)
            // A dialer authorizes for any agent of its organization.
            let answer = try await dialer.authorizeCall(
                Wire.AuthorizeCallRequest(agentID: "bob", destination: "+12025550123")
            )
            #expect(answer.verdict == .allow)
        }
    }
}
