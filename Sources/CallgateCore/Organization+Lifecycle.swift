/// What to do with a picked number.
public enum PickMode: Sendable, Hashable {
    /// Hold it for `seconds`, optionally for a named agent; assign it later with the reservation token.
    case reserve(seconds: Int64, agent: String? = nil)
    /// Assign it straight to an agent.
    case assign(agent: String, terms: AssignmentTerms)
}

/// The result of PickNumber.
public struct PickResult: Sendable, Hashable {
    public var number: NumberRecord
    /// Set when the number was reserved.
    public var reservation: Reservation?
    /// Set when the number was assigned.
    public var assignment: AssignmentRecord?
    public var ticket: ChangeTicket
}

extension Organization {
    // MARK: - Assign / release

    /// Assigns an available number to an agent.
    ///
    /// - Parameters:
    ///   - reservation: the token from a reservation of this number, required while someone holds it.
    /// - Throws: ``CallgateError``: `notFound` (number or agent), `failedPrecondition` (already assigned,
    ///   reserved for someone else, inactive number or agent), `invalidArgument` (limit), `unavailable`.
    @discardableResult
    public func assign(
        _ number: PhoneNumber,
        to agentID: String,
        terms: AssignmentTerms = AssignmentTerms(),
        reservation: UInt64? = nil,
        actor: Actor
    ) throws(CallgateError) -> (AssignmentRecord, ChangeTicket) {
        try Self.validate(terms)
        let now = self.clock.now()
        return try self.pool.withLock { (pool) throws(CallgateError) in
            guard let entry = pool.numbers[number] else { throw Self.numberNotFound(number) }
            switch entry.lifecycle {
            case .assigned(let a):
                throw CallgateError(
                    .failedPrecondition,
                    "number \(number) is already assigned to agent '\(a.agent.id)'"
                )
            case .reserved(let r) where r.expiresAt > now && r.id != reservation:
                throw CallgateError(
                    .failedPrecondition,
                    "number \(number) is reserved until \(r.expiresAt.iso8601); pass its reservation token"
                )
            case .reserved(let r) where r.expiresAt > now && r.agent != nil && r.agent != agentID:
                throw CallgateError(
                    .failedPrecondition,
                    "number \(number) is reserved for agent '\(r.agent ?? "")', not '\(agentID)'"
                )
            default:
                break
            }
            return try self.assignLocked(&pool, number, entry, to: agentID, terms: terms, now: now, actor: actor)
        }
    }

    /// Assigns under the pool lock; the caller checked that the number may be handed out.
    func assignLocked(
        _ pool: inout PoolState,
        _ number: PhoneNumber,
        _ entry: NumberEntry,
        to agentID: String,
        terms: AssignmentTerms,
        now: Timestamp,
        actor: Actor
    ) throws(CallgateError) -> (AssignmentRecord, ChangeTicket) {
        guard entry.attributes.status == .active else {
            throw CallgateError(.failedPrecondition, "number \(number) is inactive and cannot be assigned")
        }
        guard let agent = self.directory.lookup(agentID) else { throw Self.agentNotFound(agentID) }
        let allowed = terms.allowedCountries ?? [entry.attributes.country]
        let day = self.day.window(containing: now)
        let (record, ticket) = try agent.state.withLock {
            (state) throws(CallgateError) -> (AssignmentRecord, ChangeTicket) in
            guard state.record.active else {
                throw CallgateError(.failedPrecondition, "agent '\(agentID)' is inactive")
            }
            let holding = Holding(
                number: number,
                country: entry.attributes.country,
                areaCode: number.nanpAreaCode ?? 0,
                active: true,
                dailyLimit: terms.dailyLimit,
                allowedCountries: allowed,
                counter: entry.counter,
                callsSinceAssigned: 0
            )
            let record = Self.assignmentRecord(holding, agent: agentID, since: now, by: actor, dayKey: day.key)
            let ticket = try self.changes.record(self.change(now, actor, .assigned(record)))
            state.addHoldings(CollectionOfOne(holding))
            return (record, ticket)
        }
        var updated = entry
        updated.lifecycle = .assigned(AssignedTo(agent: agent, since: now, by: actor))
        pool.replace(number, with: updated)
        return (record, ticket)
    }

