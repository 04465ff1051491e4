import Synchronization
import Testing

@testable import CallgateCore

/// Bulk operations and sync racing with AuthorizeCall, pickers and each other (run under TSan by CI).
@Suite struct BulkConcurrencyTests {
    @Test func bulkChangesRaceWithCallsAndPickersWithoutLosingACall() throws {
        let f = try Fixture()
        let agents = (0..<8).map { "agent-\($0)" }
        for agent in agents { try f.org.upsertAgent(AgentInput(id: agent), actor: admin) }
        var csv = "number,provider,tags\n"
        for i in 0..<400 { csv += "+1202555\(1000 + i),x,pool\n" }
        _ = try f.org.importNumbers(csv: csv, actor: admin)
        _ = try f.org.bulkAssign(
            agents: agents,
            pool: NumberCriteria(tag: "pool"),
            perAgent: 5,
            terms: AssignmentTerms(dailyLimit: 1_000_000),
            allOrNothing: true,
            actor: admin
        )
        let org = f.org
        let allowed = Atomic<Int>(0)
        let destination = num("+1 212 555 0199")
        onThreads(6) { thread in
            for round in 0..<60 {
                switch thread {
                case 0, 1, 2:
                    // Callers: every ALLOW counts on the number it used.
                    for agent in agents {
                        if (try? org.authorizeCall(agent: agent, destination: destination))?.isAllowed == true {
                            allowed.add(1, ordering: .relaxed)
                        }
                    }
                case 3:
                    // Release half the agents' numbers and give them new ones.
                    let some = Array(agents[(round % 2 * 4)..<(round % 2 * 4 + 4)])
                    _ = try? org.bulkRelease(agents: some, actor: admin)
                    _ = try? org.bulkAssign(
                        agents: some,
                        pool: NumberCriteria(tag: "pool"),
                        perAgent: 5,
                        terms: AssignmentTerms(dailyLimit: 1_000_000),
                        allOrNothing: false,
                        actor: admin
                    )
                case 4:
                    _ = try? org.pickNumber(NumberCriteria(tag: "pool"), mode: .reserve(seconds: 1), actor: admin)
                    _ = try? org.bulkUpdateStatus(
                        .numbers([num("+12025551399")]),
                        status: round % 2 == 0 ? .inactive : .active,
                        actor: admin
                    )
                default:
                    let file = "number,provider,tags,assigned_to\n+12025551398,x,pool,agent-\(round % 8)\n"
                    if let dry = try? org.syncNumbers(csv: file, actor: admin) {
                        _ = try? org.syncNumbers(csv: file, apply: dry.token, actor: admin)
                    }
                    _ = try? org.poolCapacity()
                    _ = org.inventoryCounts()
                }
            }
        }
        // Every call is on some number's counter: held ones in their holding, released ones in the pool.
        var counted = 0
        var cursor: String?
        repeat {
            let page = try org.listNumbers(NumberFilter(), cursor: cursor, limit: 1000)
            counted += page.items.reduce(0) { $0 + Int($1.counter.count) }
            cursor = page.nextCursor
        } while cursor != nil
        #expect(counted == allowed.load(ordering: .relaxed))
        // The pool counts still agree with the numbers.
        let pool = try #require(org.poolCapacity(pool: "pool").items.first)
        let held = try agents.reduce(0) { $0 + (try org.assignments(of: $1).count) }
        #expect(pool.counts.assigned == held && pool.counts.total == 400)
        let states = try org.listNumbers(NumberFilter(state: "assigned"), limit: 1000).items.count
        #expect(states == held)
    }
}
