/// A number to add to the inventory.
public struct NumberInput: Sendable, Hashable {
    public var number: PhoneNumber
    public var provider: String
    /// The country; derived from the number when `nil`, and an error when it does not match.
    public var country: Country?
    public var capabilities: Capabilities
    public var status: NumberStatus
    public var location: String
    public var tags: [String]
    public var numberType: String

    public init(
        number: PhoneNumber,
        provider: String,
        country: Country? = nil,
        capabilities: Capabilities = [.voice],
        status: NumberStatus = .active,
        location: String = "",
        tags: [String] = [],
        numberType: String = "did"
    ) {
        self.number = number
        self.provider = provider
        self.country = country
        self.capabilities = capabilities
        self.status = status
        self.location = location
        self.tags = tags
        self.numberType = numberType
    }
}

/// Changes to a number's attributes; `nil` fields stay as they are.
public struct NumberUpdate: Sendable, Hashable {
    public var provider: String?
    public var capabilities: Capabilities?
    public var status: NumberStatus?
    public var location: String?
    public var tags: [String]?
    public var numberType: String?

    public init(
        provider: String? = nil,
        capabilities: Capabilities? = nil,
        status: NumberStatus? = nil,
        location: String? = nil,
        tags: [String]? = nil,
        numberType: String? = nil
    ) {
        self.provider = provider
        self.capabilities = capabilities
        self.status = status
        self.location = location
        self.tags = tags
        self.numberType = numberType
    }
}

/// Filters for listing numbers.
public struct NumberFilter: Sendable, Hashable {
    public var criteria: NumberCriteria
    public var status: NumberStatus?
    /// `available`, `reserved` or `assigned`.
    public var state: String?
    /// Only numbers assigned to this agent.
    public var agent: String?

    public init(
        criteria: NumberCriteria = NumberCriteria(),
        status: NumberStatus? = nil,
        state: String? = nil,
        agent: String? = nil
    ) {
        self.criteria = criteria
        self.status = status
        self.state = state
        self.agent = agent
    }
}

/// An agent to create or update.
public struct AgentInput: Sendable, Hashable {
    public var id: String
    public var displayName: String
    public var principal: String
    public var active: Bool

    public init(id: String, displayName: String = "", principal: String = "", active: Bool = true) {
        self.id = id
        self.displayName = displayName
        self.principal = principal
        self.active = active
    }
}

extension Organization {
    /// The longest free-text field accepted (provider, location, tag, names).
    static let maximumTextLength = 256
    /// The most tags on one number.
    static let maximumTags = 32

    // MARK: - Numbers

    /// Adds a number to the inventory, available.
    ///
    /// - Throws: `alreadyExists`, or `invalidArgument` (country mismatch, bad text fields).
    @discardableResult
    public func addNumber(_ input: NumberInput, actor: Actor) throws(CallgateError) -> NumberRecord {
        let attributes = try Self.attributes(for: input)
        let now = self.clock.now()
        return try self.pool.withLock { (pool) throws(CallgateError) -> NumberRecord in
            guard pool.numbers[input.number] == nil else {
                throw CallgateError(.alreadyExists, "number \(input.number) is already in this organization")
            }
            let entry = NumberEntry(
                attributes: attributes,
                lifecycle: .available,
                releasedAt: nil,
                createdAt: now,
                createdBy: actor,
                modifiedAt: now,
                modifiedBy: actor,
                counter: .zero
            )
            let record = self.numberRecord(input.number, entry, dayKey: 0, now: now)
            _ = try self.changes.record(self.change(now, actor, .numberAdded(record)))
            pool.add(input.number, entry)
            return record
        }
    }

