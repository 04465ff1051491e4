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

/// One agent: its id and its lock. Entries are never removed (agents are deactivated, not deleted),
/// so a reference found in the directory stays valid.
final class AgentEntry: Sendable {
    let id: String
    let state: Locked<AgentState>

    init(record: AgentRecord) {
        self.id = record.id
        self.state = Locked(AgentState(record: record))
    }
}

/// Agents of one organization by external id, split over independently locked stripes so that
/// lookups on the hot path never meet a global lock.
final class AgentDirectory: Sendable {
    private final class Stripe: Sendable {
        let entries = Locked<[String: AgentEntry]>([:])
    }

    private static let stripeCount = 64
    private let stripes: [Stripe]

    init() {
        self.stripes = (0..<Self.stripeCount).map { _ in Stripe() }
    }

    @inline(__always)
    private func stripe(for id: String) -> Stripe {
        // FNV-1a over the UTF-8 bytes: cheap, and only picks a stripe (the dictionary hashes properly).
        var hash: UInt32 = 2_166_136_261
        for byte in id.utf8 {
            hash = (hash ^ UInt32(byte)) &* 16_777_619
        }
        return self.stripes[Int(hash % UInt32(Self.stripeCount))]
    }

    func lookup(_ id: String) -> AgentEntry? {
        self.stripe(for: id).entries.withLock { $0[id] }
    }

    /// Returns the existing entry, or inserts the one `make` builds.
    func lookupOrInsert(_ id: String, make: () -> AgentEntry) -> (entry: AgentEntry, inserted: Bool) {
        self.stripe(for: id).entries.withLock { entries in
            if let existing = entries[id] { return (existing, false) }
            let entry = make()
            entries[id] = entry
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
