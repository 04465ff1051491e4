/// A region of libphonenumber's metadata: an ISO 3166 alpha-2 country, or `001` for non-geographic
/// numbering (+800, +882, …).
///
/// Stored as a one-byte index into the generated table, so it is free to copy and compare, and a set of
/// countries is a 256-bit ``CountrySet``.
public struct Country: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Index into the generated region table.
    public let rawValue: UInt8

    @usableFromInline
    init(uncheckedRawValue: UInt8) { self.rawValue = uncheckedRawValue }

    /// The region for an ISO 3166 alpha-2 code (case-insensitive) or `001`; `nil` when unknown.
    public init?(code: some StringProtocol) {
        let upper = code.uppercased()
        guard let index = CountryTable.regionIndex[upper] else { return nil }
        self.rawValue = index
    }

    /// The ISO 3166 alpha-2 code (`US`), or `001`.
    public var code: String { CountryTableData.regionCodes[Int(self.rawValue)] }

    /// The country calling code (`1` for US and CA).
    public var callingCode: UInt16 { CountryTableData.regionCallingCodes[Int(self.rawValue)] }

    /// Whether the region belongs to the North American Numbering Plan (+1).
    public var isNANP: Bool { self.callingCode == 1 }

    /// The single-digit national (trunk) prefix dialled before national numbers (`0` in GB, `1` in US).
    var trunkPrefixDigit: UInt64? {
        let prefix = CountryTableData.regionNationalPrefixes[Int(self.rawValue)]
        guard prefix.utf8.count == 1, let digit = prefix.utf8.first, digit >= 48, digit <= 57 else { return nil }
        return UInt64(digit - 48)
    }

    public var description: String { self.code }

    /// Every known region, in table order.
    public static var all: [Country] {
        (0..<CountryTableData.regionCodes.count).map { Country(uncheckedRawValue: UInt8($0)) }
    }

    public static func < (lhs: Country, rhs: Country) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A set of ``Country`` values as a fixed 256-bit bitset: membership is one shift and one AND, and the
/// set lives inline (no heap) inside an assignment.
public struct CountrySet: Hashable, Sendable, Sequence, ExpressibleByArrayLiteral, CustomStringConvertible {
    @usableFromInline var w0: UInt64 = 0
    @usableFromInline var w1: UInt64 = 0
    @usableFromInline var w2: UInt64 = 0
    @usableFromInline var w3: UInt64 = 0

    public init() {}

    public init<S: Sequence>(_ countries: S) where S.Element == Country {
        for country in countries { self.insert(country) }
    }

    public init(arrayLiteral elements: Country...) { self.init(elements) }

    /// Parses ISO codes; every unknown code is reported.
    ///
    /// - Throws: ``CallgateError`` `invalidArgument` naming the codes that are not regions.
    public init<S: Sequence>(codes: S) throws(CallgateError) where S.Element: StringProtocol {
        var unknown: [String] = []
        for code in codes {
            if let country = Country(code: code) {
                self.insert(country)
            } else {
                unknown.append(String(code))
            }
        }
        guard unknown.isEmpty else {
            throw CallgateError(.invalidArgument, "unknown country code(s): \(unknown.joined(separator: ", "))")
        }
    }

    @inlinable
    public func contains(_ country: Country) -> Bool {
        let bit = UInt64(1) &<< UInt64(country.rawValue & 63)
        switch country.rawValue >> 6 {
        case 0: return self.w0 & bit != 0
        case 1: return self.w1 & bit != 0
        case 2: return self.w2 & bit != 0
        default: return self.w3 & bit != 0
        }
    }

    @inlinable
    public mutating func insert(_ country: Country) {
        let bit = UInt64(1) &<< UInt64(country.rawValue & 63)
        switch country.rawValue >> 6 {
        case 0: self.w0 |= bit
        case 1: self.w1 |= bit
        case 2: self.w2 |= bit
        default: self.w3 |= bit
        }
    }

    public var isEmpty: Bool { (self.w0 | self.w1 | self.w2 | self.w3) == 0 }

    public var count: Int {
        self.w0.nonzeroBitCount + self.w1.nonzeroBitCount + self.w2.nonzeroBitCount + self.w3.nonzeroBitCount
    }

    public func makeIterator() -> IndexingIterator<[Country]> {
        var members: [Country] = []
        members.reserveCapacity(self.count)
        for raw in 0..<256 where self.contains(Country(uncheckedRawValue: UInt8(raw))) {
            members.append(Country(uncheckedRawValue: UInt8(raw)))
        }
        return members.makeIterator()
    }

    /// The ISO codes, sorted.
    public var codes: [String] { self.map(\.code).sorted() }

    public var description: String { "[" + self.codes.joined(separator: ",") + "]" }
}