    /// Changes a number's attributes. Deactivating an assigned number stops its authorizations at once.
    @discardableResult
    public func updateNumber(
        _ number: PhoneNumber,
        _ update: NumberUpdate,
        actor: Actor
    ) throws(CallgateError) -> NumberRecord {
        let now = self.clock.now()
        let day = self.day.window(containing: now)
        return try self.pool.withLock { (pool) throws(CallgateError) -> NumberRecord in
            guard var entry = pool.numbers[number] else { throw Self.numberNotFound(number) }
            let before = self.numberRecord(number, entry, dayKey: day.key, now: now)
            var input = NumberInput(
                number: number,
                provider: update.provider ?? entry.attributes.provider,
                country: entry.attributes.country,
                capabilities: update.capabilities ?? entry.attributes.capabilities,
                status: update.status ?? entry.attributes.status,
                location: update.location ?? entry.attributes.location,
                tags: update.tags ?? entry.attributes.tags,
                numberType: update.numberType ?? entry.attributes.numberType
            )
            input.country = entry.attributes.country
            entry.attributes = try Self.attributes(for: input)
            entry.modifiedAt = now
            entry.modifiedBy = actor
            var after = before
            after.attributes = entry.attributes
            after.modifiedAt = now
            after.modifiedBy = actor
            _ = try self.changes.record(self.change(now, actor, .numberUpdated(before: before, after: after)))
            Self.tellHolder(number, entry, previousStatus: before.attributes.status)
            pool.replace(number, with: entry)
            return after
        }
    }

    /// Tells the agent holding `number` that its status changed, so AuthorizeCall sees it at once. Called
    /// under the pool lock; takes the holder's lock (the usual order).
    static func tellHolder(_ number: PhoneNumber, _ entry: NumberEntry, previousStatus: NumberStatus?) {
        guard case .assigned(let a) = entry.lifecycle, previousStatus != entry.attributes.status else { return }
        let active = entry.attributes.status == .active
        a.agent.state.withLock { state in
            if let i = state.holdingIndex(of: number) { state.holdings[i].active = active }
        }
    }

    /// Deletes unassigned numbers, all or nothing.
    ///
    /// - Throws: `notFound` for an unknown number, `failedPrecondition` when one is assigned or reserved;
    ///   then nothing is deleted.
    @discardableResult
    public func deleteNumbers(_ numbers: [PhoneNumber], actor: Actor) throws(CallgateError) -> Int {
        let now = self.clock.now()
        return try self.pool.withLock { (pool) throws(CallgateError) -> Int in
            for number in numbers {
                guard let entry = pool.numbers[number] else { throw Self.numberNotFound(number) }
                guard entry.isAvailable(at: now) else {
                    throw CallgateError(
                        .failedPrecondition,
                        "number \(number) is \(entry.state(at: now).name); release it before deleting"
                    )
                }
            }
            // One change for the whole set: if the store refuses it, nothing is deleted.
            let unique = Array(Set(numbers)).sorted()
            let records = unique.compactMap { number in
                pool.numbers[number].map { self.numberRecord(number, $0, dayKey: 0, now: now) }
            }
            _ = try self.changes.record(self.change(now, actor, .numbersDeleted(records)))
            pool.remove(contentsOf: unique)
            return unique.count
        }
    }

    /// Deletes every unassigned, unreserved number of the organization.
    ///
    /// - Parameter confirm: must be `true`; a guard against deleting a whole inventory by accident.
    @discardableResult
    public func deleteAllUnassigned(confirm: Bool, actor: Actor) throws(CallgateError) -> Int {
        guard confirm else {
            throw CallgateError(.failedPrecondition, "deleting all unassigned numbers needs an explicit confirmation")
        }
        let now = self.clock.now()
        let targets = self.pool.withLock { pool in pool.numbers.filter { $0.value.isAvailable(at: now) }.map(\.key) }
        return try self.deleteNumbers(targets, actor: actor)
    }

    /// One number, or `nil`.
    public func number(_ number: PhoneNumber) -> NumberRecord? {
        let now = self.clock.now()
        let day = self.day.window(containing: now)
        return self.pool.withLock { pool in
            pool.numbers[number].map { self.numberRecord(number, $0, dayKey: day.key, now: now) }
        }
    }

    /// Numbers in ascending order, filtered, one page at a time.
    ///
    /// A page costs a binary search for the cursor plus one step per number looked at: O(page + log n)
    /// unfiltered and with prefix, area code or pattern filters (see ``NumberCriteria``), and O(the
    /// agent's numbers) for one agent's numbers. Filters that match rarely (a text, a tag, a state) look
    /// at the numbers after the cursor one by one; a page stops after ``listScanBudget`` of them, so it
    /// may hold fewer than `limit` numbers (even none) and still have a ``Page/nextCursor``: keep
    /// paging until that is `nil`.
    ///
    /// - Parameters:
    ///   - cursor: the ``Page/nextCursor`` of the previous page, `nil` for the first.
    ///   - limit: page size, 1…1000.
    public func listNumbers(
        _ filter: NumberFilter = NumberFilter(),
        cursor: String? = nil,
        limit: Int = 100
    ) throws(CallgateError) -> Page<NumberRecord> {
        try self.listNumbers(filter, cursor: cursor, limit: limit, budget: Self.listScanBudget)
    }

