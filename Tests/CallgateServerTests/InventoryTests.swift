import CallgateClient
import CallgateCore
import CallgateServer
import CallgateStore
import CallgateWire
import Testing

/// Sync, pools and bulk operations end to end: client → server → engine → store.
@Suite("Sync, pools and bulk operations over loopback") struct InventoryTests {
    /// +1415555 0100…0109 in pool `sales`, 0200…0204 in `support`; agents alice, bob, carol.
    static func setUp(_ c: CallgateClient) async throws {
        var csv = "number,provider,tags\n"
        for i in 0..<10 { csv += "+1415555010\(i),telnyx,sales\n" }
        for i in 0..<5 { csv += "+1415555020\(i),telnyx,support\n" }
        #expect(try await c.importNumbers(Wire.ImportNumbersRequest(csv: csv)).added == 15)
        for agent in ["alice", "bob", "carol"] { _ = try await c.upsertAgent(Wire.UpsertAgentRequest(id: agent)) }
    }

    static let syncFile = """
        number,provider,tags,assigned_to
        +14155550100,telnyx,sales,alice
        +14155550101,twilio,sales,
        +14155550300,telnyx,new,bob
        +14155550301,telnyx,new,nobody
        """

    @Test func syncDryRunThenApply() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            defer { Task { await c.close() } }
            try await Self.setUp(c)
            let dry = try await c.syncNumbers(
                Wire.SyncNumbersRequest(csv: Self.syncFile, localOnly: "delete_unassigned", omitUnchanged: true)
            )
            #expect(!dry.applied && dry.token.hasPrefix("sync1-"))
            #expect((dry.toAdd, dry.toUpdate, dry.unchanged, dry.localOnly, dry.rejected) == (1, 2, 0, 13, 1))
            #expect((dry.toAssign, dry.toDelete) == (2, 13))
            #expect(dry.entries.prefix(4).map(\.action) == ["update", "update", "add", "rejected"])
            #expect(dry.entries[0].changes.map(\.field) == ["assigned_to"])
            #expect(dry.entries[1].changes.map { "\($0.field):\($0.before)>\($0.after)" } == ["provider:telnyx>twilio"])
            #expect(dry.entries[3].line == 5 && dry.entries[3].reason == "no agent 'nobody'")
            #expect(dry.entries.last?.line == 0 && dry.entries.last?.reason == "delete")
            #expect(try await c.getNumber(Wire.GetNumberRequest(number: "+14155550100")).state == "available")

