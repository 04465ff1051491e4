import Testing

@testable import CallgateCore

/// Pools (tags): counts kept on every change, reservations that expire, thresholds.
@Suite struct PoolTests {
    /// The counts the slow way: every number's state, by tag.
    func scanned(_ f: Fixture) throws -> [String: PoolCounts] {
        var result: [String: PoolCounts] = [:]
        let now = f.clock.now()
        var cursor: String?
        repeat {
            let page = try f.org.listNumbers(NumberFilter(), cursor: cursor, limit: 1000)
            for n in page.items {
                for tag in Set(n.attributes.tags.map { $0.lowercased() }) {
                    var c = result[tag, default: PoolCounts()]
                    switch n.state {
                    case .assigned: c.assigned += 1
                    case .reserved(let r) where r.expiresAt > now: c.reserved += 1
                    default: if n.attributes.status == .active { c.available += 1 } else { c.inactive += 1 }
                    }
                    result[tag] = c
                }
            }
            cursor = page.nextCursor
        } while cursor != nil
        return result
    }

    func counted(_ f: Fixture) throws -> [String: PoolCounts] {
        Dictionary(uniqueKeysWithValues: try f.org.poolCapacity(limit: 1000).items.map { ($0.pool, $0.counts) })
    }

    @Test func countsFollowEveryKindOfChange() throws {
        let f = try Fixture()
        try f.org.upsertAgent(AgentInput(id: "a1"), actor: admin)
        for i in 0..<6 {
            try f.org.addNumber(
                NumberInput(
                    number: num("+1415555010\(i)"),
                    provider: "t",
                    tags: i < 4 ? ["Austin", "sales"] : ["dallas"]
                ),
                actor: admin
            )
        }
        #expect(try counted(f) == scanned(f))
        #expect(try counted(f)["austin"] == PoolCounts(available: 4))
        // Assign, pick-reserve, pick-assign, update (status, tags), release, delete, import.
        try f.org.assign(num("+14155550100"), to: "a1", actor: admin)
        _ = try f.org.pickNumber(NumberCriteria(tag: "austin"), mode: .reserve(seconds: 60), actor: admin)
        _ = try f.org.pickNumber(
            NumberCriteria(tag: "AUSTIN"),
            mode: .assign(agent: "a1", terms: AssignmentTerms()),
            actor: admin
        )
        try f.org.updateNumber(num("+14155550103"), NumberUpdate(status: .inactive), actor: admin)
        try f.org.updateNumber(num("+14155550104"), NumberUpdate(tags: ["Dallas", "dallas", "east"]), actor: admin)
        #expect(try counted(f) == scanned(f))
        #expect(try counted(f)["austin"] == PoolCounts(reserved: 1, assigned: 2, inactive: 1))
        #expect(try counted(f)["dallas"] == PoolCounts(available: 2))  // "Dallas" and "dallas": one pool
        try f.org.release(num("+14155550100"), actor: admin)
        try f.org.deleteNumbers([num("+14155550105")], actor: admin)
        _ = try f.org.importNumbers(
            csv: "number,provider,tags\n+14155550106,t,dallas\n+14155550103,t,west\n",
            actor: admin
        )
        #expect(try counted(f) == scanned(f))
        #expect(try counted(f)["west"] == PoolCounts(inactive: 1))
        #expect(f.org.inventoryCounts().numbers == 6)

        // A reservation that expires counts as available again without any change being made.
        f.clock.advance(seconds: 61)
        #expect(try counted(f)["austin"] == PoolCounts(available: 2, assigned: 1))
        #expect(try counted(f) == scanned(f))
        let counts = f.org.inventoryCounts()
        #expect((counts.available, counts.reserved, counts.assigned) == (5, 0, 1))
    }

    @Test func thresholdsAreSetAuditedAndShownWhenLow() throws {
        let f = try Fixture()
        for i in 0..<3 {
            try f.org.addNumber(
                NumberInput(number: num("+1415555010\(i)"), provider: "t", tags: ["sales"]),
                actor: admin
            )
        }
        try f.org.upsertAgent(AgentInput(id: "a1"), actor: admin)
        let set = try f.org.setPoolThreshold(" Sales ", threshold: 3, actor: admin)
        #expect(set.pool == "sales" && set.threshold == 3 && !set.isBelowThreshold)
        guard case .poolThresholdSet("sales", nil, 3)? = f.log.records.last?.event else {
            Issue.record("expected the threshold change")
            return
        }
        #expect(f.org.poolsBelowThreshold().isEmpty)
        _ = try f.org.pickNumber(
            NumberCriteria(tag: "sales"),
            mode: .assign(agent: "a1", terms: AssignmentTerms()),
            actor: admin
        )
        #expect(f.org.poolsBelowThreshold().map(\.pool) == ["sales"])
        #expect(f.org.poolsBelowThreshold()[0].counts.available == 2)
        // A threshold on a pool with no numbers yet is listed, and low.
        try f.org.setPoolThreshold("empty", threshold: 1, actor: admin)
        #expect(try f.org.poolCapacity().items.map(\.pool) == ["empty", "sales"])
        #expect(f.org.poolsBelowThreshold().map(\.pool) == ["empty", "sales"])
        try f.org.setPoolThreshold("empty", threshold: nil, actor: admin)
        #expect(try f.org.poolCapacity().items.map(\.pool) == ["sales"])
        #expect(throws: CallgateError.self) { try f.org.setPoolThreshold("  ", threshold: 1, actor: admin) }
        // Paging by name.
        let first = try f.org.poolCapacity(limit: 1)
        #expect(first.items.count == 1 && first.nextCursor == nil)
    }

    @Test func thresholdsAreBoundedPerOrganization() throws {
        let f = try Fixture()
        for i in 0..<Organization.maximumPoolThresholds {
            try f.org.setPoolThreshold("pool-\(i)", threshold: 1, actor: admin)
        }
        let error = #expect(throws: CallgateError.self) {
            try f.org.setPoolThreshold("one-too-many", threshold: 1, actor: admin)
        }
        #expect(error?.code == .failedPrecondition)
        // Changing an existing one is fine.
        try f.org.setPoolThreshold("pool-0", threshold: 5, actor: admin)
        let page = try f.org.poolCapacity(limit: 60)
        #expect(page.items.count == 60 && page.nextCursor == page.items.last?.pool)
        #expect(try f.org.poolCapacity(cursor: page.nextCursor, limit: 60).items.count == 40)
    }

    @Test func pickNumberAssignsFromAPoolAtomically() throws {
        let f = try Fixture()
        try f.org.upsertAgent(AgentInput(id: "a1"), actor: admin)
        try f.org.addNumber(NumberInput(number: num("+14155550100"), provider: "t", tags: ["campaign-x"]), actor: admin)
        try f.org.addNumber(NumberInput(number: num("+14155550101"), provider: "t", tags: ["other"]), actor: admin)
        let picked = try f.org.pickNumber(
            NumberCriteria(tag: "Campaign-X"),
            mode: .assign(agent: "a1", terms: AssignmentTerms(dailyLimit: 9)),
            actor: admin
        )
        #expect(picked.number.number == num("+14155550100") && picked.assignment?.dailyLimit == 9)
        let error = #expect(throws: CallgateError.self) {
            try f.org.pickNumber(
                NumberCriteria(tag: "campaign-x"),
                mode: .assign(agent: "a1", terms: AssignmentTerms()),
                actor: admin
            )
        }
        #expect(error?.code == .notFound)
    }
}
