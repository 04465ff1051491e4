import Testing

@testable import CallgateCore

/// Bulk assign, release, status and delete: one change each, all or nothing, per-row reports.
@Suite struct BulkTests {
    /// Numbers +1415555 01NN in pool `sales` (10), +1415555 02NN in pool `support` (5), agents a1…a4
    /// (a4 inactive).
    func fixture() throws -> Fixture {
        let f = try Fixture()
        for i in 0..<10 {
            try f.org.addNumber(
                NumberInput(number: num("+141555501\(10 + i)"), provider: "telnyx", tags: ["Sales"]),
                actor: admin
            )
        }
        for i in 0..<5 {
            try f.org.addNumber(
                NumberInput(number: num("+141555502\(10 + i)"), provider: "telnyx", tags: ["support"]),
                actor: admin
            )
        }
        for id in ["a1", "a2", "a3", "a4"] { try f.org.upsertAgent(AgentInput(id: id), actor: admin) }
        try f.org.deactivateAgent("a4", actor: admin)
        return f
    }

    func held(_ f: Fixture, _ agent: String) throws -> [String] {
        try f.org.assignments(of: agent).map(\.number.e164).sorted()
    }

    @Test func assignsEachAgentItsNumbersAsOneChange() throws {
        let f = try fixture()
        let before = f.log.records.count
        let report = try f.org.bulkAssign(
            agents: ["a1", "a2"],
            pool: NumberCriteria(tag: "sales"),
            perAgent: 3,
            terms: AssignmentTerms(dailyLimit: 7, allowedCountries: [country("US"), country("CA")]),
            allOrNothing: true,
            actor: admin
        )
        #expect(report.assigned == 6 && report.failed == 0)
        #expect(report.rows.map(\.agent) == ["a1", "a2"])
        // Pick order: never released, then by number.
        #expect(report.rows[0].numbers.map(\.e164) == ["+14155550110", "+14155550111", "+14155550112"])
        #expect(try held(f, "a2") == ["+14155550113", "+14155550114", "+14155550115"])
        #expect(try f.org.assignments(of: "a1").allSatisfy { $0.dailyLimit == 7 && $0.allowedCountries.count == 2 })
        #expect(f.log.records.count == before + 1)
        guard case .bulk(let change)? = f.log.records.last?.event else {
            Issue.record("expected one bulk change")
            return
        }
        #expect(change.kind == .assign && change.assigned.count == 6)
        #expect(change.summary.map(\.0) == ["agents", "assigned"])
        // The agents authorize at once.
        #expect(try f.authorize("a1", "+12025550123").isAllowed)
    }

    @Test func perRowReportsFailuresAndAppliesTheRest() throws {
        let f = try fixture()
        let report = try f.org.bulkAssign(
            agents: ["a1", "ghost", "a4", "a1", "a2", "a3"],
            pool: NumberCriteria(tag: "SALES"),
            perAgent: 4,
            terms: AssignmentTerms(),
            allOrNothing: false,
            actor: admin
        )
        #expect(report.rows.map(\.agent) == ["a1", "ghost", "a4", "a1", "a2", "a3"])
        #expect(report.rows.map { $0.failure == nil } == [true, false, false, false, true, false])
        #expect(report.rows[1].failure == "no agent with this id")
        #expect(report.rows[2].failure == "the agent is inactive")
        #expect(report.rows[3].failure == "listed more than once")
        #expect(report.rows[5].failure == "only 2 available numbers left in the pool, 4 needed")
        #expect(report.assigned == 8 && report.failed == 4)
        #expect(try held(f, "a1").count == 4 && held(f, "a2").count == 4 && held(f, "a3").isEmpty)
    }

