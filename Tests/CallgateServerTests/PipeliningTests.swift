import CallgateClient
import CallgateCore
import CallgateServer
import CallgateStore
import CallgateWire
import Testing

/// Thousands of AuthorizeCall requests pipelined on one connection: every one answered, and the
/// daily limits hold exactly.
@Suite("Pipelining on one connection")
struct PipeliningTests {
    static let agents = 50
    static let numbersPerAgent = 2
    static let dailyLimit: UInt32 = 30
    static let requests = 5_000

    /// Agent `a<i>` holds numbers `+1415555<i><j>…`.
    static func number(agent: Int, _ index: Int) -> String {
        "+141555" + String(10_000 + agent * 10 + index).suffix(5)
    }

    @Test(.timeLimit(.minutes(5)), arguments: [StoreConfiguration.Durability.commit, .async])
    func everyRequestIsAnsweredAndNoLimitIsExceeded(durability: StoreConfiguration.Durability) async throws {
        try await withTestServer(durability: durability) { server in
            let client = try await server.connect()
            defer { Task { await client.close() } }

            let numbers = (0..<Self.agents).flatMap { a in (0..<Self.numbersPerAgent).map { Self.number(agent: a, $0) }
            }
            let imported = try await client.importNumbers(
                Wire.ImportNumbersRequest(csv: "number,provider\n" + numbers.map { "\($0),telnyx\n" }.joined())
            )
            #expect(imported.added == UInt32(numbers.count))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for a in 0..<Self.agents {
                    group.addTask {
                        _ = try await client.upsertAgent(Wire.UpsertAgentRequest(id: "a\(a)"))
                        for n in 0..<Self.numbersPerAgent {
                            _ = try await client.assign(
                                Wire.AssignRequest(
                                    number: Self.number(agent: a, n),
                                    agentID: "a\(a)",
                                    terms: Wire.AssignmentTerms(dailyLimit: Self.dailyLimit)
                                )
                            )
                        }
                    }
                }
                try await group.waitForAll()
            }

            // 5,000 requests at once, 100 per agent, for 60 calls per agent.
            let answers = try await withThrowingTaskGroup(of: Wire.AuthorizeCallResponse.self) { group in
                for i in 0..<Self.requests {
                    group.addTask {
                        try await client.authorizeCall(
                            Wire.AuthorizeCallRequest(agentID: "a\(i % Self.agents)", destination: "+12025550123")
                        )
                    }
                }
                var answers: [Wire.AuthorizeCallResponse] = []
                answers.reserveCapacity(Self.requests)
                for try await answer in group { answers.append(answer) }
                return answers
            }
            #expect(answers.count == Self.requests)
            let allows = answers.filter { $0.verdict == .allow }
            #expect(allows.count == Self.agents * Self.numbersPerAgent * Int(Self.dailyLimit))
            let denies = answers.filter { $0.verdict == .deny }
            #expect(denies.count == Self.requests - allows.count)
            #expect(denies.allSatisfy { $0.reason == .dailyLimitReached })
            // No ALLOW was counted twice: each number's counts 1…30 appear once each.
            let byNumber = Dictionary(grouping: allows, by: \.callerID)
            #expect(byNumber.count == numbers.count)
            for (number, answers) in byNumber {
                #expect(answers.map(\.count).sorted() == Array(1...Self.dailyLimit), "\(number)")
            }

            let usage = try await client.listAssignments(Wire.ListAssignmentsRequest(pageSize: 1000))
            #expect(usage.assignments.count == numbers.count)
            #expect(usage.nextCursor.isEmpty)
            for assignment in usage.assignments {
                #expect(assignment.countToday <= Self.dailyLimit, "\(assignment.number)")
                #expect(
                    assignment.countToday == UInt32(byNumber[assignment.number]?.count ?? 0),
                    "\(assignment.number)"
                )
            }
            #expect(usage.assignments.map { Int($0.countToday) }.reduce(0, +) == allows.count)
            let stats = try await client.stats(Wire.StatsRequest())
            #expect(stats.decisions == UInt64(Self.requests))
            #expect(stats.allows == UInt64(allows.count))
        }
    }
}