    /// Gives a number back to the pool (or cancels its reservation). Its counter stays with the number,
    /// so re-assigning it the same day does not reset the count.
    ///
    /// - Parameter expectedAgent: when set, the release fails unless this agent holds the number.
    @discardableResult
    public func release(
        _ number: PhoneNumber,
        expectedAgent: String? = nil,
        actor: Actor
    ) throws(CallgateError) -> ChangeTicket {
        let now = self.clock.now()
        let day = self.day.window(containing: now)
        return try self.pool.withLock { (pool) throws(CallgateError) -> ChangeTicket in
            guard var entry = pool.numbers[number] else { throw Self.numberNotFound(number) }
            switch entry.lifecycle {
            case .available:
                throw CallgateError(.failedPrecondition, "number \(number) is not assigned")
            case .reserved(let r):
                guard r.expiresAt > now else {
                    throw CallgateError(
                        .failedPrecondition,
                        "number \(number) is not assigned (its reservation expired)"
                    )
                }
                if let expectedAgent, r.agent != expectedAgent {
                    throw CallgateError(
                        .failedPrecondition,
                        "number \(number) is not reserved for agent '\(expectedAgent)'"
                    )
                }
                let ticket = try self.changes.record(self.change(now, actor, .reservationCancelled(number: number, r)))
                entry.lifecycle = .available
                pool.replace(number, with: entry)
                return ticket
            case .assigned(let a):
                if let expectedAgent, a.agent.id != expectedAgent {
                    throw CallgateError(
                        .failedPrecondition,
                        "number \(number) is assigned to agent '\(a.agent.id)', not '\(expectedAgent)'"
                    )
                }
                let (holding, ticket) = try a.agent.state.withLock {
                    (state) throws(CallgateError) -> (Holding, ChangeTicket) in
                    guard let index = state.holdingIndex(of: number) else {
                        throw CallgateError(.internal, "number \(number) is missing from agent '\(a.agent.id)'")
                    }
                    let holding = state.holdings[index]
                    let record = Self.assignmentRecord(
                        holding,
                        agent: a.agent.id,
                        since: a.since,
                        by: a.by,
                        dayKey: day.key
                    )
                    let ticket = try self.changes.record(self.change(now, actor, .released(record, releasedAt: now)))
                    state.holdings.remove(at: index)
                    if state.lastPicked >= index { state.lastPicked -= 1 }
                    return (holding, ticket)
                }
                entry.counter = holding.counter
                entry.lifecycle = .available
                entry.releasedAt = now
                pool.replace(number, with: entry)
                return ticket
            }
        }
    }

    /// Changes the limit and/or countries of an assignment.
    @discardableResult
    public func updateAssignment(
        _ number: PhoneNumber,
        dailyLimit: UInt32? = nil,
        allowedCountries: CountrySet? = nil,
        actor: Actor
    ) throws(CallgateError) -> AssignmentRecord {
        if let dailyLimit { try Self.validate(AssignmentTerms(dailyLimit: dailyLimit)) }
        if let allowedCountries, allowedCountries.isEmpty {
            throw CallgateError(.invalidArgument, "allowed countries must not be empty")
        }
        let now = self.clock.now()
        let day = self.day.window(containing: now)
        return try self.pool.withLock { (pool) throws(CallgateError) -> AssignmentRecord in
            guard let entry = pool.numbers[number] else { throw Self.numberNotFound(number) }
            guard case .assigned(let a) = entry.lifecycle else {
                throw CallgateError(.failedPrecondition, "number \(number) is not assigned")
            }
            return try a.agent.state.withLock { (state) throws(CallgateError) -> AssignmentRecord in
                guard let index = state.holdingIndex(of: number) else {
                    throw CallgateError(.internal, "number \(number) is missing from agent '\(a.agent.id)'")
                }
                let before = Self.assignmentRecord(
                    state.holdings[index],
                    agent: a.agent.id,
                    since: a.since,
                    by: a.by,
                    dayKey: day.key
                )
                var holding = state.holdings[index]
                if let dailyLimit { holding.dailyLimit = dailyLimit }
                if let allowedCountries { holding.allowedCountries = allowedCountries }
                let after = Self.assignmentRecord(holding, agent: a.agent.id, since: a.since, by: a.by, dayKey: day.key)
                _ = try self.changes.record(self.change(now, actor, .assignmentUpdated(before: before, after: after)))
                state.holdings[index] = holding
                return after
            }
        }
    }