    /// The most numbers one page of ``listNumbers(_:cursor:limit:)`` looks at (about 20 ms under the
    /// pool lock when none of them matches).
    public static let listScanBudget = 50_000

    func listNumbers(
        _ filter: NumberFilter,
        cursor: String?,
        limit: Int,
        budget: Int
    ) throws(CallgateError) -> Page<NumberRecord> {
        let matcher = try filter.criteria.validated()
        let limit = try Self.validatePageSize(limit)
        let after = try Self.decodeNumberCursor(cursor)
        if let state = filter.state, !["available", "reserved", "assigned"].contains(state) {
            throw CallgateError(.invalidArgument, "state must be available, reserved or assigned, got '\(state)'")
        }
        let now = self.clock.now()
        let day = self.day.window(containing: now)
        return self.pool.withLock { pool in
            var items: [NumberRecord] = []
            var last: PhoneNumber?
            var more = false
            func consider(_ number: PhoneNumber, _ entry: inout NumberEntry) -> Bool {
                if let status = filter.status, entry.attributes.status != status { return true }
                let state = entry.state(at: now)
                if let wanted = filter.state, state.name != wanted { return true }
                if let agent = filter.agent, state != .assigned(agent: agent) { return true }
                guard matcher.matches(number, entry.attributes, holder: { self.holder(of: entry, state) }) else {
                    return true
                }
                if items.count == limit {
                    more = true
                    return false
                }
                items.append(self.numberRecord(number, entry, dayKey: day.key, now: now))
                last = number
                return true
            }
            if let agent = filter.agent {
                // One agent's numbers: its holdings, not the pool.
                var held = self.directory.lookup(agent)?.state.withLock { $0.holdings.map(\.number) } ?? []
                held.sort()
                for number in held where after.map({ number > $0 }) ?? true {
                    guard var entry = pool.numbers[number] else { continue }
                    if !consider(number, &entry) { break }
                }
            } else if let stoppedAt = pool.scan(
                matcher.ranges,
                after: after,
                budget: budget,
                digits: matcher.matchesDigits,
                consider
            ) {
                // Out of budget: the next page goes on after the last number looked at.
                return Page(items: items, nextCursor: String(stoppedAt.digits))
            }
            return Page(items: items, nextCursor: more ? last.map { String($0.digits) } : nil)
        }
    }

    /// The id and display name of the agent that holds a number, or that it is reserved for.
    func holder(of entry: NumberEntry, _ state: NumberState) -> (id: String, name: String)? {
        switch entry.lifecycle {
        case .assigned(let a):
            return (a.agent.id, a.agent.state.withLock { $0.record.displayName })
        case .reserved(let r):
            guard case .reserved = state, let id = r.agent else { return nil }
            return (id, self.directory.lookup(id)?.state.withLock { $0.record.displayName } ?? "")
        case .available:
            return nil
        }
    }

    // MARK: - Agents

    /// Creates an agent, or updates its name, principal and active flag.
    @discardableResult
    public func upsertAgent(_ input: AgentInput, actor: Actor) throws(CallgateError) -> AgentRecord {
        try Self.validateAgentID(input.id)
        try Self.validateText(input.displayName, field: "display name")
        try Self.validateText(input.principal, field: "principal")
        let now = self.clock.now()
        let fresh = AgentRecord(
            id: input.id,
            displayName: input.displayName,
            principal: input.principal,
            active: input.active,
            createdAt: now,
            modifiedAt: now
        )
        // The pool lock orders agent creation with assignments and keeps directory inserts serial.
        return try self.pool.withLock { (_) throws(CallgateError) -> AgentRecord in
            if let existing = self.directory.lookup(input.id) {
                return try existing.state.withLock { (state) throws(CallgateError) -> AgentRecord in
                    let before = state.record
                    var after = before
                    after.displayName = input.displayName
                    after.principal = input.principal
                    after.active = input.active
                    after.modifiedAt = now
                    _ = try self.changes.record(self.change(now, actor, .agentUpserted(before: before, after: after)))
                    state.record = after
                    return after
                }
            }
            _ = try self.changes.record(self.change(now, actor, .agentUpserted(before: nil, after: fresh)))
            _ = self.directory.lookupOrInsert(input.id) { AgentEntry(record: fresh) }
            return fresh
        }
    }

