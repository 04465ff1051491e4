import Testing

@testable import CallgateCore

@Suite struct AuthorizeCallTests {
    @Test func allowCountsTheCallAndSaysWhenItResets() throws {
        let f = try Fixture()
        let numbers = try f.agent("a1", numbers: ["+1 202 555 0101"], limit: 3)
        let d = try f.authorize("a1", "+1 212 555 0199")
        #expect(d.isAllowed)
        #expect(d.callerID == numbers[0])
        #expect(d.destinationCountry == country("US"))
        #expect(d.count == 1)
        #expect(d.limit == 3)
        #expect(d.remaining == 2)
        #expect(d.resetsAt == utc(2026, 6, 16, 4))  // next midnight in New York
        #expect(d.ticket != nil)
        guard case .counter(let n, let dayKey, let count)? = f.log.records.last?.event else {
            Issue.record("no counter change recorded")
            return
        }
        #expect(n == numbers[0] && dayKey == d.resetsAt.seconds && count == 1)
    }

    @Test func limitDeniesExactlyAfterLimitCalls() throws {
        let f = try Fixture()
        try f.agent("a1", numbers: ["+1 202 555 0101"], limit: 2)
        #expect(try f.authorize("a1", "+1 212 555 0199").isAllowed)
        #expect(try f.authorize("a1", "+1 212 555 0199").isAllowed)
        let third = try f.authorize("a1", "+1 212 555 0199")
        #expect(third.denyReason == .dailyLimitReached)
        #expect(third.count == 2 && third.limit == 2 && third.remaining == 0)
        #expect(third.ticket == nil)
    }

    @Test func zeroLimitNeverAllows() throws {
        let f = try Fixture()
        try f.agent("a1", numbers: ["+1 202 555 0101"], limit: 0)
        #expect(try f.authorize("a1", "+1 212 555 0199").denyReason == .dailyLimitReached)
    }

    @Test func unknownAgent() throws {
        let f = try Fixture()
        #expect(try f.authorize("ghost", "+1 212 555 0199").denyReason == .unknownAgent)
    }

    @Test func agentInactive() throws {
        let f = try Fixture()
        try f.agent("a1", numbers: ["+1 202 555 0101"])
        try f.org.deactivateAgent("a1", actor: admin)
        #expect(try f.authorize("a1", "+1 212 555 0199").denyReason == .agentInactive)
        try f.org.upsertAgent(AgentInput(id: "a1", active: true), actor: admin)
        #expect(try f.authorize("a1", "+1 212 555 0199").isAllowed)
    }

    @Test func noAssignment() throws {
        let f = try Fixture()
        try f.org.upsertAgent(AgentInput(id: "a1"), actor: admin)
        #expect(try f.authorize("a1", "+1 212 555 0199").denyReason == .noAssignment)
    }

    @Test func numberNotAssignedToAgent() throws {
        let f = try Fixture()
        try f.agent("a1", numbers: ["+1 202 555 0101"])
        try f.agent("a2", numbers: ["+1 202 555 0102"])
        let d = try f.authorize("a1", "+1 212 555 0199", from: "+1 202 555 0102")
        #expect(d.denyReason == .numberNotAssignedToAgent)
    }

    @Test func countryNotAllowed() throws {
        let f = try Fixture()
        try f.agent("a1", numbers: ["+1 202 555 0101"])  // default: US only
        #expect(try f.authorize("a1", "+44 20 7946 0000").denyReason == .countryNotAllowed)
        #expect(try f.authorize("a1", "+44 20 7946 0000", from: "+1 202 555 0101").denyReason == .countryNotAllowed)
    }

    @Test func allowedCountriesWiden() throws {
        let f = try Fixture()
        try f.agent("a1", numbers: ["+1 202 555 0101"], countries: ["US", "CA", "GB"])
        let d = try f.authorize("a1", "+44 20 7946 0000")
        #expect(d.isAllowed)
        #expect(d.destinationCountry == country("GB"))
        #expect(try f.authorize("a1", "+1 416 555 0100").destinationCountry == country("CA"))
    }

    @Test func numberInactive() throws {
        let f = try Fixture()
        let numbers = try f.agent("a1", numbers: ["+1 202 555 0101"])
        try f.org.updateNumber(numbers[0], NumberUpdate(status: .inactive), actor: admin)
        #expect(try f.authorize("a1", "+1 212 555 0199").denyReason == .numberInactive)
        #expect(try f.authorize("a1", "+1 212 555 0199", from: "+1 202 555 0101").denyReason == .numberInactive)
        try f.org.updateNumber(numbers[0], NumberUpdate(status: .active), actor: admin)
        #expect(try f.authorize("a1", "+1 212 555 0199").isAllowed)
    }

    @Test func invalidDestination() throws {
        let f = try Fixture()
        try f.agent("a1", numbers: ["+1 202 555 0101"])
        // +0 and +28x are no country's prefixes.
        let d = try f.org.authorizeCall(agent: "a1", destination: PhoneNumber(digits: 280_123_456)!)
        #expect(d.denyReason == .invalidDestination)
    }

