import CallgateClient
import CallgateCore
import CallgateServer
import CallgateStore
import CallgateWire
import Testing

/// Two organizations on one server: nothing crosses from one to the other.
@Suite("Organizations are isolated")
struct IsolationTests {
    static let shared = "+14155550100"
    static let destination = "+12025550123"

    /// Organization 1: alice holds `shared`, has made three calls; a manager key exists.
    /// Organization 2: a fresh organization with its own admin key. Returns both admin clients and the
    /// id of organization 1's manager key.
    static func twoOrganizations(
        _ server: TestServer
    ) async throws -> (first: CallgateClient, second: CallgateClient, firstKeyID: String) {
        let first = try await server.connect()
        _ = try await first.addNumber(Wire.AddNumberRequest(number: Self.shared, provider: "telnyx"))
        _ = try await first.addNumber(Wire.AddNumberRequest(number: "+14155550101", provider: "telnyx"))
        _ = try await first.upsertAgent(Wire.UpsertAgentRequest(id: "alice"))
        _ = try await first.assign(
            Wire.AssignRequest(number: Self.shared, agentID: "alice", terms: Wire.AssignmentTerms(dailyLimit: 10))
        )
        for _ in 0..<3 {
            let answer = try await first.authorizeCall(
                Wire.AuthorizeCallRequest(agentID: "alice", destination: Self.destination)
            )
            #expect(answer.verdict == .allow)
        }
        let key = try await first.createKey(Wire.CreateKeyRequest(role: .manager, label: "org 1 manager"))
        let firstKeyID = try #require(key.key?.id)

        let org2 = try server.store.engine.createOrganization(name: "Other Org", timeZone: "UTC", actor: .system)
        #expect(org2.id != server.store.engine.allOrganizations[0].id)
        let second = try await server.connect(key: try server.makeKey(.admin, organization: org2.id))
        #expect(second.session.organizationName == "Other Org")
        #expect(second.session.organizationID == org2.id.rawValue)
        return (first, second, firstKeyID)
    }

