import CallgateClient
import CallgateCore
import CallgateServer
import CallgateStore
import CallgateWire
import Foundation
import Testing

/// Expects a client call to fail with one status code.
func expectStatus<T>(
    _ code: Wire.StatusCode,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> T
) async {
    do {
        _ = try await body()
        Issue.record("expected \(code), the call succeeded", sourceLocation: sourceLocation)
    } catch let error as CallgateClientError {
        #expect(error.statusCode == code, "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(code), got \(error)", sourceLocation: sourceLocation)
    }
}

@Suite("Server end to end over loopback") struct ServerEndToEndTests {
    @Test func helloReportsTheSession() async throws {
        try await withTestServer { server in
            let client = try await server.connect()
            defer { Task { await client.close() } }
            #expect(client.session.protocolVersion == 1)
            #expect(client.session.organizationName == "Test Org")
            #expect(client.session.role == .admin)
            #expect(client.session.maxFrameBytes == 1 << 20)
        }
    }

    @Test func firstStartWritesAnOwnerOnlyKeyOnce() async throws {
        try await withTestServer { server in
            let attributes = try FileManager.default.attributesOfItem(atPath: server.directory.adminKeyPath)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            #expect(server.adminKey.hasPrefix("cgk_"))
            #expect(server.store.keys.authenticate(server.adminKey)?.role == .admin)
        }
    }

    /// Every method once, as an admin would use them, checking what comes back.
    @Test func everyMethodEndToEnd() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            defer { Task { await c.close() } }

            // Numbers.
            let added = try await c.addNumber(
                Wire.AddNumberRequest(
                    number: "tel:+1 (415) 555-0100",
                    provider: "telnyx",
                    location: "SF",
                    tags: ["sales"]
                )
            )
            #expect(added.number == "+14155550100")
            #expect(added.country == "US")
            #expect(added.state == "available")
            await expectStatus(.alreadyExists) {
                try await c.addNumber(Wire.AddNumberRequest(number: "+14155550100", provider: "telnyx"))
            }
            await expectStatus(.invalidArgument) {
                try await c.addNumber(Wire.AddNumberRequest(number: "+1 415", provider: "telnyx"))
            }
            let imported = try await c.importNumbers(
                Wire.ImportNumbersRequest(
                    csv:
                        "number,provider,country\n+14155550101,twilio,US\n+14155550102,twilio,US\nnot-a-number,x,US\n+442079460000,twilio,US\n"
                )
            )
            #expect(imported.added == 2)
            #expect(imported.rejected == 2)
            #expect(imported.rows.first { $0.line == 4 }?.outcome == "rejected")
            #expect(imported.rows.first { $0.line == 5 }?.reason.contains("country") == true)
            let listed = try await c.listNumbers(Wire.ListNumbersRequest(pageSize: 2))
            #expect(listed.numbers.map(\.number) == ["+14155550100", "+14155550101"])
            #expect(!listed.nextCursor.isEmpty)
            let rest = try await c.listNumbers(Wire.ListNumbersRequest(cursor: listed.nextCursor, pageSize: 2))
            #expect(rest.numbers.map(\.number) == ["+14155550102"])
            #expect(rest.nextCursor.isEmpty)
            let updated = try await c.updateNumber(
                Wire.UpdateNumberRequest(number: "+14155550102", fields: ["location"], location: "LA")
            )
            #expect(updated.location == "LA")
            #expect(updated.provider == "twilio")
            #expect(try await c.getNumber(Wire.GetNumberRequest(number: "+14155550102")).location == "LA")
            await expectStatus(.notFound) { try await c.getNumber(Wire.GetNumberRequest(number: "+14155550199")) }

            // Agents and assignments.
            let agent = try await c.upsertAgent(Wire.UpsertAgentRequest(id: "alice", displayName: "Alice"))
            #expect(agent.active)
            _ = try await c.upsertAgent(Wire.UpsertAgentRequest(id: "bob"))
            #expect(try await c.listAgents(Wire.ListAgentsRequest()).agents.map(\.id) == ["alice", "bob"])
            let assignment = try await c.assign(
                Wire.AssignRequest(number: "+14155550100", agentID: "alice", terms: Wire.AssignmentTerms(dailyLimit: 3))
            )
            #expect(assignment.dailyLimit == 3)
            #expect(assignment.allowedCountries == ["US"])

            // The hot path until the limit denies.
            for expected in 1...3 {
                let allow = try await c.authorizeCall(
                    Wire.AuthorizeCallRequest(agentID: "alice", destination: "+12025550123")
                )
                #expect(allow.verdict == .allow)
                #expect(allow.callerID == "+14155550100")
                #expect(allow.count == UInt32(expected))
                #expect(allow.destinationCountry == "US")
            }
            let deny = try await c.authorizeCall(
                Wire.AuthorizeCallRequest(agentID: "alice", destination: "+12025550123")
            )
            #expect(deny.verdict == .deny)
            #expect(deny.reason == .dailyLimitReached)
            #expect(deny.remaining == 0)
            #expect(deny.resetsAtMs > 0)
            let invalid = try await c.authorizeCall(Wire.AuthorizeCallRequest(agentID: "alice", destination: "hello"))
            #expect(invalid.reason == .invalidDestination)
            let unknown = try await c.authorizeCall(
                Wire.AuthorizeCallRequest(agentID: "nobody", destination: "+12025550123")
            )
            #expect(unknown.reason == .unknownAgent)
            let usage = try await c.listAssignments(Wire.ListAssignmentsRequest(agentID: "alice"))
            #expect(usage.assignments.map(\.countToday) == [3])
            #expect(usage.assignments.map(\.remainingToday) == [0])