    @Test func requestedNumberIsUsedAndChecked() throws {
        let f = try Fixture()
        let numbers = try f.agent("a1", numbers: ["+1 202 555 0101", "+1 212 555 0102"], limit: 1)
        let d = try f.authorize("a1", "+1 305 555 0199", from: "+1 212 555 0102")
        #expect(d.isAllowed && d.callerID == numbers[1])
        let again = try f.authorize("a1", "+1 305 555 0199", from: "+1 212 555 0102")
        #expect(again.denyReason == .dailyLimitReached && again.callerID == numbers[1])
    }

    @Test func dryRunDecidesWithoutCounting() throws {
        let f = try Fixture()
        try f.agent("a1", numbers: ["+1 202 555 0101"], limit: 1)
        let before = f.log.records.count
        let dry = try f.authorize("a1", "+1 212 555 0199", dryRun: true)
        #expect(dry.isAllowed && dry.count == 0 && dry.ticket == nil)
        #expect(f.log.records.count == before)
        #expect(try f.authorize("a1", "+1 212 555 0199").isAllowed)
        #expect(try f.authorize("a1", "+1 212 555 0199", dryRun: true).denyReason == .dailyLimitReached)
    }

    // MARK: - Caller-ID selection

    @Test func prefersLocalPresenceCountryThenAreaCode() throws {
        let f = try Fixture()
        let n = try f.agent(
            "a1",
            numbers: ["+44 20 7946 0001", "+1 202 555 0101", "+1 415 555 0102"],
            countries: ["US", "GB", "CA"]
        )
        #expect(try f.authorize("a1", "+1 415 555 0199").callerID == n[2])  // same area code
        #expect(try f.authorize("a1", "+44 161 496 0000").callerID == n[0])  // same country
        // Canada: no local number, so the most remaining capacity wins (the GB number has used 1 of 100).
        let ca = try f.authorize("a1", "+1 416 555 0100")
        #expect(ca.callerID == n[1])
    }

    @Test func prefersMostRemainingThenRotates() throws {
        let f = try Fixture()
        let n = try f.agent("a1", numbers: ["+1 202 555 0101", "+1 202 555 0102", "+1 202 555 0103"], limit: 10)
        // All tie: rotation in assignment order, then round and round.
        var picks: [PhoneNumber] = []
        for _ in 0..<6 { picks.append(try f.authorize("a1", "+1 202 555 0199").callerID!) }
        #expect(picks == [n[0], n[1], n[2], n[0], n[1], n[2]])
        // A number with more remaining wins regardless of rotation.
        try f.org.resetCounters([n[2]], actor: admin)
        #expect(try f.authorize("a1", "+1 202 555 0199").callerID == n[2])
    }

    @Test func skipsIneligibleNumbers() throws {
        let f = try Fixture()
        let n = try f.agent("a1", numbers: ["+1 202 555 0101", "+1 202 555 0102"], limit: 1)
        #expect(try f.authorize("a1", "+1 202 555 0199").callerID == n[0])
        #expect(try f.authorize("a1", "+1 202 555 0199").callerID == n[1])
        #expect(try f.authorize("a1", "+1 202 555 0199").denyReason == .dailyLimitReached)
    }

    @Test func denyReasonPriorityWhenNothingIsEligible() throws {
        let f = try Fixture()
        let n = try f.agent("a1", numbers: ["+1 202 555 0101", "+1 202 555 0102"], limit: 1)
        try f.org.updateNumber(n[0], NumberUpdate(status: .inactive), actor: admin)
        // One inactive, one active: GB is not allowed on the active one.
        #expect(try f.authorize("a1", "+44 20 7946 0000").denyReason == .countryNotAllowed)
        #expect(try f.authorize("a1", "+1 202 555 0199").isAllowed)
        let limited = try f.authorize("a1", "+1 202 555 0199")
        #expect(limited.denyReason == .dailyLimitReached && limited.callerID == n[1])
        try f.org.updateNumber(n[1], NumberUpdate(status: .inactive), actor: admin)
        #expect(try f.authorize("a1", "+1 202 555 0199").denyReason == .numberInactive)
    }

    @Test func selectionIsDeterministicForAGivenState() throws {
        func run() throws -> [PhoneNumber?] {
            let f = try Fixture()
            try f.agent(
                "a1",
                numbers: ["+1 202 555 0101", "+1 415 555 0102", "+1 212 555 0103", "+44 20 7946 0001"],
                limit: 3,
                countries: ["US", "GB"]
            )
            var picks: [PhoneNumber?] = []
            for dest in [
                "+1 415 555 0199", "+1 305 555 0199", "+44 20 7946 0999", "+1 415 555 0199", "+1 202 555 0199",
            ] {
                for _ in 0..<3 { picks.append(try f.authorize("a1", dest).callerID) }
            }
            return picks
        }
        #expect(try run() == run())
    }

    // MARK: - Days and counters

