import CallgateClient
import CallgateCore
import CallgateStore
import CallgateWire
import Foundation
import Testing

/// `usage_report` over loopback: decisions made through the server, read back exactly.
@Suite("Usage reports over the wire")
struct UsageReportTests {
    static let alice = "+14155550101"
    static let bob = "+14155550201"

    /// The UTC date and hour now (the test server's organization is in UTC).
    static func now() -> (day: String, hour: UInt32) {
        let seconds = Int(Date().timeIntervalSince1970)
        let day = LocalDate(ordinal: seconds / 86_400).description
        return (day, UInt32(seconds % 86_400 / 3600))
    }

    /// alice holds one number (limit 2), bob one (limit 5); carol holds none.
    static func setUp(_ server: TestServer) async throws {
        let admin = try await server.connect()
        defer { Task { await admin.close() } }
        _ = try await admin.importNumbers(
            Wire.ImportNumbersRequest(csv: "number,provider\n\(alice),telnyx\n\(bob),telnyx\n")
        )
        for agent in ["alice", "bob", "carol"] { _ = try await admin.upsertAgent(Wire.UpsertAgentRequest(id: agent)) }
        _ = try await admin.assign(
            Wire.AssignRequest(number: alice, agentID: "alice", terms: Wire.AssignmentTerms(dailyLimit: 2))
        )
        _ = try await admin.assign(
            Wire.AssignRequest(number: bob, agentID: "bob", terms: Wire.AssignmentTerms(dailyLimit: 5))
        )
    }

    /// Decisions of every kind; returns the dates and hours around them.
    static func decide(_ client: CallgateClient) async throws -> (days: Set<String>, hours: Set<UInt32>) {
        let before = Self.now()
        func call(
            _ agent: String,
            _ destination: String,
            dryRun: Bool = false
        ) async throws -> Wire.AuthorizeCallResponse {
            try await client.authorizeCall(
                Wire.AuthorizeCallRequest(agentID: agent, destination: destination, dryRun: dryRun)
            )
        }
        #expect(try await call("alice", "+12025550123").verdict == .allow)
        #expect(try await call("alice", "+12025550123").verdict == .allow)
        #expect(try await call("alice", "+12025550123").reason == .dailyLimitReached)
        #expect(try await call("alice", "+442079460000").reason == .countryNotAllowed)
        #expect(try await call("alice", "+12025550123", dryRun: true).reason == .dailyLimitReached)  // not counted
        #expect(try await call("bob", "not a number").reason == .invalidDestination)
        #expect(try await call("bob", "+12025550123").verdict == .allow)
        #expect(try await call("carol", "+12025550123").reason == .noAssignment)
        #expect(try await call("ghost", "+12025550123").reason == .unknownAgent)
        #expect(try await call("ghost", "+12025550123").reason == .unknownAgent)
        #expect(try await call("ghost", "garbage").reason == .invalidDestination)
        let after = Self.now()
        return ([before.day, after.day], [before.hour, after.hour])
    }

    static func denials(_ row: Wire.UsageRow?) -> [Wire.DenyReason: UInt64] {
        Dictionary(uniqueKeysWithValues: (row?.denials ?? []).map { ($0.reason, $0.count) })
    }

    @Test func theReportCountsEveryDecisionExactly() async throws {
        try await withTestServer { server in
            try await Self.setUp(server)
            let client = try await server.connect()
            defer { Task { await client.close() } }
            let (days, hours) = try await Self.decide(client)
            // Around today, whatever midnight did during the test.
            let today = try #require(LocalDate(days.sorted().first!))
            let range = (from: today.adding(days: -1).description, to: today.adding(days: 1).description)

            let byAgent = try await client.usageReport(Wire.UsageReportRequest(fromDay: range.from, toDay: range.to))
            // The organization's zone as the system names it ("UTC" reads as "GMT").
            #expect(byAgent.timeZone == server.store.engine.allOrganizations[0].day.timeZoneIdentifier)
            #expect(byAgent.nextCursor.isEmpty)
            #expect(byAgent.rows.map(\.key) == ["alice", "bob", "carol"])
            let alice = byAgent.rows[0]
            #expect(alice.callsAllowed == 2 && alice.callsDenied == 2)
            #expect(Self.denials(alice) == [.dailyLimitReached: 1, .countryNotAllowed: 1])
            #expect(alice.peakHourCalls == 2 && hours.contains(alice.peakHour))
            #expect(alice.callsByHour.map(\.calls).reduce(0, +) == 2)
            let bob = byAgent.rows[1]
            #expect(bob.callsAllowed == 1 && bob.callsDenied == 1 && Self.denials(bob) == [.invalidDestination: 1])
            let carol = byAgent.rows[2]
            #expect(carol.callsAllowed == 0 && carol.peakHourCalls == 0 && carol.callsByHour.isEmpty)
            #expect(Self.denials(carol) == [.noAssignment: 1])
            let unknown = try #require(byAgent.unknownAgents)
            #expect(unknown.key == "" && unknown.callsDenied == 3)
            #expect(Self.denials(unknown) == [.unknownAgent: 2, .invalidDestination: 1])

            let byNumber = try await client.usageReport(
                Wire.UsageReportRequest(fromDay: range.from, toDay: range.to, groupBy: "number")
            )
            #expect(byNumber.rows.map(\.key) == [Self.alice, Self.bob])
            #expect(byNumber.rows.map(\.callsAllowed) == [2, 1])
            #expect(Self.denials(byNumber.rows[0]) == [.dailyLimitReached: 1])
            #expect(byNumber.unknownAgents == nil)

            let perDay = try await client.usageReport(
                Wire.UsageReportRequest(fromDay: range.from, toDay: range.to, agentID: "alice", perDay: true)
            )
            #expect(perDay.rows.map(\.key) == ["alice"] && days.contains(perDay.rows.first?.day ?? ""))
            #expect(perDay.unknownAgents == nil)

            // Pages of one, every page read.
            let paged = try await client.usageReportAllPages(
                Wire.UsageReportRequest(fromDay: range.from, toDay: range.to, pageSize: 1)
            )
            #expect(paged.rows.map(\.key) == ["alice", "bob", "carol"] && paged.unknownAgents != nil)
        }
    }

