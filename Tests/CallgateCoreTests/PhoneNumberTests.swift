import Testing

@testable import CallgateCore

@Suite struct PhoneNumberTests {
    @Test(
        arguments: [
            ("+1 202-555-0123", nil, 12_025_550_123),
            ("tel:+12025550123", nil, 12_025_550_123),
            ("TEL:+1-202-555-0123;ext=12", nil, 12_025_550_123),
            ("(202) 555 0123", "US", 12_025_550_123),
            ("1 (202) 555-0123", "US", 12_025_550_123),
            ("202.555.0123", "US", 12_025_550_123),
            ("+44 (0)20 7946 0000", nil, 442_079_460_000),
            ("020 7946 0000", "GB", 442_079_460_000),
            ("0044 20 7946 0000", nil, 442_079_460_000),
            ("011 44 20 7946 0000", "US", 442_079_460_000),
            ("+1\u{00A0}416 555 0100", nil, 14_165_550_100),
        ] as [(String, String?, UInt64)]
    )
    func parsesWhatPeoplePaste(text: String, region: String?, digits: UInt64) throws {
        let number = try PhoneNumber.parse(text, defaultRegion: region.map { Country(code: $0)! })
        #expect(number.digits == digits)
        #expect(number.e164 == "+\(digits)")
    }

    @Test(
        arguments: [
            ("", PhoneNumberError.empty),
            (" - ", .empty),
            ("+1 202 CALL NOW", .unexpectedCharacter("C")),
            ("2025550123", .missingCountryCode),
            ("+1 202 555", .impossibleLength(callingCode: 1, nationalDigits: 6)),
            ("+1 202 555 01234", .impossibleLength(callingCode: 1, nationalDigits: 11)),
            ("+0 123 456 789", .unknownCountryCode),
            ("+1234567890123456789", .tooLong),
            ("+1 202 +555 0123", .unexpectedCharacter("+")),
        ] as [(String, PhoneNumberError)]
    )
    func rejectsImpossibleNumbersWithAReason(text: String, expected: PhoneNumberError) {
        #expect(throws: expected) { try PhoneNumber.parse(text) }
    }

    @Test func descriptionIsRedacted() throws {
        let number = try PhoneNumber.parse("+12025550123")
        #expect(!"\(number)".contains("5550123"))
        #expect(!"\(number)".contains("2025550"))
        #expect("\(number)".hasPrefix("+1"))
        #expect("\(number)".hasSuffix("123"))
        let error = CallgateError(.notFound, "number \(number) is not here")
        #expect(!error.description.contains("5550123"))
    }

    @Test func nanpAreaCode() throws {
        #expect(try PhoneNumber.parse("+1 415 555 0100").nanpAreaCode == 415)
        #expect(try PhoneNumber.parse("+44 20 7946 0000").nanpAreaCode == nil)
    }

    @Test func errorsReadWell() {
        #expect(PhoneNumberError.missingCountryCode.description.contains("country code"))
        #expect(PhoneNumberError.impossibleLength(callingCode: 44, nationalDigits: 3).description.contains("+44"))
    }
}
