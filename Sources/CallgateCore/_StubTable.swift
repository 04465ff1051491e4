enum CountryTableData {
    static let metadataVersion = "stub"
    static let regionCodes: [String] = ["CA", "GB", "US", "001"]
    static let regionCallingCodes: [UInt16] = [1, 44, 1, 800]
    static let regionNationalPrefixes: [String] = ["1", "0", "1", ""]
    static let rangeStarts: [UInt64] = [0, 100_000_000_000_000, 141_600_000_000_000, 141_700_000_000_000, 200_000_000_000_000, 440_000_000_000_000, 450_000_000_000_000]
    static let rangeRegions: [UInt8] = [255, 2, 0, 2, 255, 1, 255]
    static let callingCodes: [UInt16] = [1, 44, 800]
    static let callingCodeMainRegions: [UInt8] = [2, 1, 3]
    static let callingCodePossibleLengths: [UInt32] = [1 << 10, 1 << 10 | 1 << 9, 1 << 8]
}
