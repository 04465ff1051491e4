/// An E.164 phone number, stored as its digits in one `UInt64`.
///
/// `+12025550123` is stored as `12_025_550_123`. E.164 numbers never start with `0` and have at most
/// 15 digits, so the integer is unambiguous and comparisons, hashing and copies cost one machine word.
///
/// - Important: Phone numbers are personal data. ``description`` is redacted (`+1•••••••123`), so
///   string interpolation in logs and error messages never leaks a whole number; use ``e164`` where
///   the full number is really wanted (wire replies, storage).
public struct PhoneNumber: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The digits of the number (country calling code and national number) as an integer.
    public let digits: UInt64

    /// The largest number of digits E.164 allows.
    public static let maximumDigitCount = 15

    /// Wraps already-validated E.164 digits. Use ``parse(_:defaultRegion:)`` for user input.
    ///
    /// - Returns: `nil` when `digits` is zero or longer than 15 digits.
    @inlinable
    public init?(digits: UInt64) {
        guard digits > 0, digits < 1_000_000_000_000_000 else { return nil }  // at most 15 digits
        self.digits = digits
    }

    /// The number of decimal digits.
    @inlinable
    public var digitCount: Int {
        // Compare against powers of ten: no division. Most numbers have 10 to 13 digits.
        var count = 10
        if self.digits < 1_000_000_000 {
            count = 1
            while count < 9 && self.digits >= pow10(count) { count += 1 }
            return count
        }
        while count < 19 && self.digits >= pow10(count) { count += 1 }
        return count
    }

    /// The full number, `+` and digits: `+12025550123`.
    public var e164: String { "+" + String(self.digits) }

    /// A redacted form safe for logs: the calling code's first digit(s) and the last three digits.
    public var description: String {
        let full = String(self.digits)
        let keep = min(3, max(0, full.count - 4))
        let head = full.prefix(full.hasPrefix("1") || full.hasPrefix("7") ? 1 : 2)
        let hidden = full.count - head.count - keep
        return "+" + head + String(repeating: "•", count: max(hidden, 0)) + full.suffix(keep)
    }

    /// The country calling code (`1`, `44`, `380`, …), when the number starts with a known one.
    public var callingCode: UInt16? { CountryTable.callingCode(ofDigits: self.digits, digitCount: self.digitCount) }

    /// The North American area code (the three digits after `+1`), or `nil` outside NANP.
    @inlinable
    public var nanpAreaCode: UInt16? {
        // +1 NPA NXX XXXX: exactly 11 digits starting with 1.
        guard self.digits >= 10_000_000_000, self.digits < 20_000_000_000 else { return nil }
        return UInt16((self.digits / 10_000_000) % 1000)
    }

    public static func < (lhs: PhoneNumber, rhs: PhoneNumber) -> Bool { lhs.digits < rhs.digits }
}

/// Why a piece of text is not a possible phone number.
public enum PhoneNumberError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Nothing but blanks and punctuation.
    case empty
    /// A character that has no place in a phone number (letters, `*`, …).
    case unexpectedCharacter(Character)
    /// No `+` or international prefix and no default region to take a country code from.
    case missingCountryCode
    /// The leading digits are no assigned country calling code.
    case unknownCountryCode
    /// Too few or too many digits for the country code.
    case impossibleLength(callingCode: UInt16, nationalDigits: Int)
    /// More than 15 digits.
    case tooLong
    /// The default region given for national input is not a known region.
    case unknownRegion(String)

    public var description: String {
        switch self {
        case .empty:
            return "no digits in the phone number"
        case .unexpectedCharacter(let c):
            return "unexpected character '\(c)' in the phone number"
        case .missingCountryCode:
            return "the phone number has no country code: start it with + (or 00) or give a default region"
        case .unknownCountryCode:
            return "the phone number does not start with an assigned country calling code"
        case .impossibleLength(let cc, let n):
            return "a number with country code +\(cc) cannot have \(n) national digits"
        case .tooLong:
            return "a phone number has at most 15 digits"
        case .unknownRegion(let region):
            return "unknown region '\(region)' (expected an ISO 3166 alpha-2 code such as US)"
        }
    }
}

