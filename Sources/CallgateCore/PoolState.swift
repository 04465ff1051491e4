/// Where a number is, as the pool sees it. For an assigned number the agent's ``Holding`` carries the
/// limit, countries and counter.
enum PoolLifecycle {
    case available
    case reserved(Reservation)
    case assigned(AssignedTo)
}

struct AssignedTo {
    let agent: AgentEntry
    let since: Timestamp
    let by: Actor
}

/// One number in the pool.
struct NumberEntry {
    var attributes: NumberAttributes
    var lifecycle: PoolLifecycle
    var releasedAt: Timestamp?
    var createdAt: Timestamp
    var createdBy: Actor
    var modifiedAt: Timestamp
    var modifiedBy: Actor
    /// The counter while the number is not assigned (when assigned, the holding has it).
    var counter: DailyCounter
}

/// The inventory of an organization, guarded by its pool lock.
///
/// Besides the dictionary, the numbers are kept in ascending order for cursor paging: a page costs a
/// binary search for the cursor and then one step per number looked at, whatever the pool's size.
/// Online changes keep the order (an insert or a removal moves the tail of the array: a `memmove` of at
/// most 8 MB for a million numbers); only loading in another order leaves it to be rebuilt on first use.
struct PoolState {
    /// Every number. Changed only through this type's methods, which keep ``counts`` current.
    private(set) var numbers: [PhoneNumber: NumberEntry] = [:]
    /// Per-pool (tag) and whole-inventory counts, kept current on every change (see ``PoolCounters``).
    private(set) var counts = PoolCounters()
    /// Low-capacity warning thresholds by pool key (``PoolCounters/key(_:)``).
    var thresholds: [String: UInt32] = [:]
    /// Numbers in ascending order; rebuilt lazily when ``sortedIsValid`` is false.
    private var sorted: [PhoneNumber] = []
    private var sortedIsValid = true

    mutating func reserveCapacity(_ count: Int) {
        self.numbers.reserveCapacity(count)
        self.sorted.reserveCapacity(count)
    }

    /// Adds a number while loading: appends in order, and leaves the order to be rebuilt once when the
    /// numbers come in another order.
    mutating func insert(_ number: PhoneNumber, _ entry: NumberEntry) {
        if let old = self.numbers.updateValue(entry, forKey: number) { self.counts.remove(number, old) }
        self.counts.add(number, entry)
        if self.sortedIsValid {
            if let last = self.sorted.last, last >= number {
                self.sortedIsValid = false
            } else {
                self.sorted.append(number)
            }
        }
    }

    /// Adds a new number, keeping the order.
    mutating func add(_ number: PhoneNumber, _ entry: NumberEntry) {
        let old = self.numbers.updateValue(entry, forKey: number)
        if let old { self.counts.remove(number, old) }
        self.counts.add(number, entry)
        guard old == nil, self.sortedIsValid else { return }
        if let last = self.sorted.last, last >= number {
            self.sorted.insert(number, at: self.lowerBound(number.digits))
        } else {
            self.sorted.append(number)
        }
    }

    /// Adds new numbers, keeping the order: one merge, O(n + k log k).
    mutating func add(contentsOf entries: [(PhoneNumber, NumberEntry)]) {
        var fresh: [PhoneNumber] = []
        fresh.reserveCapacity(entries.count)
        self.numbers.reserveCapacity(self.numbers.count + entries.count)
        for (number, entry) in entries {
            self.counts.add(number, entry)
            if let old = self.numbers.updateValue(entry, forKey: number) {
                self.counts.remove(number, old)
            } else {
                fresh.append(number)
            }
        }
        guard self.sortedIsValid, !fresh.isEmpty else { return }
        fresh.sort()
        if let last = self.sorted.last, last >= fresh[0] {
            var merged: [PhoneNumber] = []
            merged.reserveCapacity(self.sorted.count + fresh.count)
            var i = 0
            var j = 0
            while i < self.sorted.count, j < fresh.count {
                if self.sorted[i] < fresh[j] {
                    merged.append(self.sorted[i])
                    i += 1
                } else {
                    merged.append(fresh[j])
                    j += 1
                }
            }
            merged.append(contentsOf: self.sorted[i...])
            merged.append(contentsOf: fresh[j...])
            self.sorted = merged
        } else {
            self.sorted.append(contentsOf: fresh)
        }
    }

