public import CallgateCore

// Test data shared by the benchmark suites: deterministic agent ids, US numbers and visiting orders.

/// SplitMix64: a small deterministic generator, so every run visits the agents in the same order.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64

    public init(state: UInt64) { self.state = state }

    public mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Real US area codes; numbers cycle through them.
private let usAreaCodes: [UInt64] = [
    201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218, 219, 224, 225, 228,
    229, 231, 234, 239, 240, 248, 251, 252, 253, 254, 256, 260, 262, 267, 269, 270, 276, 281, 301, 302,
    303, 304, 305, 307, 308, 309, 310, 312, 313, 314, 315, 316, 317, 318, 319, 320,
]

/// The `index`-th US number of a series: `+1 AAA` + a 7-digit subscriber part from `firstSubscriber`
/// on (2xx-xxxx and up, so the exchange starts with 2–9). Unique per index within a series while
/// `index / 56` stays below `10_000_000 - firstSubscriber`.
public func usNumber(_ index: Int, firstSubscriber: UInt64) -> PhoneNumber {
    let areaCode = usAreaCodes[index % usAreaCodes.count]
    let subscriber = firstSubscriber + UInt64(index / usAreaCodes.count)
    precondition(subscriber >= 2_000_000 && subscriber <= 9_999_999)
    return PhoneNumber(digits: 10_000_000_000 + areaCode * 10_000_000 + subscriber)!
}

/// Agent ids such as `agent-000042`: 12 bytes, so a native small string (inline, no heap).
public func agentID(_ index: Int, prefix: String = "agent-") -> String {
    let digits = String(index)
    return prefix + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
}

/// A precomputed, pseudo-random visiting order over a set of agents, each with a destination, and a
/// cursor that carries on across iterations (so large fixtures are not served from a warm subset).
public final class Visits: @unchecked Sendable {
    // @unchecked: `cursor` and `lastAllowed` are used by one thread at a time (one Visits per
    // benchmark thread, read by the benchmark closure only after the threads are joined).
    public let agentIDs: [String]
    public let destinations: [PhoneNumber]
    public var cursor = 0
    /// Calls allowed in the last run, for suites that count them.
    public var lastAllowed = 0

    /// - Parameters:
    ///   - ids: the agents to visit; each appears once per pass, in shuffled order.
    ///   - seed: seed of the shuffle and of the destinations.
    public init(ids: [String], seed: UInt64) {
        var rng = SplitMix64(state: seed)
        var order = ids
        order.shuffle(using: &rng)
        self.agentIDs = order
        // Destinations: US numbers over the same area codes, so some calls find a local number.
        self.destinations = (0..<order.count).map { _ in
            usNumber(Int(rng.next() % 1_000_000), firstSubscriber: 4_000_000)
        }
    }
}
