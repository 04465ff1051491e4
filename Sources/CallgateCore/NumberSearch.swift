/// Criteria for PickNumber and for listing numbers. Every set field must match.
///
/// The digit filters (``prefix``, ``areaCode``, ``pattern``) narrow the search to ranges of the sorted
/// pool, so a page of such a listing costs a few binary searches plus the numbers in those ranges that
/// it looks at. The other filters test each number in turn: a listing whose filters match rarely scans
/// the pool (up to the whole of it for a page).
public struct NumberCriteria: Sendable, Hashable {
    public var country: Country?
    /// Leading digits of the E.164 number after `+`, e.g. `1415` (area code 415) or `4420`.
    public var prefix: String?
    /// A tag (pool, department, campaign) the number must carry; case-insensitive.
    public var tag: String?
    /// Substring of the location; case-insensitive.
    public var location: String?
    public var capabilities: Capabilities?
    /// Provider; case-insensitive.
    public var provider: String?
    /// Free text, case-insensitive, found in any of: the number's digits (`415555`, `+1 415-555`), the
    /// provider, the location, the tags, the number type, and the id or display name of the agent that
    /// holds the number (or that it is reserved for).
    public var text: String?
    /// A North American area code (`415`): numbers `+1 415 …`.
    public var areaCode: String?
    /// The whole number, digits and wildcards: `?` (or `x`) is one digit, `*` any number of digits
    /// (`+1415???0000`, `+1415*00`, `*0000`). Blanks, `-`, `.` and parentheses are ignored.
    public var pattern: String?

    public init(
        country: Country? = nil,
        prefix: String? = nil,
        tag: String? = nil,
        location: String? = nil,
        capabilities: Capabilities? = nil,
        provider: String? = nil,
        text: String? = nil,
        areaCode: String? = nil,
        pattern: String? = nil
    ) {
        self.country = country
        self.prefix = prefix
        self.tag = tag
        self.location = location
        self.capabilities = capabilities
        self.provider = provider
        self.text = text
        self.areaCode = areaCode
        self.pattern = pattern
    }

    /// Checks the fields and compiles them.
    func validated() throws(CallgateError) -> NumberMatcher {
        var m = NumberMatcher()
        m.country = self.country
        m.capabilities = self.capabilities
        m.tag = self.tag?.lowercased()
        m.location = self.location.map { Array($0.lowercased().utf8) }
        m.provider = self.provider?.lowercased()
        var ranges: [ClosedRange<UInt64>]?
        func narrow(_ more: [ClosedRange<UInt64>]) {
            ranges = ranges.map { NumberMatcher.intersect($0, more) } ?? more
        }
        if let prefix = self.prefix {
            let digits = prefix.filter { $0 != "+" && $0 != " " }
            guard !digits.isEmpty, digits.count <= 15, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
                let value = UInt64(digits)
            else {
                throw CallgateError(.invalidArgument, "prefix must be 1 to 15 digits, got '\(prefix)'")
            }
            m.prefix = digits
            narrow(NumberMatcher.ranges(prefix: value, digits: digits.count, lengths: digits.count...15))
        }
        if let areaCode = self.areaCode {
            let digits = areaCode.filter { !"() ".contains($0) }
            guard digits.count == 3, digits.allSatisfy({ $0.isASCII && $0.isNumber }), digits.first! >= "2",
                let value = UInt64(digits)
            else {
                throw CallgateError(
                    .invalidArgument,
                    "area code must be three digits, the first 2 to 9 (415), got '\(areaCode)'"
                )
            }
            m.areaCode = UInt16(value)
            narrow(NumberMatcher.ranges(prefix: 1000 + value, digits: 4, lengths: 11...11))
        }
        if let pattern = self.pattern {
            let tokens = try NumberMatcher.compile(pattern)
            m.pattern = tokens
            let literal = tokens.prefix { $0 < 10 }
            let fixed = tokens.filter { $0 != NumberMatcher.star }.count
            let value = literal.reduce(UInt64(0)) { $0 * 10 + UInt64($1) }
            let lengths = tokens.contains(NumberMatcher.star) ? max(fixed, 1)...15 : fixed...fixed
            narrow(NumberMatcher.ranges(prefix: value, digits: literal.count, lengths: lengths))
        }
        m.ranges = ranges
        if let text = self.text {
            m.text = Array(text.lowercased().utf8)
            // Phone-like text (`+1 (415) 555`) is also looked for in the digits.
            let stripped = text.filter { !"+-(). ".contains($0) }
            if !stripped.isEmpty, stripped.allSatisfy({ $0.isASCII && $0.isNumber }) {
                m.textDigits = Array(stripped.utf8)
            }
        }
        return m
    }

