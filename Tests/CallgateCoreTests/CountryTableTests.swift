import Foundation
import Testing

@testable import CallgateCore

@Suite struct CountryTableTests {
    /// `Resources/country-sample.csv`: valid numbers of every region with libphonenumber's
    /// `region_code_for_number`, made by `scripts/generate-country-table.py`.
    static func sample() throws -> [(PhoneNumber, String)] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Resources/country-sample.csv")
        let text = try String(contentsOf: url, encoding: .utf8)
        return try text.split(separator: "\n").dropFirst().map { line in
            let parts = line.split(separator: ",")
            let number = try #require(UInt64(parts[0].dropFirst()).flatMap(PhoneNumber.init(digits:)))
            return (number, String(parts[1]))
        }
    }

    @Test func agreesWithLibphonenumberOnTheSample() throws {
        let sample = try Self.sample()
        #expect(sample.count >= 20_000)
        var agree = 0
        var disagreements: [String] = []
        var regions = Set<String>()
        for (number, expected) in sample {
            regions.insert(expected)
            let got = CountryTable.country(of: number)?.code
            if got == expected {
                agree += 1
            } else if disagreements.count < 20 {
                disagreements.append("\(number.e164): \(expected) vs \(got ?? "none")")
            }
        }
        let share = Double(agree) / Double(sample.count)
        print(
            "country table: \(agree)/\(sample.count) agree (\(share * 100)%), \(regions.count) regions; first disagreements: \(disagreements)"
        )
        #expect(share >= 0.999)
        #expect(regions.count >= 200)
    }

    @Test func sampleNumbersAreAllPossible() throws {
        for (number, _) in try Self.sample() {
            #expect(throws: Never.self) { try number.validatePossible() }
        }
    }

    @Test(arguments: [
        ("+1 202 555 0123", "US"),
        ("+1 416 555 0100", "CA"),
        ("+1 876 555 0100", "JM"),
        ("+1 787 555 0100", "PR"),
        ("+7 495 123 4567", "RU"),
        ("+7 727 212 3456", "KZ"),
        ("+44 20 7946 0000", "GB"),
        ("+44 1481 256789", "GG"),
        ("+44 1534 456789", "JE"),
        ("+44 1624 756789", "IM"),
        ("+39 06 6982 1234", "VA"),
        ("+39 06 4567 8901", "IT"),
        ("+47 22 12 34 56", "NO"),
        ("+47 79 12 34 56", "SJ"),
        ("+61 2 9876 5432", "AU"),
        ("+262 269 61 23 45", "YT"),
        ("+262 262 16 12 34", "RE"),
        ("+590 590 20 12 34", "GP"),
        ("+590 590 27 12 34", "BL"),
        ("+61 8 9162 1234", "CC"),
        ("+61 8 9164 1234", "CX"),
        ("+599 9 461 2345", "CW"),
        ("+599 7 15 1234", "BQ"),
        ("+33 1 23 45 67 89", "FR"),
        ("+49 30 123456", "DE"),
        ("+800 1234 5678", "001"),
    ])
    /// Cases are libphonenumber's own answers (`region_code_for_number`) for valid numbers.
    func sharedCallingCodesResolveToTheRightCountry(text: String, code: String) throws {
        let number = try PhoneNumber.parse(text)
        #expect(CountryTable.country(of: number)?.code == code)
    }

    @Test func unassignedPrefixesHaveNoCountry() {
        #expect(CountryTable.country(ofDigits: 280_123_456, digitCount: 9) == nil)
        #expect(CountryTable.country(ofDigits: 0, digitCount: 1) == nil)
    }

    @Test func regionsRoundTrip() {
        for c in Country.all {
            #expect(Country(code: c.code) == c)
            #expect(Country(code: c.code.lowercased()) == c)
        }
        #expect(Country(code: "ZZ") == nil)
        #expect(Country(code: "US")?.callingCode == 1)
        #expect(Country(code: "GB")?.trunkPrefixDigit == 0)
    }

    @Test func countrySetIsABitset() {
        var set: CountrySet = [country("US"), country("GB")]
        #expect(set.contains(country("US")) && !set.contains(country("CA")))
        set.insert(country("ZW"))
        #expect(set.count == 3)
        #expect(set.codes == ["GB", "US", "ZW"])
        #expect(CountrySet(Country.all).count == Country.all.count)
    }
}
