import Testing

@testable import CallgateCore

@Suite struct SearchTests {
    /// A pool over several countries and lengths, some numbers assigned, reserved or inactive.
    func fixture() throws -> Fixture {
        let f = try Fixture()
        let numbers: [(String, String, String, [String], Capabilities, NumberStatus)] = [
            ("+14155550100", "telnyx", "San Francisco", ["west"], [.voice], .active),
            ("+14155550199", "twilio", "San Francisco", ["west", "sales"], [.voice, .sms], .active),
            ("+14155551000", "telnyx", "Oakland", [], [.voice], .inactive),
            ("+12125550100", "telnyx", "New York", ["east"], [.voice, .sms], .active),
            ("+12125550000", "twilio", "New York", ["east"], [.voice], .active),
            ("+14165550100", "telnyx", "Toronto", [], [.voice], .active),
            ("+442079460000", "bt", "London", ["uk"], [.voice], .active),
            ("+441415555010", "bt", "Glasgow", [], [.voice], .active),
            ("+61291234567", "telstra", "Sydney", [], [.voice], .active),
        ]
        for (number, provider, location, tags, capabilities, status) in numbers {
            try f.org.addNumber(
                NumberInput(
                    number: num(number),
                    provider: provider,
                    capabilities: capabilities,
                    status: status,
                    location: location,
                    tags: tags
                ),
                actor: admin
            )
        }
        try f.org.upsertAgent(AgentInput(id: "jdoe", displayName: "Jane Doe"), actor: admin)
        try f.org.upsertAgent(AgentInput(id: "rsmith", displayName: "Robert Smith"), actor: admin)
        try f.org.assign(num("+12125550100"), to: "jdoe", actor: admin)
        _ = try f.org.pickNumber(
            NumberCriteria(pattern: "+1212???0000"),
            mode: .reserve(seconds: 600, agent: "rsmith"),
            actor: admin
        )
        return f
    }

    func list(
        _ f: Fixture,
        _ criteria: NumberCriteria,
        state: String? = nil,
        status: NumberStatus? = nil
    )
        throws -> [String]
    {
        try f.org.listNumbers(NumberFilter(criteria: criteria, status: status, state: state), limit: 1000).items
            .map(\.number.e164)
    }