            let raised = try await c.updateAssignment(
                Wire.UpdateAssignmentRequest(
                    number: "+14155550100",
                    fields: ["daily_limit", "allowed_countries"],
                    dailyLimit: 5,
                    allowedCountries: ["US", "CA"]
                )
            )
            #expect(raised.dailyLimit == 5)
            #expect(raised.allowedCountries == ["CA", "US"])
            #expect(try await c.resetCounters(Wire.ResetCountersRequest(numbers: ["+14155550100"])).reset == 1)
            let afterReset = try await c.authorizeCall(
                Wire.AuthorizeCallRequest(agentID: "alice", destination: "+14165550123")
            )
            #expect(afterReset.verdict == .allow)
            #expect(afterReset.count == 1)
            #expect(afterReset.destinationCountry == "CA")

            // Pick: reserve, then assign with the token; and pick straight to an agent.
            let reserved = try await c.pickNumber(
                Wire.PickNumberRequest(
                    criteria: Wire.NumberCriteria(prefix: "1415"),
                    mode: .reserve(Wire.ReserveMode(ttlSeconds: 60, agentID: "bob"))
                )
            )
            #expect(reserved.reservationToken != 0)
            #expect(reserved.number?.state == "reserved")
            let reservedNumber = try #require(reserved.number?.number)
            await expectStatus(.failedPrecondition) {
                try await c.assign(Wire.AssignRequest(number: reservedNumber, agentID: "bob"))
            }
            _ = try await c.assign(
                Wire.AssignRequest(number: reservedNumber, agentID: "bob", reservationToken: reserved.reservationToken)
            )
            let picked = try await c.pickNumber(
                Wire.PickNumberRequest(
                    mode: .assign(Wire.AssignMode(agentID: "bob", terms: Wire.AssignmentTerms(dailyLimit: 7)))
                )
            )
            #expect(picked.assignment?.agentID == "bob")
            #expect(picked.assignment?.dailyLimit == 7)

            // Release, then history.
            let released = try await c.release(Wire.ReleaseRequest(number: "+14155550100", expectedAgentID: "alice"))
            #expect(released.number == "+14155550100")
            await expectStatus(.failedPrecondition) {
                try await c.release(Wire.ReleaseRequest(number: "+14155550100"))
            }
            let audit = try await c.auditLog(Wire.AuditLogRequest(number: "+14155550100"))
            let actions = Set(audit.entries.map(\.action))
            #expect(actions.isSuperset(of: ["number.add", "assign", "release"]), "\(actions)")
            #expect(audit.entries.allSatisfy { $0.actor.hasPrefix("key:") })
            let timeline = try await c.numberTimeline(Wire.NumberTimelineRequest(number: "+14155550100"))
            #expect(timeline.periods.count == 1)
            #expect(timeline.periods.first?.agentID == "alice")
            #expect(timeline.periods.first?.toMs != 0)

            // Keys.
            let created = try await c.createKey(Wire.CreateKeyRequest(role: .manager, label: "ops"))
            #expect(created.secret.hasPrefix("cgk_"))
            #expect(try await c.listKeys(Wire.ListKeysRequest()).keys.count == 2)
            let revoked = try await c.revokeKey(Wire.RevokeKeyRequest(id: created.key?.id ?? ""))
            #expect(revoked.revokedAtMs != 0)
            await expectStatus(.invalidArgument) { try await c.createKey(Wire.CreateKeyRequest(role: .unspecified)) }

            // Deletes, deactivation, stats, sync.
            await expectStatus(.failedPrecondition) {
                try await c.deleteNumbers(Wire.DeleteNumbersRequest(numbers: [reservedNumber]))
            }
            #expect(try await c.deleteNumbers(Wire.DeleteNumbersRequest(numbers: ["+14155550100"])).deleted == 1)
            await expectStatus(.failedPrecondition) {
                try await c.deleteNumbers(Wire.DeleteNumbersRequest(allUnassigned: true))
            }
            #expect(!(try await c.deactivateAgent(Wire.DeactivateAgentRequest(id: "alice"))).active)
            let stats = try await c.stats(Wire.StatsRequest())
            #expect(stats.numbers == 2)
            #expect(stats.assigned == 2)
            #expect(stats.agents == 2)
            #expect(stats.durability == "commit")
            #expect(stats.allows == 4)
            // A sync against an empty file: a dry run listing every number as only local, kept.
            let sync = try await c.syncNumbers(Wire.SyncNumbersRequest(csv: ""))
            #expect(sync.localOnly == 2 && !sync.applied && sync.entries.allSatisfy { $0.reason == "kept" })
            await expectStatus(.failedPrecondition) {
                try await c.send(.hello(Wire.HelloRequest(protocolVersion: 1, apiKey: server.adminKey)))
            }
        }
    }

    @Test func committedRepliesAreOnDisk() async throws {
        try await withTestServer { server in
            let c = try await server.connect()
            defer { Task { await c.close() } }
            try await c.addAndAssign("+14155550100", to: "a")
            let answer = try await c.authorizeCall(Wire.AuthorizeCallRequest(agentID: "a", destination: "+12025550123"))
            #expect(answer.verdict == .allow)
            // The reply left only after the commit: the writer must already report the ALLOW committed.
            let last = try #require(server.store.writer.lastTicket)
            #expect(server.store.writer.isCommitted(last))
        }
    }
}