    @Test func badInputIsAnsweredWithTheReason() async throws {
        try await withTestServer { server in
            try await Self.setUp(server)
            let client = try await server.connect()
            defer { Task { await client.close() } }
            let cases: [(Wire.UsageReportRequest, String)] = [
                (
                    Wire.UsageReportRequest(fromDay: "2026-13-01", toDay: "2026-11-21"),
                    "from_day '2026-13-01' is not a date"
                ),
                (
                    Wire.UsageReportRequest(fromDay: "2026-11-01", toDay: "21.11.2026"),
                    "to_day '21.11.2026' is not a date"
                ),
                (Wire.UsageReportRequest(toDay: "2026-11-21"), "from_day is required"),
                (Wire.UsageReportRequest(fromDay: "2026-11-21", toDay: "2026-11-01"), "is after to_day"),
                (Wire.UsageReportRequest(fromDay: "2025-01-01", toDay: "2026-11-21"), "a report covers at most 400"),
                (
                    Wire.UsageReportRequest(fromDay: "2026-11-01", toDay: "2026-11-21", groupBy: "team"),
                    "unknown group_by 'team' (expected agent or number)"
                ),
                (
                    Wire.UsageReportRequest(fromDay: "2026-11-01", toDay: "2026-11-21", number: "abc"),
                    "number is not a valid"
                ),
                (Wire.UsageReportRequest(fromDay: "2026-11-01", toDay: "2026-11-21", cursor: "zzz"), "invalid cursor"),
                (Wire.UsageReportRequest(fromDay: "2026-11-01", toDay: "2026-11-21", pageSize: 5000), "page_size"),
            ]
            for (request, reason) in cases {
                do throws(CallgateClientError) {
                    _ = try await client.usageReport(request)
                    Issue.record("\(request) was accepted")
                } catch {
                    #expect(error.statusCode == .invalidArgument, "\(error)")
                    #expect(error.message.contains(reason), "\(error.message)")
                }
            }
            await expectStatus(.notFound) {
                try await client.usageReport(
                    Wire.UsageReportRequest(fromDay: "2026-11-01", toDay: "2026-11-21", agentID: "nobody")
                )
            }
        }
    }

    @Test func anAgentKeyReadsItsOwnUsageOnly() async throws {
        try await withTestServer { server in
            try await Self.setUp(server)
            let admin = try await server.connect()
            defer { Task { await admin.close() } }
            let (days, _) = try await Self.decide(admin)
            let today = try #require(LocalDate(days.sorted().first!))
            let from = today.adding(days: -1).description
            let to = today.adding(days: 1).description

            let agent = try await server.connect(key: try server.makeKey(.agent, agent: "alice"))
            defer { Task { await agent.close() } }
            let own = try await agent.usageReport(Wire.UsageReportRequest(fromDay: from, toDay: to))
            #expect(own.rows.map(\.key) == ["alice"] && own.rows[0].callsAllowed == 2 && own.unknownAgents == nil)
            let numbers = try await agent.usageReport(
                Wire.UsageReportRequest(fromDay: from, toDay: to, groupBy: "number")
            )
            #expect(numbers.rows.map(\.key) == [Self.alice])
            await expectStatus(.permissionDenied) {
                try await agent.usageReport(Wire.UsageReportRequest(fromDay: from, toDay: to, agentID: "bob"))
            }
            let dialer = try await server.connect(key: try server.makeKey(.dialer))
            defer { Task { await dialer.close() } }
            await expectStatus(.permissionDenied) {
                try await dialer.usageReport(Wire.UsageReportRequest(fromDay: from, toDay: to))
            }
            let manager = try await server.connect(key: try server.makeKey(.manager))
            defer { Task { await manager.close() } }
            #expect(try await manager.usageReport(Wire.UsageReportRequest(fromDay: from, toDay: to)).rows.count == 3)
        }
    }
}
