import CallgateCore
import Testing

@testable import CallgateStore

@Suite struct BulkStoreTests {
    /// A sync and the bulk operations are one transaction each: their rows, the assignment history and
    /// an audit entry per number plus a summary; thresholds are stored; everything comes back on restart.
    @Test func bulkChangesAndThresholdsAreWrittenAuditedAndReloaded() async throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let clock = ManualClock(start)
        do {
            let store = try Store.open(StoreConfiguration(path: path), clock: clock)
            let org = try store.engine.createOrganization(name: "Acme", timeZone: "UTC", actor: admin)
            for id in ["a1", "a2"] { try org.upsertAgent(AgentInput(id: id), actor: admin) }
            var csv = "number,provider,tags,assigned_to\n"
            for i in 0..<20 { csv += "+1415555\(1000 + i),telnyx,sales,\(i < 2 ? "a1" : "")\n" }
            let dry = try org.syncNumbers(csv: csv, actor: admin)
            let synced = try org.syncNumbers(csv: csv, apply: dry.token, actor: admin)
            #expect((synced.toAdd, synced.toAssign) == (20, 2))
            _ = try org.authorizeCall(agent: "a1", destination: n("+12025550123"))
            let assigned = try org.bulkAssign(
                agents: ["a2"],
                pool: NumberCriteria(tag: "sales"),
                perAgent: 3,
                terms: AssignmentTerms(dailyLimit: 9),
                allOrNothing: true,
                actor: admin
            )
            #expect(assigned.assigned == 3)
            let released = try org.bulkRelease(agents: ["a1"], actor: admin)
            #expect(released.changed == 2)
            let status = try org.bulkUpdateStatus(.numbers([n("+14155551019")]), status: .inactive, actor: admin)
            let deleted = try org.bulkDelete(.numbers([n("+14155551018")]), actor: admin)
            try org.setPoolThreshold("Sales", threshold: 30, actor: admin)
            try await store.writer.waitForCommit(try #require(deleted.ticket))
            try await store.writer.flush()
            #expect(status.changed == 1)

            let audit = try store.history.audit(org.id, limit: 200).items
            let actions = audit.map(\.action)
            let count = { (action: String) -> Int in actions.filter { $0 == action }.count }
            #expect(count("sync") == 23)  // 20 additions, 2 assignments, the summary
            #expect(count("bulk.assign") == 4)
            #expect(count("bulk.release") == 3)
            #expect(actions.first == "pool.threshold")
            #expect(audit.first?.after == #"{"pool":"sales","threshold":30}"#)
            let summary = try #require(audit.first { $0.action == "sync" && $0.number == nil })
            #expect(summary.after?.hasPrefix(#"{"added":20,"updated":0,"unchanged":0"#) == true)
            #expect(summary.after?.contains(#""token":"\#(dry.token)""#) == true)
            #expect(audit.allSatisfy { $0.actor == admin.id })
            // The released numbers' holding periods, with their calls.
            let timeline = try store.history.timeline(org.id, number: n("+14155551000"), current: nil)
            #expect(timeline.map(\.agent) == ["a1"] && timeline.first?.calls == 1)
            store.close()
        }
        let store = try Store.open(StoreConfiguration(path: path), clock: clock)
        defer { store.close() }
        #expect(store.loadReport.numbers == 19 && store.loadReport.assignments == 3)
        let org = try #require(store.engine.organization(OrganizationID(1)))
        #expect(try org.assignments(of: "a1").isEmpty)
        #expect(try org.assignments(of: "a2").map(\.dailyLimit) == [9, 9, 9])
        #expect(org.number(n("+14155551000"))?.counter.count == 1)
        #expect(org.number(n("+14155551019"))?.attributes.status == .inactive)
        let pool = try #require(org.poolsWithThresholds().first)
        #expect(pool.pool == "sales" && pool.threshold == 30 && pool.isBelowThreshold)
        #expect(pool.counts == PoolCounts(available: 15, assigned: 3, inactive: 1))
    }
}
