import Testing

@testable import CallgateCore

@Suite struct OrganizationDayTests {
    @Test func ordinaryDayInNewYork() throws {
        let day = try OrganizationDay(timeZoneIdentifier: "America/New_York")
        // 2026-06-15 15:00 UTC is 11:00 EDT (UTC-4).
        let window = day.window(containing: utc(2026, 6, 15, 15))
        #expect(window.start == utc(2026, 6, 15, 4))
        #expect(window.end == utc(2026, 6, 16, 4))
        #expect(day.localDate(of: window) == "2026-06-15")
    }

    @Test func springForwardDayLasts23Hours() throws {
        let day = try OrganizationDay(timeZoneIdentifier: "America/New_York")
        // 2026-03-08: clocks go from 02:00 EST to 03:00 EDT.
        let window = day.window(containing: utc(2026, 3, 8, 12))
        #expect(window.start == utc(2026, 3, 8, 5))
        #expect(window.end == utc(2026, 3, 9, 4))
        #expect(window.end.seconds - window.start.seconds == 23 * 3600)
    }

    @Test func fallBackDayLasts25Hours() throws {
        let day = try OrganizationDay(timeZoneIdentifier: "America/New_York")
        // 2026-11-01: clocks go from 02:00 EDT back to 01:00 EST.
        let window = day.window(containing: utc(2026, 11, 1, 12))
        #expect(window.start == utc(2026, 11, 1, 4))
        #expect(window.end == utc(2026, 11, 2, 5))
        #expect(window.end.seconds - window.start.seconds == 25 * 3600)
    }

    @Test func boundariesAreExact() throws {
        let day = try OrganizationDay(timeZoneIdentifier: "Europe/Paris")
        let midnight = utc(2026, 7, 1, 22)  // 00:00 CEST on 2026-07-02
        let before = day.window(containing: midnight.adding(milliseconds: -1))
        let after = day.window(containing: midnight)
        #expect(before.end == midnight)
        #expect(after.start == midnight)
        #expect(day.localDate(of: before) == "2026-07-01")
        #expect(day.localDate(of: after) == "2026-07-02")
        // The cache is refreshed when time moves back, too.
        #expect(day.window(containing: midnight.adding(milliseconds: -1)) == before)
    }

    @Test func zoneWithoutMidnightOnDSTDay() throws {
        // America/Santiago springs forward at 24:00 -> 01:00 (2026-09-06), so that day starts at 01:00.
        let day = try OrganizationDay(timeZoneIdentifier: "America/Santiago")
        let window = day.window(containing: utc(2026, 9, 6, 18))
        #expect(window.end.seconds - window.start.seconds == 23 * 3600)
        #expect(window.contains(utc(2026, 9, 6, 18)))
    }

    @Test func unknownZoneIsAnError() {
        #expect(throws: CallgateError.self) { try OrganizationDay(timeZoneIdentifier: "Mars/Olympus_Mons") }
    }

    @Test func iso8601() {
        #expect(utc(2026, 11, 21, 19, 3, 20).iso8601 == "2026-11-21T19:03:20Z")
        #expect(utc(1969, 12, 31, 23, 59, 59).iso8601 == "1969-12-31T23:59:59Z")
    }
}