    /// Whether the number's digits start with `prefix` (validated digits), compared as integers: no
    /// string is built per number while the pool is scanned under its lock.
    static func number(_ number: PhoneNumber, startsWith prefix: String) -> Bool {
        let count = number.digitCount
        let length = prefix.utf8.count
        guard length <= count, let value = UInt64(prefix) else { return false }
        return number.digits / pow10(count - length) == value
    }
}

/// Validated, compiled ``NumberCriteria``.
struct NumberMatcher {
    var country: Country?
    var prefix: String?
    var areaCode: UInt16?
    /// Digits 0…9, ``any`` and ``star``.
    var pattern: [UInt8]?
    var tag: String?
    var location: [UInt8]?
    var capabilities: Capabilities?
    var provider: String?
    /// Lowercased UTF-8.
    var text: [UInt8]?
    /// The text's digits when it looks like (part of) a phone number.
    var textDigits: [UInt8]?
    /// The digit ranges the numbers must lie in (ascending, disjoint), or `nil`.
    var ranges: [ClosedRange<UInt64>]?

    static let any: UInt8 = 10
    static let star: UInt8 = 11

    /// Whether a number matches. `holder` gives the id and display name of the agent holding the number
    /// (or reserving it), asked only when the text is not found elsewhere.
    func matches(
        _ number: PhoneNumber,
        _ a: NumberAttributes,
        holder: () -> (id: String, name: String)? = { nil }
    ) -> Bool {
        guard self.matchesDigits(number) else { return false }
        if let country = self.country, a.country != country { return false }
        if let caps = self.capabilities, !a.capabilities.isSuperset(of: caps) { return false }
        if let provider = self.provider, a.provider.lowercased() != provider { return false }
        if let tag = self.tag, !a.tags.contains(where: { $0.lowercased() == tag }) { return false }
        if let location = self.location, !Self.contains(a.location, location) { return false }
        if let text = self.text {
            let found =
                self.textDigits.map { Self.contains(String(number.digits), $0) } == true
                || Self.contains(a.provider, text) || Self.contains(a.location, text)
                || Self.contains(a.numberType, text) || a.tags.contains(where: { Self.contains($0, text) })
                || holder().map { Self.contains($0.id, text) || Self.contains($0.name, text) } == true
            if !found { return false }
        }
        return true
    }

    /// Whether the number passes the digit filters (prefix, area code, pattern): a test of the number
    /// alone, made before its entry is looked up.
    func matchesDigits(_ number: PhoneNumber) -> Bool {
        if let prefix = self.prefix, !NumberCriteria.number(number, startsWith: prefix) { return false }
        if let areaCode = self.areaCode, number.nanpAreaCode != areaCode { return false }
        if let pattern = self.pattern, !Self.glob(pattern, number) { return false }
        return true
    }

    // MARK: - Text

    /// Whether `haystack` contains `needle` (lowercased UTF-8), ignoring ASCII case; without allocating
    /// unless the haystack has non-ASCII letters.
    static func contains(_ haystack: String, _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        let ascii = haystack.utf8.withContiguousStorageIfAvailable { h -> Bool? in
            if h.contains(where: { $0 >= 0x80 }) { return nil }
            return Self.find(needle, in: h)
        }
        if let answer = ascii ?? nil { return answer }
        return Array(haystack.lowercased().utf8).withUnsafeBufferPointer { Self.find(needle, in: $0) }
    }