extension PhoneNumber {
    /// Parses what people paste into an E.164 number.
    ///
    /// Accepts `+1 202-555-0123`, `tel:+12025550123`, `+44 (0)20 7946 0000`, `0044 20 7946 0000`, and
    /// national forms such as `(202) 555 0123` or `020 7946 0000` when `defaultRegion` says which country
    /// they are in (the region's trunk prefix, `0` or `1`, is dropped). Blanks, `-`, `.`, `/` and
    /// parentheses are ignored; anything after `;` in a `tel:` URI (parameters) is ignored.
    ///
    /// The number must be *possible*: a known calling code and a national length that some region of that
    /// code uses. It need not be assigned to a subscriber.
    ///
    /// - Throws: ``PhoneNumberError`` with the reason.
    public static func parse(_ text: String, defaultRegion: Country? = nil) throws(PhoneNumberError) -> PhoneNumber {
        // What dialers send: canonical E.164, "+" and digits only. One pass over the UTF-8 bytes.
        if let canonical = Self.canonicalDigits(text) {
            guard let number = PhoneNumber(digits: canonical.digits), number.digitCount == canonical.count else {
                throw .unknownCountryCode
            }
            try number.validatePossible()
            return number
        }
        var input = Substring(text)
        if input.utf8.count >= 4, input.prefix(4).lowercased() == "tel:" {
            input = input.dropFirst(4)
        }
        if let semicolon = input.firstIndex(of: ";") {
            input = input[..<semicolon]
        }

        var digits: UInt64 = 0
        var count = 0
        var sawPlus = false
        var sawDigit = false
        // "+44 (0)20…": a "(0)" right after the country code is a trunk prefix to drop.
        var parenthesisStartCount = -1
        for ch in input.unicodeScalars {
            switch ch {
            case "0"..."9":
                if count == PhoneNumber.maximumDigitCount + 4 { throw .tooLong }
                digits = digits * 10 + UInt64(ch.value - 48)
                count += 1
                sawDigit = true
            case "+":
                if sawPlus || sawDigit { throw .unexpectedCharacter("+") }
                sawPlus = true
            case "(":
                parenthesisStartCount = count
            case ")":
                if sawPlus, parenthesisStartCount >= 1, count == parenthesisStartCount + 1, digits % 10 == 0 {
                    digits /= 10
                    count -= 1
                }
                parenthesisStartCount = -1
            case " ", "-", ".", "/", "\u{00A0}", "\t":
                continue
            default:
                throw .unexpectedCharacter(Character(ch))
            }
        }
        guard count > 0 else { throw .empty }

        if !sawPlus {
            if let region = defaultRegion, region.isNANP, count >= 4, digits / pow10(count - 3) == 11 {
                // NANP international prefix 011.
                digits %= pow10(count - 3)
                count -= 3
            } else if let region = defaultRegion, region.isNANP == false, count >= 3, digits / pow10(count - 2) == 0 {
                // "00" international prefix outside NANP.
                count -= 2
                digits = digits % pow10(count)
            } else if defaultRegion == nil, count >= 3, digits / pow10(count - 2) == 0 {
                count -= 2
                digits = digits % pow10(count)
            } else if let region = defaultRegion {
                (digits, count) = try nationalToInternational(digits: digits, count: count, region: region)
            } else {
                throw .missingCountryCode
            }
        }
        guard count <= PhoneNumber.maximumDigitCount else { throw .tooLong }
        guard let number = PhoneNumber(digits: digits), number.digitCount == count else { throw .unknownCountryCode }
        try number.validatePossible()
        return number
    }

    /// The digits of `+` followed by 1…15 ASCII digits (no leading zero), or `nil` for any other text.
    @inline(__always)
    static func canonicalDigits(_ text: String) -> (digits: UInt64, count: Int)? {
        var utf8 = text.utf8.makeIterator()
        guard utf8.next() == UInt8(ascii: "+") else { return nil }
        var digits: UInt64 = 0
        var count = 0
        while let byte = utf8.next() {
            let value = byte &- UInt8(ascii: "0")
            guard value < 10, count < PhoneNumber.maximumDigitCount, count > 0 || value != 0 else { return nil }
            digits = digits &* 10 &+ UInt64(value)
            count += 1
        }
        return count > 0 ? (digits, count) : nil
    }

    /// Checks that the number has a known calling code and a possible national length.
    public func validatePossible() throws(PhoneNumberError) {
        let count = self.digitCount
        guard let cc = CountryTable.callingCode(ofDigits: self.digits, digitCount: count) else {
            throw .unknownCountryCode
        }
        let national = count - (cc >= 100 ? 3 : cc >= 10 ? 2 : 1)
        guard CountryTable.isPossibleNationalLength(national, callingCode: cc) else {
            throw .impossibleLength(callingCode: cc, nationalDigits: national)
        }
    }

    private static func nationalToInternational(
        digits: UInt64,
        count: Int,
        region: Country
    ) throws(PhoneNumberError) -> (UInt64, Int) {
        let cc = region.callingCode
        let ccDigits = cc >= 100 ? 3 : cc >= 10 ? 2 : 1
        var national = digits
        var nationalCount = count
        // Drop the trunk prefix when the rest is a possible length ("020 7946 0000" -> "20 7946 0000",
        // "1 202 555 0123" -> "202 555 0123").
        if let trunk = region.trunkPrefixDigit, nationalCount > 1, national / pow10(nationalCount - 1) == trunk,
            CountryTable.isPossibleNationalLength(nationalCount - 1, callingCode: cc)
        {
            national %= pow10(nationalCount - 1)
            nationalCount -= 1
            // Zeros that stay in front (Italy keeps its 0) are kept by counting digits, not by the value.
        }
        // A number that already starts with the calling code and is too long to be national.
        if !CountryTable.isPossibleNationalLength(nationalCount, callingCode: cc),
            nationalCount > ccDigits, national / pow10(nationalCount - ccDigits) == UInt64(cc),
            CountryTable.isPossibleNationalLength(nationalCount - ccDigits, callingCode: cc)
        {
            return (national, nationalCount)
        }
        guard nationalCount + ccDigits <= PhoneNumber.maximumDigitCount else { throw .tooLong }
        return (UInt64(cc) * pow10(nationalCount) + national, nationalCount + ccDigits)
    }
}

/// 10^n for 0 ≤ n ≤ 19 (a switch compiles to a constant table: no global initialisation check).
@inlinable
func pow10(_ n: Int) -> UInt64 {
    switch n {
    case 0: return 1
    case 1: return 10
    case 2: return 100
    case 3: return 1000
    case 4: return 10_000
    case 5: return 100_000
    case 6: return 1_000_000
    case 7: return 10_000_000
    case 8: return 100_000_000
    case 9: return 1_000_000_000
    case 10: return 10_000_000_000
    case 11: return 100_000_000_000
    case 12: return 1_000_000_000_000
    case 13: return 10_000_000_000_000
    case 14: return 100_000_000_000_000
    case 15: return 1_000_000_000_000_000
    case 16: return 10_000_000_000_000_000
    case 17: return 100_000_000_000_000_000
    case 18: return 1_000_000_000_000_000_000
    default: return 10_000_000_000_000_000_000
    }
}