    @Test func counterResetsAtLocalMidnightAcrossDST() throws {
        // Saturday 2026-10-31 in New York; the next day lasts 25 hours.
        let f = try Fixture(now: utc(2026, 10, 31, 20))
        try f.agent("a1", numbers: ["+1 202 555 0101"], limit: 1)
        #expect(try f.authorize("a1", "+1 212 555 0199").isAllowed)
        #expect(try f.authorize("a1", "+1 212 555 0199").denyReason == .dailyLimitReached)
        // 23:59:59 EDT: still Saturday.
        f.clock.set(utc(2026, 11, 1, 3, 59, 59))
        #expect(try f.authorize("a1", "+1 212 555 0199").denyReason == .dailyLimitReached)
        // Midnight EDT on Sunday: a new day, which ends at midnight EST (05:00 UTC Monday).
        f.clock.set(utc(2026, 11, 1, 4))
        let sunday = try f.authorize("a1", "+1 212 555 0199")
        #expect(sunday.isAllowed && sunday.count == 1)
        #expect(sunday.resetsAt == utc(2026, 11, 2, 5))
        // 04:30 UTC Monday is still Sunday 23:30 EST.
        f.clock.set(utc(2026, 11, 2, 4, 30))
        #expect(try f.authorize("a1", "+1 212 555 0199").denyReason == .dailyLimitReached)
        f.clock.set(utc(2026, 11, 2, 5))
        #expect(try f.authorize("a1", "+1 212 555 0199").isAllowed)
    }

    @Test func reassigningTheSameDayKeepsTheNumbersCount() throws {
        let f = try Fixture()
        let n = try f.agent("a1", numbers: ["+1 202 555 0101"], limit: 2)
        try f.org.upsertAgent(AgentInput(id: "a2"), actor: admin)
        #expect(try f.authorize("a1", "+1 212 555 0199").isAllowed)
        #expect(try f.authorize("a1", "+1 212 555 0199").isAllowed)
        try f.org.release(n[0], actor: admin)
        try f.org.assign(n[0], to: "a2", terms: AssignmentTerms(dailyLimit: 2), actor: admin)
        let d = try f.authorize("a2", "+1 212 555 0199")
        #expect(d.denyReason == .dailyLimitReached && d.count == 2)
        // A higher limit on the new assignment lets it go on from the number's count.
        try f.org.updateAssignment(n[0], dailyLimit: 3, actor: admin)
        let third = try f.authorize("a2", "+1 212 555 0199")
        #expect(third.isAllowed && third.count == 3)
        // The next day it starts from zero.
        f.clock.advance(seconds: 86_400)
        #expect(try f.authorize("a2", "+1 212 555 0199").count == 1)
    }

    @Test func adminResetCounters() throws {
        let f = try Fixture()
        let n = try f.agent("a1", numbers: ["+1 202 555 0101"], limit: 1)
        #expect(try f.authorize("a1", "+1 212 555 0199").isAllowed)
        #expect(try f.authorize("a1", "+1 212 555 0199").denyReason == .dailyLimitReached)
        #expect(try f.org.resetCounters(actor: admin) == 1)
        #expect(try f.authorize("a1", "+1 212 555 0199").isAllowed)
        guard
            case .countersReset(let numbers, _)? = f.log.records.last(where: { $0.event.action == "counters.reset" })?
                .event
        else {
            Issue.record("reset not recorded")
            return
        }
        #expect(numbers == n)
        #expect(throws: CallgateError.self) { try f.org.resetCounters([num("+1 202 555 0999")], actor: admin) }
    }

    @Test func failedSinkCountsNothing() throws {
        let f = try Fixture()
        try f.agent("a1", numbers: ["+1 202 555 0101"], limit: 1)
        f.log.failAll(with: CallgateError(.unavailable, "store failed"))
        #expect(throws: CallgateError(.unavailable, "store failed")) { try f.authorize("a1", "+1 212 555 0199") }
        // Reads and dry runs keep working; nothing was counted.
        #expect(try f.authorize("a1", "+1 212 555 0199", dryRun: true).count == 0)
        f.log.failAll(with: nil)
        #expect(try f.authorize("a1", "+1 212 555 0199").isAllowed)
    }

    @Test func aClockSteppedBackNeverMovesACounterToAnEarlierDay() throws {
        let f = try Fixture()
        try f.agent("a1", numbers: ["+1 202 555 0101"], limit: 2)
        f.clock.set(utc(2026, 6, 16, 4))  // first instant of the next local day
        #expect(try f.authorize("a1", "+1 212 555 0199").count == 1)
        f.clock.set(utc(2026, 6, 16, 3, 59, 59))  // the wall clock steps back one second
        let d = try f.authorize("a1", "+1 212 555 0199")
        #expect(d.count == 2)
        #expect(try f.authorize("a1", "+1 212 555 0199").denyReason == .dailyLimitReached)
        guard case .counter(_, let dayKey, let count)? = f.log.records.last(where: { $0.actor == nil })?.event else {
            Issue.record("no counter change")
            return
        }
        #expect(dayKey == utc(2026, 6, 17, 4).seconds && count == 2)
    }
}