    /// Naive search with ASCII case folding (fields are short).
    private static func find(_ needle: [UInt8], in h: UnsafeBufferPointer<UInt8>) -> Bool {
        guard h.count >= needle.count else { return false }
        for start in 0...(h.count - needle.count) {
            var k = 0
            while k < needle.count {
                let b = h[start + k]
                if (b >= 65 && b <= 90 ? b | 0x20 : b) != needle[k] { break }
                k += 1
            }
            if k == needle.count { return true }
        }
        return false
    }

    // MARK: - Digit ranges

    /// The digit ranges of the numbers of `lengths` digits that start with `prefix` (`digits` digits;
    /// `digits` 0 means any).
    static func ranges(prefix: UInt64, digits: Int, lengths: ClosedRange<Int>) -> [ClosedRange<UInt64>] {
        var result: [ClosedRange<UInt64>] = []
        let shortest = max(lengths.lowerBound, digits, 1)
        let longest = min(lengths.upperBound, 15)
        guard shortest <= longest else { return [] }
        for length in shortest...longest {
            let scale = pow10(length - digits)
            let low = max(prefix * scale, pow10(length - 1))
            let high = (prefix + 1) * scale - 1
            if low <= high { result.append(low...high) }
        }
        return result
    }

    /// The intersection of two ascending lists of disjoint ranges.
    static func intersect(_ a: [ClosedRange<UInt64>], _ b: [ClosedRange<UInt64>]) -> [ClosedRange<UInt64>] {
        var result: [ClosedRange<UInt64>] = []
        var i = 0
        var j = 0
        while i < a.count, j < b.count {
            let low = max(a[i].lowerBound, b[j].lowerBound)
            let high = min(a[i].upperBound, b[j].upperBound)
            if low <= high { result.append(low...high) }
            if a[i].upperBound < b[j].upperBound { i += 1 } else { j += 1 }
        }
        return result
    }

    // MARK: - Patterns

    static func compile(_ pattern: String) throws(CallgateError) -> [UInt8] {
        var tokens: [UInt8] = []
        for c in pattern.unicodeScalars {
            switch c {
            case "0"..."9": tokens.append(UInt8(c.value - 48))
            case "?", "x", "X": tokens.append(Self.any)
            case "*": if tokens.last != Self.star { tokens.append(Self.star) }
            case "+", " ", "-", ".", "(", ")": continue
            default:
                throw CallgateError(
                    .invalidArgument,
                    "pattern may hold digits, ? (one digit) and * (any digits), got '\(pattern)'"
                )
            }
        }
        let fixed = tokens.filter { $0 != Self.star }.count
        guard !tokens.isEmpty, fixed <= 15 else {
            throw CallgateError(.invalidArgument, "pattern must have 1 to 15 digits or ?, got '\(pattern)'")
        }
        return tokens
    }

    /// Whether the number's digits match the pattern as a whole.
    static func glob(_ pattern: [UInt8], _ number: PhoneNumber) -> Bool {
        let count = number.digitCount
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { s in
            var rest = number.digits
            for i in stride(from: count - 1, through: 0, by: -1) {
                s[i] = UInt8(rest % 10)
                rest /= 10
            }
            var p = 0
            var i = 0
            var starP = -1
            var starI = 0
            while i < count {
                if p < pattern.count, pattern[p] == Self.any || pattern[p] == s[i] {
                    p += 1
                    i += 1
                } else if p < pattern.count, pattern[p] == Self.star {
                    starP = p
                    starI = i
                    p += 1
                } else if starP >= 0 {
                    p = starP + 1
                    starI += 1
                    i = starI
                } else {
                    return false
                }
            }
            while p < pattern.count, pattern[p] == Self.star { p += 1 }
            return p == pattern.count
        }
    }
}