    // MARK: - PickNumber

    /// Atomically takes one available, active number matching `criteria` and reserves or assigns it.
    ///
    /// Among matches it prefers the number released longest ago (never-assigned numbers first, then by
    /// number), which spreads use over the pool (reputation rotation). Two concurrent pickers never get
    /// the same number: the choice and the state change happen under the pool lock.
    ///
    /// - Throws: ``CallgateError`` `notFound` when nothing matches, `invalidArgument` for bad criteria
    ///   or TTL, and the errors of ``assign(_:to:terms:reservation:actor:)``.
    public func pickNumber(
        _ criteria: NumberCriteria,
        mode: PickMode,
        actor: Actor
    ) throws(CallgateError) -> PickResult {
        let matcher = try criteria.validated()
        switch mode {
        case .reserve(let seconds, _):
            guard seconds > 0, seconds <= 7 * 86_400 else {
                throw CallgateError(.invalidArgument, "reservation time must be 1 s to 7 days, got \(seconds) s")
            }
        case .assign(let agent, let terms):
            try Self.validate(terms)
            guard self.directory.lookup(agent) != nil else { throw Self.agentNotFound(agent) }
        }
        let now = self.clock.now()
        let day = self.day.window(containing: now)
        return try self.pool.withLock { (pool) throws(CallgateError) -> PickResult in
            var best: (number: PhoneNumber, releasedAt: Int64)?
            // Prefix, area code or pattern: only the numbers in those ranges of the order.
            self.visitAvailable(&pool, matcher, now: now) { number, entry in
                let released = entry.releasedAt?.milliseconds ?? Int64.min
                if let b = best, (b.releasedAt, b.number.digits) <= (released, number.digits) { return }
                best = (number, released)
            }
            guard let number = best?.number, var entry = pool.numbers[number] else {
                throw CallgateError(.notFound, "no available active number matches the criteria")
            }
            switch mode {
            case .reserve(let seconds, let agent):
                // Random tokens: unguessable, and unique across restarts without stored state.
                let reservation = Reservation(
                    id: UInt64.random(in: 1...(UInt64.max >> 1)),
                    expiresAt: now.adding(seconds: seconds),
                    agent: agent,
                    reservedBy: actor
                )
                let ticket = try self.changes.record(self.change(now, actor, .reserved(number: number, reservation)))
                entry.lifecycle = .reserved(reservation)
                pool.replace(number, with: entry)
                return PickResult(
                    number: self.numberRecord(number, entry, dayKey: day.key, now: now),
                    reservation: reservation,
                    assignment: nil,
                    ticket: ticket
                )
            case .assign(let agent, let terms):
                let (assignment, ticket) = try self.assignLocked(
                    &pool,
                    number,
                    entry,
                    to: agent,
                    terms: terms,
                    now: now,
                    actor: actor
                )
                return PickResult(
                    number: self.numberRecord(number, pool.numbers[number]!, dayKey: day.key, now: now),
                    reservation: nil,
                    assignment: assignment,
                    ticket: ticket
                )
            }
        }
    }

    // MARK: - Counters

