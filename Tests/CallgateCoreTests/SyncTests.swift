import Testing

@testable import CallgateCore

/// Inventory sync: the diff, the local-only policies, the token, and applying exactly the diff shown.
@Suite struct SyncTests {
    /// +1415555 0100 (sales, alice's), 0101, 0102 available, 0103 (bob's) and 0104 available only here;
    /// agents alice, bob, carol, dave (inactive).
    func fixture() throws -> Fixture {
        let f = try Fixture()
        for id in ["alice", "bob", "carol", "dave"] { try f.org.upsertAgent(AgentInput(id: id), actor: admin) }
        try f.org.deactivateAgent("dave", actor: admin)
        for i in 0...4 {
            try f.org.addNumber(
                NumberInput(number: num("+1415555010\(i)"), provider: "telnyx", tags: i == 0 ? ["sales"] : []),
                actor: admin
            )
        }
        try f.org.assign(num("+14155550100"), to: "alice", actor: admin)
        try f.org.assign(num("+14155550103"), to: "bob", actor: admin)
        return f
    }

    static let file = """
        number,provider,tags,status,assigned_to
        +14155550100,telnyx,sales,,
        +14155550101,twilio,,,carol
        +14155550102,telnyx,,,-
        +14155550105,telnyx,,,alice
        +14155550106,telnyx,,,ghost
        +14155550107,telnyx,,inactive,bob
        +14155550108,telnyx,,,dave
        bad,telnyx
        """

    func entries(_ r: SyncReport) -> [String] {
        r.entries.map { "\($0.line) \($0.number) \($0.action.rawValue) \($0.reason)" }
    }