    /// Deactivates an agent: its calls are denied with `AGENT_INACTIVE`; its numbers stay assigned.
    @discardableResult
    public func deactivateAgent(_ id: String, actor: Actor) throws(CallgateError) -> AgentRecord {
        let now = self.clock.now()
        // Under the pool lock like upsertAgent, so a concurrent update is not lost.
        return try self.pool.withLock { (_) throws(CallgateError) -> AgentRecord in
            guard let entry = self.directory.lookup(id) else { throw Self.agentNotFound(id) }
            return try entry.state.withLock { (state) throws(CallgateError) -> AgentRecord in
                let before = state.record
                var after = before
                after.active = false
                after.modifiedAt = now
                _ = try self.changes.record(self.change(now, actor, .agentUpserted(before: before, after: after)))
                state.record = after
                return after
            }
        }
    }

    /// One agent, or `nil`.
    public func agent(_ id: String) -> AgentRecord? {
        self.directory.lookup(id)?.state.withLock { $0.record }
    }

    /// Agents by id, one page at a time.
    public func listAgents(
        includeInactive: Bool = true,
        cursor: String? = nil,
        limit: Int = 100
    ) throws(CallgateError) -> Page<AgentRecord> {
        let limit = try Self.validatePageSize(limit)
        let entries = self.directory.all().filter { cursor == nil || $0.id > cursor! }.sorted { $0.id < $1.id }
        var items: [AgentRecord] = []
        for entry in entries {
            let record = entry.state.withLock { $0.record }
            guard includeInactive || record.active else { continue }
            if items.count == limit { return Page(items: items, nextCursor: items.last?.id) }
            items.append(record)
        }
        return Page(items: items, nextCursor: nil)
    }

    /// The numbers an agent holds, with today's usage.
    public func assignments(of agentID: String) throws(CallgateError) -> [AssignmentRecord] {
        guard let entry = self.directory.lookup(agentID) else { throw Self.agentNotFound(agentID) }
        let now = self.clock.now()
        let day = self.day.window(containing: now)
        // The pool lock gives assignedAt/By; the agent lock gives terms and counters.
        return self.pool.withLock { pool in
            entry.state.withLock { state in
                state.holdings.map { h in
                    var since = now
                    var by = Actor.system
                    if case .assigned(let a)? = pool.numbers[h.number]?.lifecycle {
                        since = a.since
                        by = a.by
                    }
                    return Self.assignmentRecord(h, agent: agentID, since: since, by: by, dayKey: day.key)
                }
            }
        }
    }

    /// Every assignment of the organization (optionally of one agent), ordered by number, paged.
    public func listAssignments(
        agent: String? = nil,
        cursor: String? = nil,
        limit: Int = 100
    ) throws(CallgateError) -> Page<AssignmentRecord> {
        let limit = try Self.validatePageSize(limit)
        let after = try Self.decodeNumberCursor(cursor)
        let now = self.clock.now()
        let day = self.day.window(containing: now)
        return self.pool.withLock { pool in
            var items: [AssignmentRecord] = []
            for number in pool.ascending(after: after) {
                guard case .assigned(let a)? = pool.numbers[number]?.lifecycle else { continue }
                if let agent, a.agent.id != agent { continue }
                if items.count == limit {
                    return Page(items: items, nextCursor: items.last.map { String($0.number.digits) })
                }
                let record = a.agent.state.withLock { state in
                    state.holdingIndex(of: number).map {
                        Self.assignmentRecord(
                            state.holdings[$0],
                            agent: a.agent.id,
                            since: a.since,
                            by: a.by,
                            dayKey: day.key
                        )
                    }
                }
                if let record { items.append(record) }
            }
            return Page(items: items, nextCursor: nil)
        }
    }

    // MARK: - Validation

