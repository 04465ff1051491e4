import Testing

@testable import CallgateCore

@Suite struct LifecycleTests {
    func addNumbers(
        _ f: Fixture,
        _ numbers: [String],
        tags: [String] = [],
        location: String = ""
    ) throws -> [PhoneNumber] {
        try numbers.map { text in
            let n = num(text)
            try f.org.addNumber(
                NumberInput(number: n, provider: "twilio", location: location, tags: tags),
                actor: admin
            )
            return n
        }
    }

    @Test func addDerivesCountryAndRejectsMismatchAndDuplicates() throws {
        let f = try Fixture()
        let record = try f.org.addNumber(
            NumberInput(number: num("+44 20 7946 0000"), provider: " telnyx "),
            actor: admin
        )
        #expect(record.attributes.country == country("GB"))
        #expect(record.attributes.provider == "telnyx")
        #expect(record.state == .available)
        #expect(record.createdBy == admin)
        #expect(throws: CallgateError.self) {
            try f.org.addNumber(NumberInput(number: num("+44 20 7946 0000"), provider: "x"), actor: admin)
        }
        do {
            try f.org.addNumber(
                NumberInput(number: num("+1 202 555 0101"), provider: "x", country: country("CA")),
                actor: admin
            )
            Issue.record("mismatch accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("country mismatch"))
        }
        #expect(throws: CallgateError.self) {
            try f.org.addNumber(NumberInput(number: num("+1 202 555 0102"), provider: ""), actor: admin)
        }
        #expect(f.org.number(num("+1 202 555 0101")) == nil)
    }

    @Test func pickReservesThenAssignsWithTheToken() throws {
        let f = try Fixture()
        let n = try addNumbers(f, ["+1 415 555 0101", "+1 212 555 0102"])
        try f.org.upsertAgent(AgentInput(id: "a1"), actor: admin)
        try f.org.upsertAgent(AgentInput(id: "a2"), actor: admin)
        let picked = try f.org.pickNumber(
            NumberCriteria(prefix: "1415"),
            mode: .reserve(seconds: 60, agent: "a1"),
            actor: admin
        )
        #expect(picked.number.number == n[0])
        let token = try #require(picked.reservation?.id)
        // Nobody else can take it while reserved.
        #expect(throws: CallgateError.self) { try f.org.assign(n[0], to: "a2", actor: admin) }
        #expect(throws: CallgateError.self) {
            try f.org.pickNumber(NumberCriteria(prefix: "1415"), mode: .reserve(seconds: 60), actor: admin)
        }
        let (assignment, _) = try f.org.assign(n[0], to: "a1", reservation: token, actor: admin)
        #expect(assignment.agent == "a1" && assignment.dailyLimit == 100)
        #expect(assignment.allowedCountries == [country("US")])
        #expect(f.org.number(n[0])?.state == .assigned(agent: "a1"))
    }

    @Test func reservationsExpireByTheClock() throws {
        let f = try Fixture()
        let n = try addNumbers(f, ["+1 415 555 0101"])
        try f.org.upsertAgent(AgentInput(id: "a2"), actor: admin)
        _ = try f.org.pickNumber(NumberCriteria(), mode: .reserve(seconds: 30), actor: admin)
        #expect(throws: CallgateError.self) { try f.org.assign(n[0], to: "a2", actor: admin) }
        f.clock.advance(seconds: 31)
        #expect(f.org.number(n[0])?.state == .available)
        let again = try f.org.pickNumber(
            NumberCriteria(),
            mode: .assign(agent: "a2", terms: AssignmentTerms(dailyLimit: 5)),
            actor: admin
        )
        #expect(again.assignment?.agent == "a2" && again.assignment?.dailyLimit == 5)
    }

    @Test func pickPrefersTheNumberReleasedLongestAgoAndSkipsInactive() throws {
        let f = try Fixture()
        let n = try addNumbers(f, ["+1 202 555 0101", "+1 202 555 0102", "+1 202 555 0103"])
        try f.org.upsertAgent(AgentInput(id: "a1"), actor: admin)
        // Use and release 0103 first, then 0101; 0102 was never used.
        for i in [2, 0] {
            try f.org.assign(n[i], to: "a1", actor: admin)
            f.clock.advance(seconds: 10)
            try f.org.release(n[i], actor: admin)
        }
        let mode = PickMode.reserve(seconds: 60)
        #expect(try f.org.pickNumber(NumberCriteria(), mode: mode, actor: admin).number.number == n[1])
        #expect(try f.org.pickNumber(NumberCriteria(), mode: mode, actor: admin).number.number == n[2])
        try f.org.updateNumber(n[0], NumberUpdate(status: .inactive), actor: admin)
        #expect(throws: CallgateError.self) { try f.org.pickNumber(NumberCriteria(), mode: mode, actor: admin) }
    }

    @Test func pickCriteria() throws {
        let f = try Fixture()
        try f.org.addNumber(
            NumberInput(number: num("+1 512 555 0101"), provider: "telnyx", location: "Austin office", tags: ["sales"]),
            actor: admin
        )
        try f.org.addNumber(
            NumberInput(
                number: num("+1 512 555 0102"),
                provider: "twilio",
                capabilities: [.voice, .sms],
                tags: ["support"]
            ),
            actor: admin
        )
        try f.org.addNumber(
            NumberInput(number: num("+44 20 7946 0000"), provider: "telnyx", tags: ["sales"]),
            actor: admin
        )
        func pick(_ c: NumberCriteria) throws -> PhoneNumber {
            try f.org.pickNumber(c, mode: .reserve(seconds: 60), actor: admin).number.number
        }
        #expect(try pick(NumberCriteria(country: country("GB"))) == num("+44 20 7946 0000"))
        #expect(try pick(NumberCriteria(capabilities: .sms)) == num("+1 512 555 0102"))
        #expect(try pick(NumberCriteria(location: "austin")) == num("+1 512 555 0101"))
        #expect(throws: CallgateError.self) { try pick(NumberCriteria(tag: "sales")) }
        #expect(throws: CallgateError.self) { try pick(NumberCriteria(prefix: "12a")) }
    }

    @Test func releaseChecksTheExpectedAgentAndRecordsHistory() throws {
        let f = try Fixture()
        let n = try f.agent("a1", numbers: ["+1 202 555 0101"])
        #expect(try f.authorize("a1", "+1 212 555 0199").isAllowed)
        #expect(throws: CallgateError.self) { try f.org.release(n[0], expectedAgent: "a2", actor: admin) }
        try f.org.release(n[0], expectedAgent: "a1", actor: admin)
        #expect(try f.authorize("a1", "+1 212 555 0199").denyReason == .noAssignment)
        guard case .released(let record, _)? = f.log.records.last?.event else {
            Issue.record("release not recorded")
            return
        }
        #expect(record.agent == "a1" && record.callsSinceAssigned == 1)
        #expect(throws: CallgateError.self) { try f.org.release(n[0], actor: admin) }
        #expect(f.org.number(n[0])?.counter.count == 1)
    }

    @Test func deleteOnlyUnassignedAllOrNothing() throws {
        let f = try Fixture()
        let assigned = try f.agent("a1", numbers: ["+1 202 555 0101"])
        let free = try addNumbers(f, ["+1 202 555 0102", "+1 202 555 0103"])
        #expect(throws: CallgateError.self) { try f.org.deleteNumbers(free + assigned, actor: admin) }
        #expect(f.org.number(free[0]) != nil)  // nothing was deleted
        #expect(try f.org.deleteNumbers([free[0]], actor: admin) == 1)
        #expect(f.org.number(free[0]) == nil)
        #expect(throws: CallgateError.self) { try f.org.deleteAllUnassigned(confirm: false, actor: admin) }
        #expect(try f.org.deleteAllUnassigned(confirm: true, actor: admin) == 1)
        #expect(f.org.number(assigned[0]) != nil)
    }

    @Test func listFiltersAndPages() throws {
        let f = try Fixture()
        // Added out of order on purpose.
        var all: [PhoneNumber] = []
        for i in stride(from: 30, to: 0, by: -1) {
            let n = num("+1 202 555 01\(i < 10 ? "0" : "")\(i)")
            try f.org.addNumber(
                NumberInput(number: n, provider: i % 2 == 0 ? "telnyx" : "twilio", tags: i % 3 == 0 ? ["pool-a"] : []),
                actor: admin
            )
            all.append(n)
        }
        try f.agent("a1", numbers: ["+1 415 555 0101"])
        var seen: [PhoneNumber] = []
        var cursor: String?
        repeat {
            let page = try f.org.listNumbers(cursor: cursor, limit: 7)
            seen += page.items.map(\.number)
            cursor = page.nextCursor
        } while cursor != nil
        #expect(seen == (all + [num("+1 415 555 0101")]).sorted())
        let telnyx = try f.org.listNumbers(NumberFilter(criteria: NumberCriteria(provider: "TELNYX")), limit: 100)
        #expect(telnyx.items.count == 16)  // 15 of the 30, and the agent's number
        #expect(
            try f.org.listNumbers(NumberFilter(criteria: NumberCriteria(tag: "pool-a")), limit: 100).items.count == 10
        )
        #expect(
            try f.org.listNumbers(NumberFilter(state: "assigned"), limit: 100).items.map(\.number) == [
                num("+1 415 555 0101")
            ]
        )
        #expect(try f.org.listNumbers(NumberFilter(agent: "a1"), limit: 100).items.count == 1)
        #expect(
            try f.org.listNumbers(NumberFilter(criteria: NumberCriteria(text: "5550107")), limit: 100).items.count == 1
        )
        #expect(throws: CallgateError.self) { try f.org.listNumbers(cursor: "bogus") }
        #expect(throws: CallgateError.self) { try f.org.listNumbers(limit: 0) }
        #expect(throws: CallgateError.self) { try f.org.listNumbers(NumberFilter(state: "lost")) }
    }

    @Test func agentsUpsertListDeactivate() throws {
        let f = try Fixture()
        for id in ["c", "a", "b"] {
            try f.org.upsertAgent(AgentInput(id: id, displayName: id.uppercased()), actor: admin)
        }
        let updated = try f.org.upsertAgent(
            AgentInput(id: "a", displayName: "Alice", principal: "alice@example.com"),
            actor: admin
        )
        #expect(updated.displayName == "Alice" && updated.principal == "alice@example.com")
        try f.org.deactivateAgent("b", actor: admin)
        let first = try f.org.listAgents(limit: 2)
        #expect(first.items.map(\.id) == ["a", "b"])
        let second = try f.org.listAgents(cursor: first.nextCursor, limit: 2)
        #expect(second.items.map(\.id) == ["c"] && second.nextCursor == nil)
        #expect(try f.org.listAgents(includeInactive: false).items.map(\.id) == ["a", "c"])
        #expect(throws: CallgateError.self) { try f.org.upsertAgent(AgentInput(id: ""), actor: admin) }
        #expect(throws: CallgateError.self) { try f.org.upsertAgent(AgentInput(id: "has space"), actor: admin) }
        #expect(throws: CallgateError.self) { try f.org.deactivateAgent("nobody", actor: admin) }
    }

    @Test func assignmentsWithUsage() throws {
        let f = try Fixture()
        let n = try f.agent("a1", numbers: ["+1 202 555 0101", "+1 202 555 0102"], limit: 5)
        _ = try f.authorize("a1", "+1 212 555 0199", from: "+1 202 555 0102")
        let list = try f.org.assignments(of: "a1")
        #expect(list.map(\.number) == n)
        #expect(list.map(\.countToday) == [0, 1])
        #expect(list[1].remainingToday == 4)
        let page = try f.org.listAssignments(limit: 1)
        #expect(page.items.count == 1 && page.nextCursor != nil)
        #expect(try f.org.listAssignments(agent: "nobody").items.isEmpty)
    }

    @Test func assignValidates() throws {
        let f = try Fixture()
        let n = try addNumbers(f, ["+1 202 555 0101"])
        #expect(throws: CallgateError.self) { try f.org.assign(n[0], to: "ghost", actor: admin) }
        try f.org.upsertAgent(AgentInput(id: "a1"), actor: admin)
        #expect(throws: CallgateError.self) {
            try f.org.assign(
                n[0],
                to: "a1",
                terms: AssignmentTerms(dailyLimit: 100, allowedCountries: []),
                actor: admin
            )
        }
        #expect(throws: CallgateError.self) {
            try f.org.assign(n[0], to: "a1", terms: AssignmentTerms(dailyLimit: 20_000_000), actor: admin)
        }
        #expect(throws: CallgateError.self) { try f.org.assign(num("+1 202 555 0999"), to: "a1", actor: admin) }
        try f.org.assign(n[0], to: "a1", actor: admin)
        #expect(throws: CallgateError.self) { try f.org.assign(n[0], to: "a1", actor: admin) }
        #expect(throws: CallgateError.self) { try CountrySet(codes: ["US", "ZZ"]) }
    }

    @Test func everyAdminChangeIsRecordedWithItsActor() throws {
        let f = try Fixture()
        let n = try f.agent("a1", numbers: ["+1 202 555 0101"])
        try f.org.updateAssignment(n[0], allowedCountries: [country("US"), country("CA")], actor: admin)
        try f.org.release(n[0], actor: admin)
        let actions = f.log.records.compactMap { $0.event.action }
        #expect(
            actions == ["organization.create", "agent.upsert", "number.add", "assign", "assignment.update", "release"]
        )
        #expect(f.log.records.allSatisfy { $0.actor == admin && $0.organization == f.org.id })
    }

    @Test func failedSinkLeavesAdminStateUnchanged() throws {
        let f = try Fixture()
        let n = try f.agent("a1", numbers: ["+1 202 555 0101"])
        f.log.failAll(with: CallgateError(.unavailable, "store failed"))
        #expect(throws: CallgateError.self) { try f.org.release(n[0], actor: admin) }
        #expect(throws: CallgateError.self) {
            try f.org.addNumber(NumberInput(number: num("+1 202 555 0102"), provider: "x"), actor: admin)
        }
        #expect(f.org.number(n[0])?.state == .assigned(agent: "a1"))
        #expect(f.org.number(num("+1 202 555 0102")) == nil)
    }

    @Test func organizationsAreIsolated() throws {
        let f = try Fixture()
        let other = try f.engine.createOrganization(name: "Other", timeZone: "Europe/Berlin", actor: admin)
        try f.agent("a1", numbers: ["+1 202 555 0101"])
        #expect(try other.authorizeCall(agent: "a1", destination: num("+1 212 555 0199")).denyReason == .unknownAgent)
        #expect(other.number(num("+1 202 555 0101")) == nil)
        // The same number may be in two organizations' inventories.
        try other.addNumber(NumberInput(number: num("+1 202 555 0101"), provider: "x"), actor: admin)
        #expect(try other.listNumbers().items.count == 1)
        #expect(throws: CallgateError.self) {
            try f.engine.createOrganization(name: "Bad", timeZone: "Nowhere/City", actor: admin)
        }
    }

    @Test func deleteIsAllOrNothingWhenTheStoreRefuses() throws {
        let f = try Fixture()
        let free = try addNumbers(f, ["+1 202 555 0102", "+1 202 555 0103", "+1 202 555 0104"])
        f.log.failAll(with: CallgateError(.unavailable, "store failed"))
        #expect(throws: CallgateError.self) { try f.org.deleteNumbers(free, actor: admin) }
        for n in free { #expect(f.org.number(n) != nil) }
        f.log.failAll(with: nil)
        #expect(try f.org.deleteNumbers(free, actor: admin) == 3)
        guard case .numbersDeleted(let records)? = f.log.records.last?.event else {
            Issue.record("delete not recorded as one change")
            return
        }
        #expect(records.map(\.number) == free)
    }

    @Test func aReservationForAnAgentCannotGoToAnother() throws {
        let f = try Fixture()
        let n = try addNumbers(f, ["+1 202 555 0101"])
        try f.org.upsertAgent(AgentInput(id: "a1"), actor: admin)
        try f.org.upsertAgent(AgentInput(id: "a2"), actor: admin)
        let token = try #require(
            try f.org.pickNumber(NumberCriteria(), mode: .reserve(seconds: 60, agent: "a1"), actor: admin).reservation?
                .id
        )
        #expect(throws: CallgateError.self) { try f.org.assign(n[0], to: "a2", reservation: token, actor: admin) }
        try f.org.assign(n[0], to: "a1", reservation: token, actor: admin)
    }

    @Test(arguments: [
        ("4420", true), ("442", true), ("44", true), ("4", true), ("442079460000", true),
        ("4421", false), ("1", false), ("4420794600001", false), ("0", false),
    ])
    func prefixMatchesLeadingDigits(prefix: String, matches: Bool) {
        #expect(NumberCriteria.number(num("+44 20 7946 0000"), startsWith: prefix) == matches)
    }
}