    @Test func theDiffListsEveryNumberWithItsChanges() throws {
        let f = try fixture()
        let before = f.log.records.count
        let report = try f.org.syncNumbers(csv: Self.file, actor: admin)
        #expect(
            entries(report) == [
                "2 +14155550100 unchanged ",
                "3 +14155550101 update ",
                "4 +14155550102 unchanged ",
                "5 +14155550105 add ",
                "6 +14155550106 rejected no agent 'ghost'",
                "7 +14155550107 rejected the number is inactive and cannot be assigned to 'bob'",
                "8 +14155550108 rejected agent 'dave' is inactive",
                "9 bad rejected invalid number: \(report.entries[7].reason.dropFirst("invalid number: ".count))",
                "0 +14155550103 local_only kept",
                "0 +14155550104 local_only kept",
            ]
        )
        #expect(
            report.entries[1].changes == [
                SyncFieldChange("provider", "telnyx", "twilio"), SyncFieldChange("assigned_to", "", "carol"),
            ]
        )
        #expect(report.entries[3].changes == [SyncFieldChange("assigned_to", "", "alice")])
        #expect((report.toAdd, report.toUpdate, report.unchanged, report.localOnly, report.rejected) == (1, 1, 2, 2, 4))
        #expect((report.toAssign, report.toRelease, report.toDeactivate, report.toDelete) == (2, 0, 0, 0))
        #expect(report.token.hasPrefix("sync1-") && report.token.count == 22 && !report.applied)
        // A dry run changes nothing, and the same state gives the same token.
        #expect(f.log.records.count == before)
        #expect(try f.org.syncNumbers(csv: Self.file, actor: admin).token == report.token)
    }

    @Test func localOnlyPolicies() throws {
        let f = try fixture()
        let deactivate = try f.org.syncNumbers(
            csv: Self.file,
            options: SyncOptions(localOnly: .deactivate),
            actor: admin
        )
        #expect(deactivate.entries.suffix(2).map(\.reason) == ["deactivate", "deactivate"])
        #expect(deactivate.entries.last?.changes == [SyncFieldChange("status", "active", "inactive")])
        #expect(deactivate.toDeactivate == 2)
        let delete = try f.org.syncNumbers(
            csv: Self.file,
            options: SyncOptions(localOnly: .deleteUnassigned),
            actor: admin
        )
        #expect(delete.entries.suffix(2).map(\.reason) == ["kept: assigned", "delete"])
        #expect(delete.toDelete == 1)
        // Each policy is a different diff: a different token.
        let tokens = Set([deactivate.token, delete.token, try f.org.syncNumbers(csv: Self.file, actor: admin).token])
        #expect(tokens.count == 3)
    }

    @Test func applyCommitsExactlyTheDiffAsOneChange() throws {
        let f = try fixture()
        let options = SyncOptions(localOnly: .deleteUnassigned, terms: AssignmentTerms(dailyLimit: 42))
        let dry = try f.org.syncNumbers(csv: Self.file, options: options, actor: admin)
        // A file with bad rows is refused as a whole unless they are skipped explicitly.
        let refused = #expect(throws: CallgateError.self) {
            try f.org.syncNumbers(csv: Self.file, options: options, apply: dry.token, actor: admin)
        }
        #expect(refused?.code == .failedPrecondition && refused?.message.contains("4 bad rows (line 6:") == true)
        let before = f.log.records.count
        var skipping = options
        skipping.skipBadRows = true
        let applied = try f.org.syncNumbers(csv: Self.file, options: skipping, apply: dry.token, actor: admin)
        #expect(applied.applied && applied.token == dry.token && applied.ticket != nil)
        #expect(f.log.records.count == before + 1)
        guard case .bulk(let change)? = f.log.records.last?.event else {
            Issue.record("expected one sync change")
            return
        }
        #expect(change.kind == .sync)
        #expect(change.added.map(\.number.e164) == ["+14155550105"])
        #expect(change.updated.map(\.after.attributes.provider) == ["twilio"])
        #expect(change.assigned.map(\.agent).sorted() == ["alice", "carol"])
        #expect(change.deleted.map(\.number.e164) == ["+14155550104"])
        #expect(change.notes.first?.1 == dry.token)

        let b = try #require(f.org.number(num("+14155550101")))
        #expect(b.attributes.provider == "twilio" && b.state == .assigned(agent: "carol"))
        #expect(try f.org.assignments(of: "carol").first?.dailyLimit == 42)
        #expect(f.org.number(num("+14155550105"))?.state == .assigned(agent: "alice"))
        #expect(f.org.number(num("+14155550104")) == nil)
        #expect(f.org.number(num("+14155550103"))?.state == .assigned(agent: "bob"))
        #expect(try f.authorize("carol", "+12025550123").isAllowed)
        // Now the organization matches the file: nothing but the bad rows (and bob's kept number) left.
        let again = try f.org.syncNumbers(csv: Self.file, options: options, actor: admin)
        #expect((again.toAdd, again.toUpdate, again.rejected, again.toDelete) == (0, 0, 4, 0))
    }

    @Test func applyIsRefusedWhenTheDiffMoved() throws {
        let f = try fixture()
        let file = "number,provider,assigned_to\n+14155550101,telnyx,carol\n+14155550102,telnyx,-\n"
        let dry = try f.org.syncNumbers(csv: file, actor: admin)
        // Counting calls does not touch the diff: the token still holds.
        _ = try f.authorize("alice", "+12025550123")
        #expect(try f.org.syncNumbers(csv: file, actor: admin).token == dry.token)
        // Someone assigns a number the file says is unassigned: the diff now has a release.
        try f.org.assign(num("+14155550102"), to: "bob", actor: admin)
        let before = f.log.records.count
        let error = #expect(throws: CallgateError.self) {
            try f.org.syncNumbers(csv: file, apply: dry.token, actor: admin)
        }
        #expect(
            error?.code == .failedPrecondition && error?.message.contains("inventory changed since the dry run") == true
        )
        #expect(f.log.records.count == before)
        #expect(f.org.number(num("+14155550101"))?.state == .available)
        // A fresh dry run shows the release; its token applies.
        let fresh = try f.org.syncNumbers(csv: file, actor: admin)
        #expect(fresh.entries[1].changes == [SyncFieldChange("assigned_to", "bob", "")] && fresh.toRelease == 1)
        _ = try f.org.syncNumbers(csv: file, apply: fresh.token, actor: admin)
        #expect(f.org.number(num("+14155550102"))?.state == .available)
        #expect(try f.org.assignments(of: "bob").map(\.number) == [num("+14155550103")])
        // A wrong or empty token.
        #expect(throws: CallgateError.self) { try f.org.syncNumbers(csv: file, apply: "sync1-0", actor: admin) }
        #expect(throws: CallgateError.self) { try f.org.syncNumbers(csv: file, apply: "", actor: admin) }
    }

    @Test func reassignKeepsTheCounterAndReleasesFirst() throws {
        let f = try fixture()
        _ = try f.authorize("alice", "+12025550123")
        let file = "number,provider,tags,assigned_to\n+14155550100,telnyx,sales,bob\n"
        let dry = try f.org.syncNumbers(csv: file, actor: admin)
        #expect(dry.entries[0].changes == [SyncFieldChange("assigned_to", "alice", "bob")])
        #expect((dry.toRelease, dry.toAssign) == (1, 1))
        _ = try f.org.syncNumbers(csv: file, apply: dry.token, actor: admin)
        #expect(try f.org.assignments(of: "alice").isEmpty)
        let bobs = try f.org.assignments(of: "bob").first { $0.number == num("+14155550100") }
        #expect(bobs?.countToday == 1)
        guard case .bulk(let change)? = f.log.records.last?.event else {
            Issue.record("expected one sync change")
            return
        }
        #expect(change.released.map(\.agent) == ["alice"] && change.assigned.map(\.agent) == ["bob"])
        #expect(change.released.first?.callsSinceAssigned == 1)
    }

    @Test func attributesChangeLikeAnImportAndInactiveHoldersStop() throws {
        let f = try fixture()
        let file = "number,provider,tags,status\n+14155550100,telnyx,sales;west,inactive\n"
        let dry = try f.org.syncNumbers(csv: file, actor: admin)
        #expect(
            dry.entries[0].changes == [
                SyncFieldChange("status", "active", "inactive"), SyncFieldChange("tags", "sales", "sales;west"),
            ]
        )
        _ = try f.org.syncNumbers(csv: file, apply: dry.token, actor: admin)
        #expect(try f.authorize("alice", "+12025550123").denyReason == .numberInactive)
        #expect(try f.org.poolCapacity(pool: "west").items[0].counts == PoolCounts(assigned: 1))
    }

    @Test func badFilesAndOtherOrganizations() throws {
        let f = try fixture()
        let other = try f.engine.createOrganization(name: "Other", actor: admin)
        try other.addNumber(NumberInput(number: num("+14155550999"), provider: "x"), actor: admin)
        let report = try f.org.syncNumbers(csv: "number,provider\n+14155550100,telnyx\n", actor: admin)
        #expect(!report.entries.contains { $0.number == "+14155550999" })
        #expect(report.localOnly == 4)
        // An import refuses the assigned_to column; a sync reads it.
        #expect(throws: CallgateError.self) {
            try f.org.importNumbers(csv: "number,provider,assigned_to\n+14155550100,telnyx,bob\n", actor: admin)
        }
        let unknownColumn = #expect(throws: CallgateError.self) {
            try f.org.syncNumbers(csv: "number,provider,agnt\n+14155550100,telnyx,bob\n", actor: admin)
        }
        #expect(unknownColumn?.code == .invalidArgument)
        let badAgent = try f.org.syncNumbers(
            csv: "number,provider,assigned_to\n+14155550100,telnyx,a b\n",
            actor: admin
        )
        #expect(badAgent.entries[0].action == .rejected && badAgent.entries[0].reason.hasPrefix("assigned_to:"))
        #expect(other.number(num("+14155550999")) != nil)
    }
}
