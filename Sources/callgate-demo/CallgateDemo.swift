import CallgateCore

/// Drives the engine in process and prints its decisions: a tour of the product until the server lands.
@main
struct CallgateDemo {
    static func main() throws {
        // A manual clock so that the tour can cross a local midnight.
        let clock = ManualClock(Timestamp(seconds: 1_781_535_600))  // 2026-06-15 15:00 UTC
        let log = InMemoryChangeLog()
        let engine = Engine(clock: clock, changes: log)
        let admin = Actor("demo-admin")
        let org = try engine.createOrganization(name: "Acme Dialing", timeZone: "America/New_York", actor: admin)
        print(
            "Organization '\(org.name)' (\(org.day.timeZoneIdentifier)), table from libphonenumber \(CountryTable.metadataVersion)"
        )

        func number(_ text: String) throws -> PhoneNumber {
            try PhoneNumber.parse(text, defaultRegion: Country(code: "US"))
        }

        for (text, tags) in [
            ("+1 (415) 555-0101", ["west"]), ("tel:+12125550102", ["east"]), ("+44 20 7946 0103", ["uk"]),
        ] {
            let n = try number(text)
            try org.addNumber(NumberInput(number: n, provider: "telnyx", tags: tags), actor: admin)
            print("added \(n) in \(CountryTable.country(of: n)!) from '\(text)'")
        }
        try org.upsertAgent(AgentInput(id: "agent-7", displayName: "Ada"), actor: admin)
        let usCA = try CountrySet(codes: ["US", "CA"])
        for text in ["+1 415 555 0101", "+1 212 555 0102"] {
            try org.assign(
                try number(text),
                to: "agent-7",
                terms: AssignmentTerms(dailyLimit: 3, allowedCountries: usCA),
                actor: admin
            )
        }
        print("assigned 2 numbers to agent-7: limit 3 per day each, countries \(usCA)\n")

        func authorize(_ destination: String, agent: String = "agent-7") throws {
            let d = try org.authorizeCall(agent: agent, destination: try number(destination))
            let verdict = d.denyReason.map { "DENY  \($0)" } ?? "ALLOW"
            let from = d.callerID.map(\.description) ?? "-"
            print(
                "  \(agent) -> \(destination): \(verdict)  caller-ID \(from)  \(d.count)/\(d.limit)  resets \(d.resetsAt.iso8601)"
            )
        }

        print("Local presence: a San Francisco destination gets the 415 number, New York the 212 one")
        try authorize("+1 415 555 0199")
        try authorize("+1 212 555 0199")
        print("Until the limit denies:")
        for _ in 0..<5 { try authorize("+1 305 555 0199") }
        print("Other reasons:")
        try authorize("+44 20 7946 0999")
        try authorize("+1 305 555 0199", agent: "agent-9")
        print("\nAfter local midnight in New York the counters start again:")
        clock.set(Timestamp(seconds: 1_781_582_400))  // 2026-06-16 04:00 UTC = 00:00 EDT
        try authorize("+1 305 555 0199")

        let picked = try org.pickNumber(NumberCriteria(tag: "uk"), mode: .reserve(seconds: 300), actor: admin)
        print("\nPickNumber(tag uk) reserved \(picked.number.number) until \(picked.reservation!.expiresAt.iso8601)")
        print(
            "\(log.records.count) changes recorded for the store (\(log.records.compactMap(\.event.action).count) audited)"
        )
    }
}