    /// Replaces the entry of a number that is in the pool (its lifecycle, attributes, counter…).
    mutating func replace(_ number: PhoneNumber, with entry: NumberEntry) {
        guard let index = self.numbers.index(forKey: number) else {
            self.add(number, entry)
            return
        }
        self.counts.change(number, from: self.numbers.values[index], to: entry)
        self.numbers.values[index] = entry
    }

    mutating func remove(_ number: PhoneNumber) {
        guard let old = self.numbers.removeValue(forKey: number) else { return }
        self.counts.remove(number, old)
        guard self.sortedIsValid else { return }
        let i = self.lowerBound(number.digits)
        if i < self.sorted.count, self.sorted[i] == number { self.sorted.remove(at: i) }
    }

    /// Removes many numbers in one pass over the order.
    mutating func remove(contentsOf numbers: [PhoneNumber]) {
        guard numbers.count > 8 else {
            for number in numbers { self.remove(number) }
            return
        }
        for number in numbers {
            if let old = self.numbers.removeValue(forKey: number) { self.counts.remove(number, old) }
        }
        if self.sortedIsValid {
            let remaining = self.numbers
            self.sorted.removeAll { remaining[$0] == nil }
        }
    }

    private mutating func ensureSorted() {
        if !self.sortedIsValid {
            self.sorted = self.numbers.keys.sorted()
            self.sortedIsValid = true
        }
    }

    /// The index of the first number whose digits are `>= digits` (the order must be valid).
    private func lowerBound(_ digits: UInt64) -> Int {
        var low = 0
        var high = self.sorted.count
        while low < high {
            let mid = (low + high) / 2
            if self.sorted[mid].digits < digits { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Numbers after `cursor` in ascending order.
    mutating func ascending(after cursor: PhoneNumber?) -> ArraySlice<PhoneNumber> {
        self.ensureSorted()
        guard let cursor else { return self.sorted[...] }
        return self.sorted[self.lowerBound(cursor.digits + 1)...]
    }

    /// Visits, in ascending order, the numbers after `cursor` whose digits lie in one of `ranges`
    /// (ascending, disjoint; `nil` for all numbers) and pass `digits`, until `visit` returns `false` or
    /// `budget` numbers have been stepped over.
    ///
    /// Costs one binary search per range plus one step per number: a page of a prefix or area code
    /// listing does not depend on the size of the pool. `digits` is tested before the entry is looked
    /// up, and the entry is lent in place (`inout`, never changed) rather than copied: a copy retains its
    /// strings, a cache miss each on a pool that does not fit in the cache.
    ///
    /// - Returns: the last number stepped over when the budget ran out (the scan may go on after it),
    ///   else `nil`.
    @discardableResult
    mutating func scan(
        _ ranges: [ClosedRange<UInt64>]?,
        after cursor: PhoneNumber?,
        budget: Int = .max,
        digits: (PhoneNumber) -> Bool = { _ in true },
        _ visit: (PhoneNumber, inout NumberEntry) -> Bool
    ) -> PhoneNumber? {
        self.ensureSorted()
        let start = cursor.map { $0.digits + 1 } ?? 0
        var steps = 0
        for range in ranges ?? [0...UInt64.max] where range.upperBound >= start {
            var i = self.lowerBound(max(range.lowerBound, start))
            while i < self.sorted.count {
                let number = self.sorted[i]
                guard number.digits <= range.upperBound else { break }
                if steps == budget { return self.sorted[i - 1] }
                steps += 1
                i += 1
                guard digits(number), let index = self.numbers.index(forKey: number) else { continue }
                if !visit(number, &self.numbers.values[index]) { return nil }
            }
        }
        return nil
    }
}

extension NumberEntry {
    /// The lifecycle state as of `now`: a reservation past its expiry is available.
    func state(at now: Timestamp) -> NumberState {
        switch self.lifecycle {
        case .available: return .available
        case .reserved(let r): return r.expiresAt > now ? .reserved(r) : .available
        case .assigned(let a): return .assigned(agent: a.agent.id)
        }
    }

    /// When the number was assigned to its holder, if it is assigned.
    var assignedSince: Timestamp? {
        if case .assigned(let a) = self.lifecycle { return a.since }
        return nil
    }

    func isAvailable(at now: Timestamp) -> Bool {
        if case .available = self.state(at: now) { return true }
        return false
    }
}
