/// The hot-path state of one assigned number, guarded by its agent's lock.
///
/// Only machine words (no strings, no references), so an agent's holdings are a flat array that the
/// decision scans without retain/release traffic.
struct Holding {
    let number: PhoneNumber
    let country: Country
    /// NANP area code of the number, 0 outside NANP.
    let areaCode: UInt16
    var active: Bool
    var dailyLimit: UInt32
    var allowedCountries: CountrySet
    /// The number's counter: while the number is assigned, this is the only copy.
    var counter: DailyCounter
    var callsSinceAssigned: UInt64
}

/// An agent's mutable state, guarded by the agent's own lock.
struct AgentState {
    var record: AgentRecord
    var holdings: [Holding] = []
    /// Index of the holding picked last; ties rotate from the one after it.
    var lastPicked: Int = -1

    func holdingIndex(of number: PhoneNumber) -> Int? {
        self.holdings.firstIndex { $0.number == number }
    }
}

/// One agent: its id and its locked state (one heap object). Entries are never removed (agents are
/// deactivated, not deleted), so an entry found in the directory stays valid.
struct AgentEntry: Sendable {
    let id: String
    let state: Locked<AgentState>

    init(record: AgentRecord) {
        self.id = record.id
        self.state = Locked(AgentState(record: record))
    }

    static func === (lhs: AgentEntry, rhs: AgentEntry) -> Bool { lhs.state === rhs.state }
}

/// A directory key that carries its hash, so the id's bytes are hashed once per lookup.
struct AgentKey: Hashable {
    let hash: UInt64
    let id: String

    init(_ id: String) {
        self.id = id
        self.hash = AgentKey.hash(id)
    }

    func hash(into hasher: inout Hasher) { hasher.combine(self.hash) }

    static func == (lhs: AgentKey, rhs: AgentKey) -> Bool { lhs.hash == rhs.hash && lhs.id == rhs.id }

    /// A fast 64-bit hash of the UTF-8 bytes, eight at a time (not for untrusted-flooding defence: the
    /// dictionary mixes it again with its per-process seed).
    static func hash(_ id: String) -> UInt64 {
        var copy = id
        return copy.withUTF8 { bytes -> UInt64 in
            var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(bytes.count)
            var i = 0
            let raw = UnsafeRawBufferPointer(bytes)
            while i + 8 <= bytes.count {
                h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
                h ^= h >> 31
                i += 8
            }
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < bytes.count {
                tail |= UInt64(bytes[i]) << shift
                shift += 8
                i += 1
            }
            h = (h ^ tail) &* 0x94D0_49BB_1331_11EB
            return h ^ (h >> 29)
        }
    }
}

/// Agents of one organization by external id, split over independently locked stripes so that
/// lookups on the hot path never meet a global lock.
final class AgentDirectory: Sendable {
    private final class Stripe: Sendable {
        let entries = Locked<[AgentKey: AgentEntry]>([:])
    }

    private static let stripeCount = 64  // AgentKey.hash >> 58 indexes it
    private let stripes: [Stripe]

    init() {
        self.stripes = (0..<Self.stripeCount).map { _ in Stripe() }
    }

    @inline(__always)
    private func stripe(for key: AgentKey) -> Stripe {
        self.stripes[Int(truncatingIfNeeded: key.hash >> 58)]  // top 6 bits: 64 stripes
    }

    func lookup(_ id: String) -> AgentEntry? {
        let key = AgentKey(id)
        return self.stripe(for: key).entries.withLock { $0[key] }
    }

    /// Returns the existing entry, or inserts the one `make` builds.
    func lookupOrInsert(_ id: String, make: () -> AgentEntry) -> (entry: AgentEntry, inserted: Bool) {
        let key = AgentKey(id)
        return self.stripe(for: key).entries.withLock { entries in
            if let existing = entries[key] { return (existing, false) }
            let entry = make()
            entries[key] = entry
            return (entry, true)
        }
    }

    /// Every agent, in no particular order.
    func all() -> [AgentEntry] {
        var result: [AgentEntry] = []
        for stripe in self.stripes {
            stripe.entries.withLock { result.append(contentsOf: $0.values) }
        }
        return result
    }

    var count: Int { self.stripes.reduce(0) { sum, stripe in sum + stripe.entries.withLock { $0.count } } }
}
