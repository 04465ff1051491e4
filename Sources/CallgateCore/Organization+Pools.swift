/// One pool (a tag: location, department, campaign…) with its counts and low-capacity threshold.
public struct PoolCapacity: Sendable, Hashable {
    /// The tag, in lower case (pools ignore case, as the tag criterion does).
    public var pool: String
    public var counts: PoolCounts
    /// Warn when fewer than this many numbers are available; `nil` when no threshold is set.
    public var threshold: UInt32?

    public init(pool: String, counts: PoolCounts, threshold: UInt32?) {
        self.pool = pool
        self.counts = counts
        self.threshold = threshold
    }

    /// Whether fewer numbers are available than the threshold.
    public var isBelowThreshold: Bool { self.threshold.map { self.counts.available < Int($0) } ?? false }
}

extension Organization {
    /// The most pools of one organization that may have a threshold: each is one Prometheus series,
    /// so this bounds the metrics' cardinality.
    public static let maximumPoolThresholds = 100

    /// The capacity of pools (tags), by name, one page at a time; with `pool`, that pool only (also when
    /// it has no numbers). Pools with a threshold are listed even when they have no numbers.
    ///
    /// Reads the counters the pool keeps current on every change (``PoolCounts``): the cost is the
    /// number of pools and of reserved numbers, never the size of the inventory.
    public func poolCapacity(
        pool name: String? = nil,
        cursor: String? = nil,
        limit: Int = 100
    ) throws(CallgateError) -> Page<PoolCapacity> {
        let limit = try Self.validatePageSize(limit)
        let key = try name.map { (tag) throws(CallgateError) -> String in try Self.poolKey(tag) }
        let now = self.clock.now()
        return self.pool.withLock { pool in
            let selection: PoolState.PoolSelection = key.map { .keys([$0]) } ?? .all
            let counts = pool.poolCounts(now: now, pools: selection).pools
            var names: [String]
            if let key {
                names = [key]
            } else {
                names = Array(Set(counts.keys).union(pool.thresholds.keys)).sorted()
                if let cursor, !cursor.isEmpty { names = names.filter { $0 > cursor } }
            }
            var items: [PoolCapacity] = []
            for name in names {
                if items.count == limit { return Page(items: items, nextCursor: items.last?.pool) }
                items.append(
                    PoolCapacity(pool: name, counts: counts[name] ?? PoolCounts(), threshold: pool.thresholds[name])
                )
            }
            return Page(items: items, nextCursor: nil)
        }
    }

    /// Pools with a threshold, by name (at most ``maximumPoolThresholds``).
    public func poolsWithThresholds() -> [PoolCapacity] {
        let now = self.clock.now()
        return self.pool.withLock { pool in
            guard !pool.thresholds.isEmpty else { return [] }
            let names = pool.thresholds.keys.sorted()
            let counts = pool.poolCounts(now: now, pools: .keys(names)).pools
            return names.map {
                PoolCapacity(pool: $0, counts: counts[$0] ?? PoolCounts(), threshold: pool.thresholds[$0])
            }
        }
    }

    /// Pools whose available numbers are below their threshold.
    public func poolsBelowThreshold() -> [PoolCapacity] { self.poolsWithThresholds().filter(\.isBelowThreshold) }

    /// Sets a pool's low-capacity threshold (warn when fewer than `threshold` numbers are available), or
    /// removes it with `nil`. Audited (`pool.threshold`).
    ///
    /// - Throws: `invalidArgument` for a bad tag; `failedPrecondition` when ``maximumPoolThresholds``
    ///   pools already have one.
    @discardableResult
    public func setPoolThreshold(
        _ tag: String,
        threshold: UInt32?,
        actor: Actor
    ) throws(CallgateError) -> PoolCapacity {
        let key = try Self.poolKey(tag)
        if let threshold, threshold > 10_000_000 {
            throw CallgateError(.invalidArgument, "threshold must be at most 10000000, got \(threshold)")
        }
        let now = self.clock.now()
        return try self.pool.withLock { (pool) throws(CallgateError) -> PoolCapacity in
            let before = pool.thresholds[key]
            if threshold != nil, before == nil, pool.thresholds.count >= Self.maximumPoolThresholds {
                throw CallgateError(
                    .failedPrecondition,
                    "at most \(Self.maximumPoolThresholds) pools may have a threshold; remove one first"
                )
            }
            let counts = pool.poolCounts(now: now, pools: .keys([key])).pools[key] ?? PoolCounts()
            guard before != threshold else { return PoolCapacity(pool: key, counts: counts, threshold: threshold) }
            _ = try self.changes.record(
                self.change(now, actor, .poolThresholdSet(pool: key, before: before, after: threshold))
            )
            pool.thresholds[key] = threshold
            return PoolCapacity(pool: key, counts: counts, threshold: threshold)
        }
    }

    /// Re-creates a stored threshold without recording a change.
    public func restorePoolThreshold(_ pool: String, _ threshold: UInt32) {
        self.pool.withLock { $0.thresholds[PoolCounters.key(pool)] = threshold }
    }

    /// The key of a pool named by a user: the tag, trimmed, in lower case.
    static func poolKey(_ tag: String) throws(CallgateError) -> String {
        let trimmed = tag.trimmingSpaces
        guard !trimmed.isEmpty else { throw CallgateError(.invalidArgument, "pool (tag) must not be empty") }
        try Self.validateText(trimmed, field: "pool")
        return PoolCounters.key(trimmed)
    }
}