            // Bad rows refuse the apply unless skipped; without a token it is INVALID_ARGUMENT.
            await expectStatus(.failedPrecondition) {
                try await c.syncNumbers(
                    Wire.SyncNumbersRequest(
                        csv: Self.syncFile,
                        apply: true,
                        localOnly: "delete_unassigned",
                        token: dry.token
                    )
                )
            }
            await expectStatus(.invalidArgument) {
                try await c.syncNumbers(Wire.SyncNumbersRequest(csv: Self.syncFile, apply: true))
            }
            await expectStatus(.invalidArgument) {
                try await c.syncNumbers(Wire.SyncNumbersRequest(csv: Self.syncFile, localOnly: "burn"))
            }
            // The dry run changed nothing.
            #expect(try await c.stats(Wire.StatsRequest()).numbers == 15)
        }
    }

    @Test func syncAppliesExactlyTheDiffShown() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            defer { Task { await c.close() } }
            try await Self.setUp(c)
            let request = Wire.SyncNumbersRequest(
                csv: Self.syncFile,
                localOnly: "delete_unassigned",
                terms: Wire.AssignmentTerms(dailyLimit: 25, allowedCountries: ["US", "CA"]),
                skipBadRows: true
            )
            let dry = try await c.syncNumbers(request)
            var apply = request
            apply.apply = true
            apply.token = dry.token
            let applied = try await c.syncNumbers(apply)
            #expect(applied.applied && applied.token == dry.token)
            #expect(applied.entries.map(\.action) == dry.entries.map(\.action))

            let alice = try await c.listAssignments(Wire.ListAssignmentsRequest(agentID: "alice")).assignments
            #expect(alice.map(\.number) == ["+14155550100"] && alice[0].dailyLimit == 25)
            #expect(Set(alice[0].allowedCountries) == ["CA", "US"])
            #expect(try await c.getNumber(Wire.GetNumberRequest(number: "+14155550101")).provider == "twilio")
            #expect(try await c.getNumber(Wire.GetNumberRequest(number: "+14155550300")).agentID == "bob")
            await expectStatus(.notFound) { try await c.getNumber(Wire.GetNumberRequest(number: "+14155550102")) }
            #expect(try await c.stats(Wire.StatsRequest()).numbers == 3)

            // Audited as one sync: a summary with the actor, and a row per number.
            let audit = try await c.auditLog(Wire.AuditLogRequest(pageSize: 100)).entries
            let summary = try #require(audit.first)
            #expect(summary.action == "sync" && summary.number == "" && summary.actor.hasPrefix("key:"))
            #expect(summary.afterJson.contains(#""added":1"#) && summary.afterJson.contains(#""deleted":13"#))
            // An update, an addition, 13 deletions, 2 assignments and the summary.
            let syncRows = audit.filter { $0.action == "sync" }.count
            #expect(syncRows == 18)
            let history = try await c.auditLog(Wire.AuditLogRequest(number: "+14155550100")).entries
            #expect(history.first?.action == "sync" && history.first?.agentID == "alice")
            // Applying the same token again: the diff is now different.
            await expectStatus(.failedPrecondition) { try await c.syncNumbers(apply) }
        }
    }

    @Test func syncApplyIsRefusedAfterAConcurrentChange() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            let other = try await server.connect(name: "another admin")
            defer {
                Task {
                    await c.close()
                    await other.close()
                }
            }
            try await Self.setUp(c)
            let csv = "number,provider,tags,assigned_to\n+14155550100,telnyx,sales,alice\n+14155550101,telnyx,sales,-\n"
            let dry = try await c.syncNumbers(Wire.SyncNumbersRequest(csv: csv))
            // Another admin assigns a number the file says is unassigned.
            _ = try await other.assign(Wire.AssignRequest(number: "+14155550101", agentID: "bob"))
            await expectStatus(.failedPrecondition) {
                try await c.syncNumbers(Wire.SyncNumbersRequest(csv: csv, apply: true, token: dry.token))
            }
            // Nothing was applied.
            #expect(try await c.getNumber(Wire.GetNumberRequest(number: "+14155550100")).state == "available")
            #expect(try await c.getNumber(Wire.GetNumberRequest(number: "+14155550101")).agentID == "bob")
            #expect(try await c.auditLog(Wire.AuditLogRequest(pageSize: 1)).entries.first?.action == "assign")
        }
    }

    @Test func bulkAssignPerRowAndAllOrNothing() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            defer { Task { await c.close() } }
            try await Self.setUp(c)
            await expectStatus(.failedPrecondition) {
                try await c.bulkAssign(
                    Wire.BulkAssignRequest(
                        agentIds: ["alice", "bob", "ghost"],
                        criteria: Wire.NumberCriteria(tag: "support"),
                        perAgent: 2,
                        allOrNothing: true
                    )
                )
            }
            #expect(try await c.listAssignments(Wire.ListAssignmentsRequest()).assignments.isEmpty)
            let perRow = try await c.bulkAssign(
                Wire.BulkAssignRequest(
                    agentIds: ["alice", "ghost", "bob", "carol"],
                    criteria: Wire.NumberCriteria(tag: "support"),
                    perAgent: 2,
                    terms: Wire.AssignmentTerms(dailyLimit: 3)
                )
            )
            #expect(perRow.rows.map(\.outcome) == ["assigned", "rejected", "assigned", "rejected"])
            #expect(perRow.rows[0].numbers == ["+14155550200", "+14155550201"])
            #expect(perRow.rows[1].reason == "no agent with this id")
            #expect(perRow.rows[3].reason.contains("only 1 available"))
            #expect((perRow.assigned, perRow.rejected) == (4, 2))
            let assignments = try await c.listAssignments(Wire.ListAssignmentsRequest()).assignments
            #expect(assignments.count == 4 && assignments.allSatisfy { $0.dailyLimit == 3 })
            let audit = try await c.auditLog(Wire.AuditLogRequest(pageSize: 5)).entries
            #expect(
                audit.first?.action == "bulk.assign" && audit.first?.afterJson.contains(#""pool":"support""#) == true
            )

            // Release many by agent, then by number.
            let released = try await c.bulkRelease(Wire.BulkReleaseRequest(agentIds: ["alice"]))
            #expect(released.changed == 2 && released.rows.allSatisfy { $0.agentID == "alice" })
            let byNumber = try await c.bulkRelease(Wire.BulkReleaseRequest(numbers: ["+14155550202", "+14155550100"]))
            #expect(byNumber.rows.map(\.outcome) == ["skipped", "released"])
            await expectStatus(.invalidArgument) {
                try await c.bulkRelease(Wire.BulkReleaseRequest(numbers: ["+14155550100"], agentIds: ["bob"]))
            }
            await expectStatus(.notFound) { try await c.bulkRelease(Wire.BulkReleaseRequest(agentIds: ["ghost"])) }
            await expectStatus(.invalidArgument) {
                try await c.bulkAssign(Wire.BulkAssignRequest(agentIds: ["bob"], perAgent: 0))
            }
        }
    }

    @Test func bulkStatusAndDelete() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            defer { Task { await c.close() } }
            try await Self.setUp(c)
            _ = try await c.assign(Wire.AssignRequest(number: "+14155550100", agentID: "alice"))
            let status = try await c.bulkUpdateStatus(
                Wire.BulkUpdateStatusRequest(criteria: Wire.NumberCriteria(tag: "sales"), status: .inactive)
            )
            #expect(status.changed == 10)
            let denied = try await c.authorizeCall(
                Wire.AuthorizeCallRequest(agentID: "alice", destination: "+12025550123")
            )
            #expect(denied.reason == .numberInactive)
            await expectStatus(.invalidArgument) {
                try await c.bulkUpdateStatus(Wire.BulkUpdateStatusRequest(status: .active))
            }
            await expectStatus(.invalidArgument) {
                try await c.bulkUpdateStatus(Wire.BulkUpdateStatusRequest(numbers: ["+14155550100"]))
            }
            await expectStatus(.notFound) {
                try await c.bulkUpdateStatus(Wire.BulkUpdateStatusRequest(numbers: ["+19995550100"], status: .active))
            }

            // Deleting all unassigned numbers needs the confirmation, on the server too.
            await expectStatus(.failedPrecondition) {
                try await c.bulkDelete(Wire.BulkDeleteRequest(allUnassigned: true))
            }
            await expectStatus(.invalidArgument) { try await c.bulkDelete(Wire.BulkDeleteRequest()) }
            await expectStatus(.failedPrecondition) {
                try await c.bulkDelete(Wire.BulkDeleteRequest(numbers: ["+14155550100", "+14155550101"]))
            }
            #expect(try await c.stats(Wire.StatsRequest()).numbers == 15)
            let filtered = try await c.bulkDelete(
                Wire.BulkDeleteRequest(criteria: Wire.NumberCriteria(tag: "sales"))
            )
            #expect((filtered.changed, filtered.skipped) == (9, 1))
            #expect(filtered.rows.first { $0.outcome == "skipped" }?.agentID == "alice")
            let all = try await c.bulkDelete(
                Wire.BulkDeleteRequest(allUnassigned: true, confirmDeleteAllUnassigned: true)
            )
            #expect(all.changed == 5)
            #expect(try await c.stats(Wire.StatsRequest()).numbers == 1)
            let audit = try await c.auditLog(Wire.AuditLogRequest(pageSize: 1)).entries
            #expect(audit.first?.action == "bulk.delete" && audit.first?.afterJson.contains("all unassigned") == true)
        }
    }

    @Test func poolCapacityThresholdsStatsAndMetrics() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            defer { Task { await c.close() } }
            try await Self.setUp(c)
            _ = try await c.pickNumber(
                Wire.PickNumberRequest(
                    criteria: Wire.NumberCriteria(tag: "Sales"),
                    mode: .assign(Wire.AssignMode(agentID: "alice"))
                )
            )
            _ = try await c.updateNumber(
                Wire.UpdateNumberRequest(number: "+14155550200", fields: ["status"], status: .inactive)
            )
            let pools = try await c.poolCapacity(Wire.PoolCapacityRequest()).pools
            #expect(pools.map(\.tag) == ["sales", "support"])
            #expect([pools[0].available, pools[0].assigned, pools[0].total] == [9, 1, 10])
            #expect([pools[1].available, pools[1].inactive] == [4, 1])

            let set = try await c.setPoolThreshold(Wire.SetPoolThresholdRequest(tag: "SUPPORT", threshold: 5))
            #expect(set.tag == "support" && set.threshold == 5 && set.belowThreshold)
            _ = try await c.setPoolThreshold(Wire.SetPoolThresholdRequest(tag: "sales", threshold: 2))
            await expectStatus(.invalidArgument) {
                try await c.setPoolThreshold(Wire.SetPoolThresholdRequest(tag: "", threshold: 5))
            }
            let stats = try await c.stats(Wire.StatsRequest())
            #expect(stats.poolsBelowThreshold.map(\.tag) == ["support"])
            #expect(stats.poolsBelowThreshold.first?.available == 4)
            let one = try await c.poolCapacity(Wire.PoolCapacityRequest(tag: "Support")).pools
            #expect(one.count == 1 && one[0].threshold == 5 && one[0].belowThreshold)

            let port = try #require(server.metricsPort)
            let scrape = try await HTTP.exchange(
                port: port,
                "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            #expect(scrape.contains(#"callgate_pool_available{organization="1",pool="support"} 4"#))
            #expect(scrape.contains(#"callgate_pool_threshold{organization="1",pool="sales"} 2"#))
            #expect(scrape.contains(#"callgate_pools_below_threshold{organization="1"} 1"#))
            #expect(scrape.contains("# TYPE callgate_pool_available gauge"))
            // Only pools with a threshold have series.
            _ = try await c.setPoolThreshold(Wire.SetPoolThresholdRequest(tag: "sales", threshold: 0))
            let after = try await HTTP.exchange(
                port: port,
                "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            #expect(!after.contains(#"pool="sales""#))
            let audit = try await c.auditLog(Wire.AuditLogRequest(pageSize: 1)).entries
            #expect(
                audit.first?.action == "pool.threshold" && audit.first?.beforeJson.contains(#""threshold":2"#) == true
            )
        }
    }

    @Test func anotherOrganizationsNumbersNeverAppear() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            defer { Task { await c.close() } }
            try await Self.setUp(c)
            _ = try await c.setPoolThreshold(Wire.SetPoolThresholdRequest(tag: "sales", threshold: 1))
            let org2 = try server.store.engine.createOrganization(name: "Other", timeZone: "UTC", actor: .system)
            let d = try await server.connect(key: try server.makeKey(.admin, organization: org2.id))
            defer { Task { await d.close() } }
            _ = try await d.importNumbers(
                Wire.ImportNumbersRequest(csv: "number,provider,tags\n+14155550900,x,sales\n+14155550100,x,sales\n")
            )
            _ = try await d.upsertAgent(Wire.UpsertAgentRequest(id: "alice"))

            let diff = try await d.syncNumbers(Wire.SyncNumbersRequest(csv: "number,provider\n+14155550900,x\n"))
            #expect(diff.entries.map(\.number) == ["+14155550900", "+14155550100"])
            #expect(diff.localOnly == 1)
            let pools = try await d.poolCapacity(Wire.PoolCapacityRequest()).pools
            #expect(pools.map(\.tag) == ["sales"] && pools[0].total == 2 && pools[0].threshold == 0)
            #expect(try await d.stats(Wire.StatsRequest()).poolsBelowThreshold.isEmpty)
            let assigned = try await d.bulkAssign(
                Wire.BulkAssignRequest(agentIds: ["alice"], criteria: Wire.NumberCriteria(tag: "sales"), perAgent: 2)
            )
            #expect(Set(assigned.rows[0].numbers) == ["+14155550900", "+14155550100"])
            await expectStatus(.notFound) {
                try await d.bulkRelease(Wire.BulkReleaseRequest(numbers: ["+14155550101"]))
            }
            let deleted = try await d.bulkDelete(
                Wire.BulkDeleteRequest(allUnassigned: true, confirmDeleteAllUnassigned: true)
            )
            #expect(deleted.changed == 0)
            // The first organization is untouched.
            #expect(try await c.getNumber(Wire.GetNumberRequest(number: "+14155550100")).state == "available")
            #expect(try await c.stats(Wire.StatsRequest()).numbers == 15)
            #expect(try await c.poolCapacity(Wire.PoolCapacityRequest(tag: "sales")).pools[0].available == 10)
        }
    }
}
