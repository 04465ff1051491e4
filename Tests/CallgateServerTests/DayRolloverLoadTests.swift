import CallgateClient
import CallgateCore
import CallgateStore
import CallgateWire
import Foundation
import Synchronization
import Testing

/// Many connections authorize for the same few agents at their limit while the clock is moved across
/// midnight again and again: no day ever grants more than the limit, and each day grants it exactly.
@Suite(.timeLimit(.minutes(3))) struct DayRolloverLoadTests {
    static let agents = ["r-alice", "r-bob", "r-carol"]
    static let numbersPerAgent = 2
    static let limit: UInt32 = 20
    static let rollovers = 5
    static let connections = 12
    static let tasksPerConnection = 4

    /// What the clients saw: the counts of each ALLOW, by caller ID and the day it counted on (the
    /// reply's `resets_at_ms`), and the denials by reason.
    struct Seen {
        var allows: [String: [Int64: [UInt32]]] = [:]
        var denials: [Wire.DenyReason: Int] = [:]
        var allowsOnDay: [Int64: Int] = [:]
    }

    /// Shared by the client tasks and the clock task.
    final class Run: Sendable {
        let seen = Mutex(Seen())
        let stop = Atomic<Bool>(false)
    }

    @Test func noDayGrantsMoreThanTheLimitAcrossForcedRollovers() async throws {
        // Noon UTC (the organization's zone); every move is a whole day, so each lands on the next day.
        let clock = ManualClock(Timestamp(seconds: 1_795_305_600 + 12 * 3600))
        try await withTestServer(clock: clock) { server in
            let admin = try await server.connect()
            var numbers: [String: [String]] = [:]
            var csv = "number,provider,country\n"
            for (a, agent) in Self.agents.enumerated() {
                numbers[agent] = (0..<Self.numbersPerAgent).map { "+1415555\(String(format: "%02d", a))\($0 + 10)" }
                csv += numbers[agent]!.map { "\($0),telnyx,US\n" }.joined()
            }
            _ = try await admin.importNumbers(Wire.ImportNumbersRequest(csv: csv))
            for agent in Self.agents {
                _ = try await admin.upsertAgent(Wire.UpsertAgentRequest(id: agent))
                for number in numbers[agent]! {
                    _ = try await admin.assign(
                        Wire.AssignRequest(
                            number: number,
                            agentID: agent,
                            terms: Wire.AssignmentTerms(dailyLimit: Self.limit, allowedCountries: ["US"])
                        )
                    )
                }
            }
            await admin.close()

            let run = Run()
            let perDay = Self.agents.count * Self.numbersPerAgent * Int(Self.limit)
            var clients: [CallgateClient] = []
            for i in 0..<Self.connections { clients.append(try await server.connect(name: "rollover-\(i)")) }
            let fixedClients = clients

            try await withThrowingTaskGroup(of: Void.self) { group in
                for (c, client) in fixedClients.enumerated() {
                    for t in 0..<Self.tasksPerConnection {
                        group.addTask {
                            var i = c * 7 + t
                            while !run.stop.load(ordering: .relaxed) {
                                i += 1
                                let answer = try await client.authorizeCall(
                                    Wire.AuthorizeCallRequest(
                                        agentID: Self.agents[i % Self.agents.count],
                                        destination: "+12025550123"
                                    )
                                )
                                run.seen.withLock { seen in
                                    if answer.verdict == .allow {
                                        seen.allows[answer.callerID, default: [:]][answer.resetsAtMs, default: []]
                                            .append(answer.count)
                                        seen.allowsOnDay[answer.resetsAtMs, default: 0] += 1
                                    } else {
                                        seen.denials[answer.reason, default: 0] += 1
                                    }
                                }
                            }
                        }
                    }
                }
                // The clock: once every number is at its limit on the current day (the clients keep
                // asking, so requests are in flight while it moves), the next day begins.
                group.addTask {
                    defer { run.stop.store(true, ordering: .relaxed) }
                    var days = 0
                    while days < Self.rollovers + 1 {
                        let full = run.seen.withLock { seen in seen.allowsOnDay.values.filter { $0 >= perDay }.count }
                        if full > days {
                            days = full
                            if days <= Self.rollovers { clock.advance(seconds: 86_400) }
                        } else {
                            try await Task.sleep(for: .milliseconds(2))
                        }
                    }
                }
                try await group.waitForAll()
            }
            for client in fixedClients { await client.close() }

            let result = run.seen.withLock { $0 }
            // Each caller ID, on each day, counted 1, 2, … limit: never more, never a count twice.
            for agent in Self.agents {
                for number in numbers[agent]! {
                    let days = try #require(result.allows[number], "\(number) was never allowed")
                    #expect(days.count >= Self.rollovers + 1, "\(number): \(days.count) days")
                    for (day, counts) in days {
                        #expect(counts.sorted() == Array(1...Self.limit), "\(number) on \(day): \(counts.sorted())")
                    }
                }
            }
            let totalAllows = result.allowsOnDay.values.reduce(0, +)
            #expect(totalAllows == perDay * result.allowsOnDay.count)
            // Denials were only for the limit: the rollover never made a number look unassigned.
            #expect(Set(result.denials.keys).isSubset(of: [.dailyLimitReached]))
            #expect(result.denials[.dailyLimitReached, default: 0] > 0)

            // What was stored agrees: each number's counter on the last day is at the limit.
            let org = server.store.engine.allOrganizations[0]
            for agent in Self.agents {
                for number in numbers[agent]! {
                    let record = try #require(org.number(try PhoneNumber.parse(number)))
                    #expect(record.counter.count == Self.limit)
                }
            }
        }
    }
}