    static func attributes(for input: NumberInput) throws(CallgateError) -> NumberAttributes {
        guard let derived = CountryTable.country(of: input.number) else {
            throw CallgateError(.invalidArgument, "number \(input.number) belongs to no country")
        }
        if let given = input.country, given != derived {
            throw CallgateError(.invalidArgument, "country mismatch: the number is in \(derived), not \(given)")
        }
        do {
            try input.number.validatePossible()
        } catch {
            throw CallgateError(error, field: "number")
        }
        let provider = input.provider.trimmingSpaces
        guard !provider.isEmpty else { throw CallgateError(.invalidArgument, "provider must not be empty") }
        try Self.validateText(provider, field: "provider")
        try Self.validateText(input.location, field: "location")
        try Self.validateText(input.numberType, field: "number type")
        var tags: [String] = []
        for tag in input.tags {
            let t = tag.trimmingSpaces
            guard !t.isEmpty else { continue }
            try Self.validateText(t, field: "tag")
            if !tags.contains(t) { tags.append(t) }
        }
        guard tags.count <= Self.maximumTags else {
            throw CallgateError(.invalidArgument, "at most \(Self.maximumTags) tags per number, got \(tags.count)")
        }
        return NumberAttributes(
            provider: provider,
            country: derived,
            capabilities: input.capabilities,
            status: input.status,
            location: input.location.trimmingSpaces,
            tags: tags.sorted(),
            numberType: input.numberType.trimmingSpaces
        )
    }

    static func validateText(_ text: String, field: String) throws(CallgateError) {
        guard text.utf8.count <= Self.maximumTextLength else {
            throw CallgateError(.invalidArgument, "\(field) is longer than \(Self.maximumTextLength) bytes")
        }
        // Printable ASCII, the common case, needs no Unicode tables (bulk imports check millions).
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return }
        guard !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw CallgateError(.invalidArgument, "\(field) contains control characters")
        }
    }

    static func validateAgentID(_ id: String) throws(CallgateError) {
        guard !id.isEmpty else { throw CallgateError(.invalidArgument, "agent id must not be empty") }
        guard id.utf8.count <= 128 else { throw CallgateError(.invalidArgument, "agent id is longer than 128 bytes") }
        guard !id.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == " " }) else {
            throw CallgateError(.invalidArgument, "agent id must not contain blanks or control characters")
        }
    }

    static func validatePageSize(_ limit: Int) throws(CallgateError) -> Int {
        guard limit >= 1, limit <= 1000 else {
            throw CallgateError(.invalidArgument, "page size must be 1 to 1000, got \(limit)")
        }
        return limit
    }

    static func decodeNumberCursor(_ cursor: String?) throws(CallgateError) -> PhoneNumber? {
        guard let cursor, !cursor.isEmpty else { return nil }
        guard let digits = UInt64(cursor), let number = PhoneNumber(digits: digits) else {
            throw CallgateError(.invalidArgument, "invalid cursor '\(cursor)'")
        }
        return number
    }
}

extension String {
    /// The string without leading and trailing blanks (no Foundation needed).
    var trimmingSpaces: String {
        // Nothing to trim when both ends are printable ASCII other than a blank (the common case).
        if let first = self.utf8.first, let last = self.utf8.last, (0x21...0x7E).contains(first),
            (0x21...0x7E).contains(last)
        {
            return self
        }
        let scalars = self.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}

/// How many numbers an organization has in each lifecycle state, and how many agents.
public struct InventoryCounts: Hashable, Sendable {
    public var numbers = 0
    public var available = 0
    public var reserved = 0
    public var assigned = 0
    public var agents = 0

    public init() {}
}

extension Organization {
    /// Counts the pool by state, from the counters the pool keeps (``PoolCounts``): no scan of the
    /// numbers, one look-up per reserved number.
    public func inventoryCounts() -> InventoryCounts {
        let now = self.clock.now()
        var counts = InventoryCounts()
        self.pool.withLock { pool in
            let all = pool.poolCounts(now: now, pools: .none).all
            counts.numbers = pool.numbers.count
            counts.available = all.available + all.inactive
            counts.reserved = all.reserved
            counts.assigned = all.assigned
        }
        counts.agents = self.directory.all().count
        return counts
    }
}