    @Test func digitFilters() throws {
        let f = try fixture()
        #expect(try list(f, NumberCriteria(areaCode: "415")) == ["+14155550100", "+14155550199", "+14155551000"])
        #expect(try list(f, NumberCriteria(areaCode: "(212)")) == ["+12125550000", "+12125550100"])
        // The prefix also finds longer numbers starting with the same digits.
        #expect(try list(f, NumberCriteria(prefix: "+44")) == ["+441415555010", "+442079460000"])
        #expect(try list(f, NumberCriteria(prefix: "1415")) == ["+14155550100", "+14155550199", "+14155551000"])
        #expect(try list(f, NumberCriteria(pattern: "+1415???01??")) == ["+14155550100", "+14155550199"])
        #expect(try list(f, NumberCriteria(pattern: "+1 415 XXX 0100")) == ["+14155550100"])
        #expect(try list(f, NumberCriteria(pattern: "*0000")) == ["+12125550000", "+442079460000"])
        #expect(try list(f, NumberCriteria(pattern: "+1*0100")) == ["+12125550100", "+14155550100", "+14165550100"])
        #expect(
            try list(f, NumberCriteria(pattern: "*415555*")) == [
                "+14155550100", "+14155550199", "+14155551000", "+441415555010",
            ]
        )
        #expect(try list(f, NumberCriteria(prefix: "1", pattern: "*99")) == ["+14155550199"])
        #expect(try list(f, NumberCriteria(prefix: "1212", areaCode: "415")) == [])
    }

    @Test func textFindsDigitsAgentsLocationsAndTags() throws {
        let f = try fixture()
        #expect(
            try list(f, NumberCriteria(text: "(415) 555-01")) == ["+14155550100", "+14155550199", "+441415555010"]
        )
        #expect(try list(f, NumberCriteria(text: "JDOE")) == ["+12125550100"])
        #expect(try list(f, NumberCriteria(text: "jane")) == ["+12125550100"])
        // A reserved number matches the agent it is reserved for.
        #expect(try list(f, NumberCriteria(text: "robert")) == ["+12125550000"])
        #expect(try list(f, NumberCriteria(text: "toron")) == ["+14165550100"])
        #expect(try list(f, NumberCriteria(text: "SALES")) == ["+14155550199"])
        #expect(try list(f, NumberCriteria(text: "telstra")) == ["+61291234567"])
    }

    @Test func otherFilters() throws {
        let f = try fixture()
        #expect(try list(f, NumberCriteria(country: country("CA"))) == ["+14165550100"])
        #expect(try list(f, NumberCriteria(provider: "TWILIO")) == ["+12125550000", "+14155550199"])
        #expect(try list(f, NumberCriteria(capabilities: .sms)) == ["+12125550100", "+14155550199"])
        #expect(try list(f, NumberCriteria(tag: "East")) == ["+12125550000", "+12125550100"])
        #expect(try list(f, NumberCriteria(areaCode: "415"), status: .inactive) == ["+14155551000"])
        #expect(try list(f, NumberCriteria(), state: "assigned") == ["+12125550100"])
        #expect(try list(f, NumberCriteria(), state: "reserved") == ["+12125550000"])
        #expect(try list(f, NumberCriteria(areaCode: "212"), state: "available") == [])
        let mine = try f.org.listNumbers(NumberFilter(agent: "jdoe")).items.map(\.number.e164)
        #expect(mine == ["+12125550100"])
    }

    @Test func badCriteriaAreInvalidArguments() throws {
        let f = try fixture()
        for criteria in [
            NumberCriteria(areaCode: "41"), NumberCriteria(areaCode: "115"), NumberCriteria(areaCode: "4a5"),
            NumberCriteria(pattern: "+1415#"), NumberCriteria(pattern: "+"),
            NumberCriteria(pattern: "1234567890123456"),
        ] {
            #expect(throws: CallgateError.self) { try f.org.listNumbers(NumberFilter(criteria: criteria)) }
        }
    }

    @Test func pickUsesTheDigitFilters() throws {
        let f = try fixture()
        let picked = try f.org.pickNumber(
            NumberCriteria(areaCode: "415", pattern: "*99"),
            mode: .reserve(seconds: 60),
            actor: admin
        )
        #expect(picked.number.number == num("+14155550199"))
        // The inactive +1 415 555 1000 is never picked; the other two are taken.
        _ = try f.org.pickNumber(NumberCriteria(areaCode: "415"), mode: .reserve(seconds: 60), actor: admin)
        #expect(throws: CallgateError.self) {
            try f.org.pickNumber(NumberCriteria(areaCode: "415"), mode: .reserve(seconds: 60), actor: admin)
        }
    }

    /// Paging with and without filters returns exactly the brute-force answer, in order, while numbers
    /// are added and deleted between pages.
    @Test func pagingMatchesBruteForce() throws {
        let f = try Fixture()
        var rng = SystemRandomNumberGenerator()
        var all: [PhoneNumber] = []
        var csv = ""
        for _ in 0..<3000 {
            let area = [212, 415, 416, 646][Int.random(in: 0..<4, using: &rng)]
            let n = PhoneNumber(
                digits: 10_000_000_000 + UInt64(area) * 10_000_000 + UInt64.random(in: 2_000_000..<2_100_000)
            )!
            csv += "\(n.e164),telnyx\n"
            all.append(n)
        }
        _ = try f.org.importNumbers(csv: csv, actor: admin)
        var expected = Set(all)
        // Add some out of order one by one, delete some.
        var xs: [PhoneNumber] = []
        for i in 0..<50 {
            let n = num("+1415200\(1000 + i)")
            if (try? f.org.addNumber(NumberInput(number: n, provider: "x"), actor: admin)) != nil { xs.append(n) }
        }
        for i in 0..<50 { expected.insert(num("+1415200\(1000 + i)")) }
        let doomed = Array(expected.sorted().prefix(40))
        try f.org.deleteNumbers(doomed, actor: admin)
        expected.subtract(doomed)

        let cases: [(NumberCriteria, (PhoneNumber) -> Bool)] = [
            (NumberCriteria(), { (_: PhoneNumber) in true }),
            (NumberCriteria(areaCode: "415"), { (n: PhoneNumber) in n.nanpAreaCode == 415 }),
            (NumberCriteria(prefix: "1646"), { (n: PhoneNumber) in n.nanpAreaCode == 646 }),
            (NumberCriteria(pattern: "+1416*5"), { (n: PhoneNumber) in n.nanpAreaCode == 416 && n.digits % 10 == 5 }),
        ]
        for (criteria, keep) in cases {
            var seen: [PhoneNumber] = []
            var cursor: String?
            repeat {
                let page = try f.org.listNumbers(NumberFilter(criteria: criteria), cursor: cursor, limit: 97)
                #expect(page.items.count <= 97)
                seen += page.items.map(\.number)
                cursor = page.nextCursor
            } while cursor != nil
            #expect(seen == expected.filter(keep).sorted())
        }

        // A filter that matches rarely, with a small scan budget: short (even empty) pages with a
        // cursor, and together exactly the matches.
        var seen: [PhoneNumber] = []
        var cursor: String?
        var pages = 0
        repeat {
            let page = try f.org.listNumbers(
                NumberFilter(criteria: NumberCriteria(provider: "x")),
                cursor: cursor,
                limit: 7,
                budget: 101
            )
            #expect(page.items.count <= 7)
            seen += page.items.map(\.number)
            cursor = page.nextCursor
            pages += 1
        } while cursor != nil
        #expect(seen == xs.filter { !doomed.contains($0) })
        #expect(pages > expected.count / 101)
    }

    @Test func digitRanges() {
        #expect(NumberMatcher.ranges(prefix: 1415, digits: 4, lengths: 11...11) == [14_150_000_000...14_159_999_999])
        #expect(NumberMatcher.ranges(prefix: 44, digits: 2, lengths: 2...4) == [44...44, 440...449, 4400...4499])
        #expect(NumberMatcher.ranges(prefix: 0, digits: 0, lengths: 2...2) == [10...99])
        #expect(NumberMatcher.ranges(prefix: 0, digits: 1, lengths: 1...3) == [])
        #expect(
            NumberMatcher.intersect([1...10, 20...30], [5...25, 28...40]) == [5...10, 20...25, 28...30]
        )
    }

    @Test(arguments: [
        ("+1415???0000", "+14155550000", true), ("+1415???0000", "+14155550001", false),
        ("+1415???0000", "+441415550000", false), ("*", "+14155550000", true), ("+1*", "+442079460000", false),
        ("*0000", "+442079460000", true), ("+44*0*0", "+442079460000", true), ("+44*1*0", "+442079460000", false),
        ("??????????????", "+14155550000", false), ("+1?????????*", "+14155550000", true),
    ])
    func patterns(pattern: String, number: String, matches: Bool) throws {
        #expect(NumberMatcher.glob(try NumberMatcher.compile(pattern), num(number)) == matches)
    }
}
