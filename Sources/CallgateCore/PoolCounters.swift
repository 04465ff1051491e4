/// How many numbers of a pool (or of the whole inventory) are in each of four disjoint states.
///
/// - `available`: not held, active: what PickNumber and bulk assign can hand out;
/// - `reserved`: under a reservation that has not expired (whatever the status);
/// - `assigned`: held by an agent (whatever the status);
/// - `inactive`: not held, inactive.
public struct PoolCounts: Hashable, Sendable {
    public var available = 0
    public var reserved = 0
    public var assigned = 0
    public var inactive = 0

    public init(available: Int = 0, reserved: Int = 0, assigned: Int = 0, inactive: Int = 0) {
        self.available = available
        self.reserved = reserved
        self.assigned = assigned
        self.inactive = inactive
    }

    public var total: Int { self.available + self.reserved + self.assigned + self.inactive }

    mutating func add(_ category: PoolCounters.Category, _ delta: Int) {
        switch category {
        case .available: self.available += delta
        case .reserved: self.reserved += delta
        case .assigned: self.assigned += delta
        case .inactive: self.inactive += delta
        }
    }
}

/// Per-pool counts kept current by ``PoolState`` on every change of a number (add, remove, lifecycle,
/// status or tags), so that the pool-capacity view and the low-capacity warnings never scan the
/// inventory: a change costs one dictionary update per tag of the number, a read costs the number of
/// pools plus the number of reserved numbers (a reservation expires without any change being made, so
/// a read first makes the expired ones available).
///
/// A pool is a tag, compared ignoring case (as `NumberCriteria.tag` matches): its key is the tag in
/// lower case.
struct PoolCounters {
    enum Category { case available, reserved, assigned, inactive }

    /// The whole inventory.
    private(set) var all = PoolCounts()
    /// By pool key; a pool with no numbers has no entry.
    private(set) var byPool: [String: PoolCounts] = [:]
    /// Numbers whose lifecycle is `reserved`, expired or not (counted as reserved until a read sweeps them).
    private(set) var reservedNumbers: Set<PhoneNumber> = []

    /// The pool key of a tag: the tag in lower case (no copy when it has no upper-case ASCII letter).
    static func key(_ tag: String) -> String {
        var plain = true
        for byte in tag.utf8 where byte >= 0x41 && byte <= 0x5A || byte >= 0x80 {
            plain = false
            break
        }
        return plain ? tag : tag.lowercased()
    }

    static func category(_ entry: NumberEntry) -> Category {
        switch entry.lifecycle {
        case .assigned: return .assigned
        case .reserved: return .reserved
        case .available: return entry.attributes.status == .active ? .available : .inactive
        }
    }

    mutating func add(_ number: PhoneNumber, _ entry: NumberEntry) { self.apply(number, entry, 1) }

    mutating func remove(_ number: PhoneNumber, _ entry: NumberEntry) { self.apply(number, entry, -1) }

    mutating func change(_ number: PhoneNumber, from old: NumberEntry, to new: NumberEntry) {
        if Self.category(old) == Self.category(new), old.attributes.tags == new.attributes.tags { return }
        self.apply(number, old, -1)
        self.apply(number, new, 1)
    }

    private mutating func apply(_ number: PhoneNumber, _ entry: NumberEntry, _ delta: Int) {
        let category = Self.category(entry)
        self.all.add(category, delta)
        let tags = entry.attributes.tags
        if tags.count == 1 {
            self.bump(Self.key(tags[0]), category, delta)
        } else if tags.count > 1 {
            // Tags are unique, but two may differ only in case: one pool, counted once.
            var keys: [String] = []
            keys.reserveCapacity(tags.count)
            for tag in tags {
                let key = Self.key(tag)
                if !keys.contains(key) {
                    keys.append(key)
                    self.bump(key, category, delta)
                }
            }
        }
        if category == .reserved {
            if delta > 0 { self.reservedNumbers.insert(number) } else { self.reservedNumbers.remove(number) }
        }
    }

    private mutating func bump(_ key: String, _ category: Category, _ delta: Int) {
        if let index = self.byPool.index(forKey: key) {
            self.byPool.values[index].add(category, delta)
            if self.byPool.values[index].total == 0 { self.byPool.remove(at: index) }
        } else {
            var counts = PoolCounts()
            counts.add(category, delta)
            self.byPool[key] = counts
        }
    }
}

extension PoolState {
    enum PoolSelection {
        case none
        /// These pools (keys) only: costs them, not all pools.
        case keys([String])
        case all
    }

    /// The counts as of `now`: the whole inventory and the pools selected (by key).
    ///
    /// Reservations that expired are first made available in memory (they already are for every other
    /// purpose: ``NumberEntry/state(at:)``; the store ignores an expired reservation on load), so the
    /// counts are exact and the set of reserved numbers stays small. Costs the pools returned plus one
    /// look-up per reserved number.
    mutating func poolCounts(
        now: Timestamp,
        pools selection: PoolSelection
    ) -> (all: PoolCounts, pools: [String: PoolCounts]) {
        var expired: [PhoneNumber] = []
        for number in self.counts.reservedNumbers {
            if case .reserved(let r)? = self.numbers[number]?.lifecycle, r.expiresAt <= now { expired.append(number) }
        }
        for number in expired {
            guard var entry = self.numbers[number] else { continue }
            entry.lifecycle = .available
            self.replace(number, with: entry)
        }
        let pools: [String: PoolCounts]
        switch selection {
        case .none:
            pools = [:]
        case .keys(let keys):
            var selected: [String: PoolCounts] = [:]
            for key in keys { selected[key] = self.counts.byPool[key] }
            pools = selected
        case .all:
            pools = self.counts.byPool
        }
        return (self.counts.all, pools)
    }
}