    /// Sets today's count of the given numbers (all numbers of the organization when `nil`) to zero.
    ///
    /// One audited `counters.reset` change lists the numbers; each assigned number's zero is also
    /// recorded inside its holder's lock, so that it is ordered with that agent's calls.
    ///
    /// - Returns: how many counters were reset.
    @discardableResult
    public func resetCounters(_ numbers: [PhoneNumber]? = nil, actor: Actor) throws(CallgateError) -> Int {
        let now = self.clock.now()
        let day = self.day.window(containing: now)
        return try self.pool.withLock { (pool) throws(CallgateError) -> Int in
            let targets = numbers ?? Array(pool.numbers.keys)
            for number in targets where pool.numbers[number] == nil { throw Self.numberNotFound(number) }
            _ = try self.changes.record(
                self.change(now, actor, .countersReset(numbers: targets.sorted(), dayKey: day.key))
            )
            for number in targets {
                guard var entry = pool.numbers[number] else { continue }
                if case .assigned(let a) = entry.lifecycle {
                    try a.agent.state.withLock { (state) throws(CallgateError) in
                        guard let i = state.holdingIndex(of: number) else { return }
                        let dayKey = max(day.key, state.holdings[i].counter.dayKey)
                        _ = try self.changes.record(
                            ChangeRecord(
                                organization: self.id,
                                at: now,
                                actor: nil,
                                event: .counter(number: number, dayKey: dayKey, count: 0)
                            )
                        )
                        state.holdings[i].counter = DailyCounter(dayKey: dayKey, count: 0)
                    }
                } else {
                    entry.counter = DailyCounter(dayKey: day.key, count: 0)
                    pool.replace(number, with: entry)
                }
            }
            return targets.count
        }
    }

    // MARK: - Helpers

    static func validate(_ terms: AssignmentTerms) throws(CallgateError) {
        guard terms.dailyLimit <= AssignmentTerms.maximumDailyLimit else {
            throw CallgateError(
                .invalidArgument,
                "daily limit \(terms.dailyLimit) is above the maximum of \(AssignmentTerms.maximumDailyLimit)"
            )
        }
        if let countries = terms.allowedCountries, countries.isEmpty {
            throw CallgateError(
                .invalidArgument,
                "allowed countries must not be empty (omit them for the number's own country)"
            )
        }
    }

    static func numberNotFound(_ number: PhoneNumber) -> CallgateError {
        CallgateError(.notFound, "number \(number) is not in this organization")
    }

    static func agentNotFound(_ id: String) -> CallgateError {
        CallgateError(.notFound, "no agent with id '\(id)' in this organization")
    }

    func change(_ at: Timestamp, _ actor: Actor, _ event: ChangeEvent) -> ChangeRecord {
        ChangeRecord(organization: self.id, at: at, actor: actor, event: event)
    }

    static func assignmentRecord(
        _ h: Holding,
        agent: String,
        since: Timestamp,
        by: Actor,
        dayKey: Int64
    ) -> AssignmentRecord {
        AssignmentRecord(
            number: h.number,
            agent: agent,
            dailyLimit: h.dailyLimit,
            allowedCountries: h.allowedCountries,
            assignedAt: since,
            assignedBy: by,
            callsSinceAssigned: h.callsSinceAssigned,
            countToday: h.counter.count(on: dayKey),
            counter: h.counter,
            numberActive: h.active
        )
    }

    /// The public view of a pool entry (takes the holder's lock for an assigned number's counter).
    func numberRecord(_ number: PhoneNumber, _ entry: NumberEntry, dayKey: Int64, now: Timestamp) -> NumberRecord {
        var counter = entry.counter
        if case .assigned(let a) = entry.lifecycle {
            counter =
                a.agent.state.withLock { state in state.holdingIndex(of: number).map { state.holdings[$0].counter } }
                ?? counter
        }
        return NumberRecord(
            number: number,
            attributes: entry.attributes,
            state: entry.state(at: now),
            releasedAt: entry.releasedAt,
            createdAt: entry.createdAt,
            createdBy: entry.createdBy,
            modifiedAt: entry.modifiedAt,
            modifiedBy: entry.modifiedBy,
            counter: counter
        )
    }
}