    @Test func allOrNothingAppliesNothingOnAnyFailure() throws {
        let f = try fixture()
        let before = f.log.records.count
        let error = #expect(throws: CallgateError.self) {
            try f.org.bulkAssign(
                agents: ["a1", "a2", "a3"],
                pool: NumberCriteria(tag: "support"),
                perAgent: 2,
                terms: AssignmentTerms(),
                allOrNothing: true,
                actor: admin
            )
        }
        #expect(error?.code == .failedPrecondition)
        #expect(error?.message.contains("nothing was assigned") == true)
        #expect(error?.message.contains("'a3': only 1 available numbers left") == true)
        #expect(f.log.records.count == before)
        #expect(try held(f, "a1").isEmpty && held(f, "a2").isEmpty)
        #expect(f.org.poolsWithThresholds().isEmpty)
        let pool = try f.org.poolCapacity(pool: "support").items[0]
        #expect(pool.counts == PoolCounts(available: 5))
    }

    @Test func aRefusedStoreLeavesEverythingAsItWas() throws {
        let f = try fixture()
        try f.org.assign(num("+14155550110"), to: "a1", actor: admin)
        f.log.failAll(with: CallgateError(.unavailable, "disk full"))
        #expect(throws: CallgateError.self) {
            try f.org.bulkAssign(
                agents: ["a2"],
                pool: NumberCriteria(tag: "sales"),
                perAgent: 2,
                terms: AssignmentTerms(),
                allOrNothing: false,
                actor: admin
            )
        }
        #expect(throws: CallgateError.self) { try f.org.bulkRelease(agents: ["a1"], actor: admin) }
        #expect(throws: CallgateError.self) {
            try f.org.bulkUpdateStatus(
                .filter(NumberFilter(criteria: NumberCriteria(tag: "sales"))),
                status: .inactive,
                actor: admin
            )
        }
        #expect(throws: CallgateError.self) {
            try f.org.bulkDelete(nil, allUnassigned: true, confirm: true, actor: admin)
        }
        f.log.failAll(with: nil)
        #expect(try held(f, "a1") == ["+14155550110"] && held(f, "a2").isEmpty)
        #expect(f.org.number(num("+14155550111"))?.attributes.status == .active)
        #expect(f.org.inventoryCounts().numbers == 15)
        #expect(try f.org.poolCapacity(pool: "sales").items[0].counts == PoolCounts(available: 9, assigned: 1))
    }

    @Test func releaseByAgentsAndByNumbers() throws {
        let f = try fixture()
        _ = try f.org.bulkAssign(
            agents: ["a1", "a2"],
            pool: NumberCriteria(tag: "sales"),
            perAgent: 3,
            terms: AssignmentTerms(dailyLimit: 5),
            allOrNothing: true,
            actor: admin
        )
        _ = try f.authorize("a1", "+12025550123")
        let byAgent = try f.org.bulkRelease(agents: ["a1"], actor: admin)
        #expect(byAgent.changed == 3 && byAgent.rows.allSatisfy { $0.outcome == .released && $0.agent == "a1" })
        #expect(try held(f, "a1").isEmpty)
        // The counter stays with the number.
        let counted = try #require(f.org.number(num("+14155550110")))
        #expect(counted.counter.count == 1 && counted.state == .available)

        let byNumber = try f.org.bulkRelease(numbers: [num("+14155550113"), num("+14155550119")], actor: admin)
        #expect(byNumber.rows.map(\.outcome) == [.released, .skipped])
        #expect(byNumber.rows[1].reason == "not assigned")
        #expect(try held(f, "a2") == ["+14155550114", "+14155550115"])
        guard case .bulk(let change)? = f.log.records.last?.event else {
            Issue.record("expected a bulk change")
            return
        }
        #expect(change.kind == .release && change.released.map(\.agent) == ["a2"])

        // Unknown numbers or agents refuse the whole call.
        #expect(throws: CallgateError.self) {
            try f.org.bulkRelease(numbers: [num("+14155550114"), num("+19995550000")], actor: admin)
        }
        #expect(throws: CallgateError.self) { try f.org.bulkRelease(agents: ["a2", "ghost"], actor: admin) }
        #expect(try held(f, "a2").count == 2)
        // a2's rotation still works after a release in the middle of its numbers.
        #expect(try f.authorize("a2", "+12025550123").isAllowed)
    }

    @Test func statusOfManyByNumbersOrFilter() throws {
        let f = try fixture()
        try f.org.assign(num("+14155550210"), to: "a1", actor: admin)
        let report = try f.org.bulkUpdateStatus(
            .filter(NumberFilter(criteria: NumberCriteria(tag: "support"))),
            status: .inactive,
            actor: admin
        )
        #expect(report.changed == 5 && report.unchanged == 0)
        // The holder stops authorizing at once.
        #expect(try f.authorize("a1", "+12025550123").denyReason == .numberInactive)
        let again = try f.org.bulkUpdateStatus(
            .numbers([num("+14155550210"), num("+14155550110")]),
            status: .inactive,
            actor: admin
        )
        #expect(again.rows.map(\.outcome) == [.updated, .unchanged])
        #expect(try f.org.poolCapacity(pool: "support").items[0].counts == PoolCounts(assigned: 1, inactive: 4))
        #expect(throws: CallgateError.self) {
            try f.org.bulkUpdateStatus(.filter(NumberFilter()), status: .active, actor: admin)
        }
        #expect(throws: CallgateError.self) {
            try f.org.bulkUpdateStatus(.numbers([num("+19995550000")]), status: .active, actor: admin)
        }
    }

    @Test func deleteManyNeedsConfirmationAndNeverDeletesHeldNumbers() throws {
        let f = try fixture()
        try f.org.assign(num("+14155550110"), to: "a1", actor: admin)
        _ = try f.org.pickNumber(NumberCriteria(tag: "support"), mode: .reserve(seconds: 60), actor: admin)
        let error = #expect(throws: CallgateError.self) {
            try f.org.bulkDelete(nil, allUnassigned: true, confirm: false, actor: admin)
        }
        #expect(error?.code == .failedPrecondition)
        // A listed held number fails the call, unless skipped.
        #expect(throws: CallgateError.self) {
            try f.org.bulkDelete(.numbers([num("+14155550110"), num("+14155550111")]), actor: admin)
        }
        #expect(f.org.inventoryCounts().numbers == 15)
        let skipped = try f.org.bulkDelete(
            .numbers([num("+14155550110"), num("+14155550111")]),
            skipHeld: true,
            actor: admin
        )
        #expect(skipped.rows.map(\.outcome) == [.skipped, .deleted] && skipped.rows[0].agent == "a1")
        let all = try f.org.bulkDelete(nil, allUnassigned: true, confirm: true, actor: admin)
        #expect(all.changed == 12 && all.skipped == 0)  // held numbers are not even looked at
        #expect(f.org.inventoryCounts().numbers == 2)
        guard case .bulk(let change)? = f.log.records.last?.event else {
            Issue.record("expected a bulk change")
            return
        }
        #expect(change.kind == .delete && change.deleted.count == 12)
        #expect(change.summary.map(\.0) == ["deleted", "skipped"])
    }

    @Test func badParametersAreInvalidArguments() throws {
        let f = try fixture()
        for (agents, perAgent) in [([String](), 1), (["a1"], 0), (["a1"], 1001), (["a b"], 1)] {
            let error = #expect(throws: CallgateError.self) {
                try f.org.bulkAssign(
                    agents: agents,
                    pool: NumberCriteria(tag: "sales"),
                    perAgent: perAgent,
                    terms: AssignmentTerms(),
                    allOrNothing: false,
                    actor: admin
                )
            }
            #expect(error?.code == .invalidArgument)
        }
        #expect(throws: CallgateError.self) { try f.org.bulkRelease(actor: admin) }
    }

    @Test func otherOrganizationsAreNeverTouched() throws {
        let f = try fixture()
        let other = try f.engine.createOrganization(name: "Other", actor: admin)
        try other.addNumber(NumberInput(number: num("+14155550110"), provider: "x", tags: ["sales"]), actor: admin)
        try other.upsertAgent(AgentInput(id: "a1"), actor: admin)
        _ = try f.org.bulkAssign(
            agents: ["a1"],
            pool: NumberCriteria(tag: "sales"),
            perAgent: 10,
            terms: AssignmentTerms(),
            allOrNothing: true,
            actor: admin
        )
        _ = try f.org.bulkDelete(nil, allUnassigned: true, confirm: true, actor: admin)
        #expect(other.number(num("+14155550110"))?.state == .available)
        #expect(try other.assignments(of: "a1").isEmpty)
        #expect(try other.poolCapacity().items.map(\.pool) == ["sales"])
        #expect(try f.org.poolCapacity(pool: "sales").items[0].counts == PoolCounts(assigned: 10))
    }
}