    @Test func aSecondOrganizationSeesNothingOfTheFirst() async throws {
        try await withTestServer { server in
            let (first, second, firstKeyID) = try await Self.twoOrganizations(server)
            defer {
                Task {
                    await first.close()
                    await second.close()
                }
            }

            await expectStatus(.notFound) { try await second.getNumber(Wire.GetNumberRequest(number: Self.shared)) }
            #expect(try await second.listNumbers(Wire.ListNumbersRequest()).numbers.isEmpty)
            #expect(try await second.listAgents(Wire.ListAgentsRequest(includeInactive: true)).agents.isEmpty)
            #expect(try await second.listAssignments(Wire.ListAssignmentsRequest()).assignments.isEmpty)
            #expect(try await second.listAssignments(Wire.ListAssignmentsRequest(agentID: "alice")).assignments.isEmpty)
            // Its history holds its own creation and its admin key's only.
            let history = try await second.auditLog(Wire.AuditLogRequest()).entries
            #expect(Set(history.map(\.action)) == ["organization.create", "key.create"], "\(history)")
            #expect(
                history.allSatisfy { $0.number.isEmpty && $0.agentID.isEmpty && !$0.afterJson.contains(firstKeyID) }
            )
            #expect(try await second.auditLog(Wire.AuditLogRequest(number: Self.shared)).entries.isEmpty)
            await expectStatus(.notFound) {
                try await second.numberTimeline(Wire.NumberTimelineRequest(number: Self.shared))
            }
            let keys = try await second.listKeys(Wire.ListKeysRequest(includeRevoked: true)).keys
            #expect(keys.count == 1)
            #expect(!keys.map(\.id).contains(firstKeyID))

            let stats = try await second.stats(Wire.StatsRequest())
            #expect(stats.numbers == 0)
            #expect(stats.assigned == 0)
            #expect(stats.agents == 0)
            #expect(stats.decisions == 0)
            #expect(stats.allows == 0)
            let firstStats = try await first.stats(Wire.StatsRequest())
            #expect(firstStats.numbers == 2)
            #expect(firstStats.assigned == 1)
            #expect(firstStats.agents == 1)
            #expect(firstStats.allows == 3)

            // Organization 1's agent is unknown here; its key and number cannot be touched.
            let unknown = try await second.authorizeCall(
                Wire.AuthorizeCallRequest(agentID: "alice", destination: Self.destination)
            )
            #expect(unknown.verdict == .deny)
            #expect(unknown.reason == .unknownAgent)
            await expectStatus(.notFound) { try await second.revokeKey(Wire.RevokeKeyRequest(id: firstKeyID)) }
            _ = try await second.upsertAgent(Wire.UpsertAgentRequest(id: "carol"))
            await expectStatus(.notFound) {
                try await second.assign(Wire.AssignRequest(number: Self.shared, agentID: "carol"))
            }
            await expectStatus(.notFound) { try await second.release(Wire.ReleaseRequest(number: Self.shared)) }
            await expectStatus(.notFound) {
                try await second.updateNumber(
                    Wire.UpdateNumberRequest(number: Self.shared, fields: ["location"], location: "elsewhere")
                )
            }
            // Organization 2's own work counts there only.
            let stats2 = try await second.stats(Wire.StatsRequest())
            #expect(stats2.agents == 1)
            #expect(stats2.decisions == 1)
            #expect(stats2.allows == 0)

            // Nothing changed in organization 1.
            let held = try await first.getNumber(Wire.GetNumberRequest(number: Self.shared))
            #expect(held.agentID == "alice")
            #expect(held.countToday == 3)
            #expect(held.location == "")
            #expect(try await first.listKeys(Wire.ListKeysRequest()).keys.map(\.id).contains(firstKeyID))
            #expect(try await first.listAgents(Wire.ListAgentsRequest()).agents.map(\.id) == ["alice"])
            let again = try await first.authorizeCall(
                Wire.AuthorizeCallRequest(agentID: "alice", destination: Self.destination)
            )
            #expect(again.verdict == .allow)
            #expect(again.count == 4)
            // The manager key of organization 1 still works (it was not revoked from organization 2).
            let manager = try await server.connect(key: try server.makeKey(.manager))
            #expect(try await manager.listNumbers(Wire.ListNumbersRequest()).numbers.count == 2)
            await manager.close()
        }
    }

    @Test func theSameNumberInBothOrganizationsIsTwoNumbers() async throws {
        try await withTestServer { server in
            let (first, second, _) = try await Self.twoOrganizations(server)
            defer {
                Task {
                    await first.close()
                    await second.close()
                }
            }

            let added = try await second.addNumber(
                Wire.AddNumberRequest(number: Self.shared, provider: "twilio", location: "org 2")
            )
            #expect(added.number == Self.shared)
            #expect(added.state == "available")
            #expect(added.countToday == 0)
            await expectStatus(.alreadyExists) {
                try await second.addNumber(Wire.AddNumberRequest(number: Self.shared, provider: "twilio"))
            }
            _ = try await second.upsertAgent(Wire.UpsertAgentRequest(id: "alice"))
            let assignment = try await second.assign(
                Wire.AssignRequest(number: Self.shared, agentID: "alice", terms: Wire.AssignmentTerms(dailyLimit: 1))
            )
            #expect(assignment.countToday == 0)
            let allow = try await second.authorizeCall(
                Wire.AuthorizeCallRequest(agentID: "alice", destination: Self.destination)
            )
            #expect(allow.verdict == .allow)
            #expect(allow.callerID == Self.shared)
            #expect(allow.count == 1)
            let deny = try await second.authorizeCall(
                Wire.AuthorizeCallRequest(agentID: "alice", destination: Self.destination)
            )
            #expect(deny.reason == .dailyLimitReached)

            // Organization 1's copy keeps its own provider, limit and count.
            let original = try await first.getNumber(Wire.GetNumberRequest(number: Self.shared))
            #expect(original.provider == "telnyx")
            #expect(original.countToday == 3)
            #expect(original.dailyLimit == 10)
            let firstAllow = try await first.authorizeCall(
                Wire.AuthorizeCallRequest(agentID: "alice", destination: Self.destination)
            )
            #expect(firstAllow.verdict == .allow)
            #expect(firstAllow.count == 4)

            // Releasing and deleting in organization 2 leaves organization 1's number alone.
            _ = try await second.release(Wire.ReleaseRequest(number: Self.shared))
            #expect(try await second.deleteNumbers(Wire.DeleteNumbersRequest(numbers: [Self.shared])).deleted == 1)
            await expectStatus(.notFound) { try await second.getNumber(Wire.GetNumberRequest(number: Self.shared)) }
            let still = try await first.getNumber(Wire.GetNumberRequest(number: Self.shared))
            #expect(still.agentID == "alice")
            #expect(still.countToday == 4)
            let secondActors = Set(try await second.listKeys(Wire.ListKeysRequest()).keys.map { "key:\($0.id)" })
            let firstHistory = try await first.auditLog(Wire.AuditLogRequest(number: Self.shared)).entries
            #expect(!firstHistory.isEmpty)
            #expect(firstHistory.allSatisfy { !secondActors.contains($0.actor) })
        }
    }
}
