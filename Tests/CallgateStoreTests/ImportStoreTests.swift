import CallgateCore
import Testing

@testable import CallgateStore

@Suite struct ImportStoreTests {
    /// An import is one change: its numbers, updates and audit entries are written in the writer's
    /// transaction and come back after a restart.
    @Test func anImportIsWrittenAuditedAndReloaded() async throws {
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        let clock = ManualClock(start)
        do {
            let store = try Store.open(StoreConfiguration(path: path), clock: clock)
            let org = try store.engine.createOrganization(name: "Acme", timeZone: "UTC", actor: admin)
            try org.addNumber(NumberInput(number: n("+14155550100"), provider: "telnyx"), actor: admin)
            try org.upsertAgent(AgentInput(id: "a1"), actor: admin)
            try org.assign(n("+14155550100"), to: "a1", actor: admin)
            var csv = "number,provider,country,tags,status\n+14155550100,telnyx,US,moved,inactive\n"
            for i in 0..<2000 { csv += "+1212\(5_550_000 + i),twilio,US,bulk,\n" }
            csv += "+1212,twilio,US,,\n"
            let report = try org.importNumbers(csv: csv, actor: admin)
            #expect((report.added, report.updated, report.rejected) == (2000, 1, 1))
            try await store.writer.waitForCommit(try #require(report.ticket))
            let summary = try store.history.audit(org.id, limit: 1).items
            #expect(summary.first?.action == "number.import")
            #expect(summary.first?.number == nil)
            #expect(summary.first?.after == #"{"added":2000,"updated":1}"#)
            let updated = try store.history.audit(org.id, AuditQuery(number: n("+14155550100")), limit: 10).items
            #expect(updated.first?.action == "number.import")
            #expect(updated.first?.before?.contains(#""status":"active""#) == true)
            #expect(updated.first?.after?.contains(#""status":"inactive""#) == true)
            store.close()
        }
        let store = try Store.open(StoreConfiguration(path: path), clock: clock)
        defer { store.close() }
        #expect(store.loadReport.numbers == 2001)
        let org = try #require(store.engine.organization(OrganizationID(1)))
        #expect(org.number(n("+12125550042"))?.attributes.tags == ["bulk"])
        #expect(org.number(n("+12125550042"))?.attributes.provider == "twilio")
        let kept = try #require(org.number(n("+14155550100")))
        #expect(kept.attributes.status == .inactive && kept.attributes.tags == ["moved"])
        #expect(kept.state == .assigned(agent: "a1"))
        #expect(try org.authorizeCall(agent: "a1", destination: n("+12125550199")).denyReason == .numberInactive)
    }
}
