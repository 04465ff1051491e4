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
struct PoolState {
    var numbers: [PhoneNumber: NumberEntry] = [:]
    /// Numbers in ascending order, for cursor paging; rebuilt lazily after out-of-order inserts.
    private var sorted: [PhoneNumber] = []
    private var sortedIsValid = true

    mutating func reserveCapacity(_ count: Int) {
        self.numbers.reserveCapacity(count)
        self.sorted.reserveCapacity(count)
    }

    mutating func insert(_ number: PhoneNumber, _ entry: NumberEntry) {
        self.numbers[number] = entry
        if self.sortedIsValid {
            if let last = self.sorted.last, last >= number {
                self.sortedIsValid = false
            } else {
                self.sorted.append(number)
            }
        }
    }

    mutating func remove(_ number: PhoneNumber) {
        self.numbers[number] = nil
        self.sortedIsValid = false
    }

    /// Numbers after `cursor` in ascending order.
    mutating func ascending(after cursor: PhoneNumber?) -> ArraySlice<PhoneNumber> {
        if !self.sortedIsValid {
            self.sorted = self.numbers.keys.sorted()
            self.sortedIsValid = true
        }
        guard let cursor else { return self.sorted[...] }
        var low = 0
        var high = self.sorted.count
        while low < high {
            let mid = (low + high) / 2
            if self.sorted[mid] <= cursor { low = mid + 1 } else { high = mid }
        }
        return self.sorted[low...]
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
