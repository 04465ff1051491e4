/// A tenant: its numbers, agents, assignments and counters, in memory.
///
/// All operations of one organization are methods here, so nothing can cross organizations: a server
/// resolves the organization of an API key once and works only through that object.
///
/// ## Locking
/// - Each agent has its own lock (``AgentEntry/state``). AuthorizeCall takes exactly one: the agent's.
///   The agent's numbers, their limits, countries, active flags and counters are in it.
/// - The pool lock (``pool``) guards the inventory: every number's attributes and lifecycle state.
///   Pool operations (pick, assign, release, update, delete, reset) take the pool lock, then the lock
///   of the agent concerned, so they are atomic with respect to AuthorizeCall.
/// - The agent directory is read without a lock; its inserts are serialized by a leaf lock.
///
/// Lock order: pool → agent → directory writer lock. Changes are recorded in the sink inside the lock that
/// orders them.
public final class Organization: Sendable {
    public let id: OrganizationID
    public let name: String
    /// The organization's calendar day, cached.
    public let day: OrganizationDay
    let createdAt: Timestamp
    let clock: any EngineClock
    let changes: any ChangeSink
    let directory = AgentDirectory()
    let pool: Locked<PoolState>
    /// Usage tallies that belong to no agent (Organization+Usage.swift).
    let usage = OrganizationUsage()

    init(record: OrganizationRecord, clock: any EngineClock, changes: any ChangeSink) throws(CallgateError) {
        self.id = record.id
        self.name = record.name
        self.createdAt = record.createdAt
        self.day = try OrganizationDay(timeZoneIdentifier: record.timeZone)
        self.clock = clock
        self.changes = changes
        self.pool = Locked(PoolState())
    }

    /// The organization as stored.
    public var record: OrganizationRecord {
        OrganizationRecord(
            id: self.id,
            name: self.name,
            timeZone: self.day.timeZoneIdentifier,
            createdAt: self.createdAt
        )
    }

    /// The local day now.
    public var today: DayWindow { self.day.window(containing: self.clock.now()) }

    // MARK: - AuthorizeCall (the hot path)

    /// Decides whether `agent` may call `destination` now, and from which of its numbers; an ALLOW
    /// counts the call.
    ///
    /// Without `from`, the caller ID is chosen among the agent's numbers by this rule:
    /// 1. eligible numbers only: active, destination country allowed, under the daily limit;
    /// 2. local presence: a number in the destination's country, and within NANP one with the
    ///    destination's area code, comes first;
    /// 3. then the most remaining calls today;
    /// 4. remaining ties rotate: the first tied number after the one picked last (in assignment order).
    ///
    /// When no number is eligible the reason is the first that applies: every number inactive
    /// (`NUMBER_INACTIVE`), no active number allows the country (`COUNTRY_NOT_ALLOWED`), else
    /// `DAILY_LIMIT_REACHED`.
    ///
    /// Takes one lock (the agent's), does no calendar math (the day is cached), allocates nothing.
    ///
    /// - Parameters:
    ///   - agentID: the dialer's id of the agent.
    ///   - destination: the number to call. Must have been validated as possible (see
    ///     ``PhoneNumber/parse(_:defaultRegion:)``); a number of no country is `INVALID_DESTINATION`.
    ///   - from: the caller ID the dialer wants; `nil` lets Callgate choose.
    ///   - dryRun: decide without counting.
    /// - Returns: ALLOW or DENY with the reason, the caller ID, the count, limit, and reset instant.
    /// - Throws: ``CallgateError`` `unavailable` only when the change sink (the store) refuses the
    ///   change; nothing is counted then.
    public func authorizeCall(
        agent agentID: String,
        destination: PhoneNumber,
        from: PhoneNumber? = nil,
        dryRun: Bool = false
    ) throws(CallgateError) -> CallDecision {
        guard let agent = self.directory.lookupUnretained(agentID) else {
            return self.denyUnknownAgent(.unknownAgent, dryRun: dryRun)
        }
        guard let country = CountryTable.country(of: destination) else {
            return agent._withUnsafeGuaranteedRef { self.denyInvalidDestination($0, from: from, dryRun: dryRun) }
        }
        let areaCode = destination.nanpAreaCode ?? 0
        let result: Result<CallDecision, CallgateError> = agent._withUnsafeGuaranteedRef { agent in
            do throws(CallgateError) {
                return .success(try self.decide(agent, destination, country, areaCode, from, dryRun))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// The decision under the agent's lock (see ``authorizeCall(agent:destination:from:dryRun:)``).
    @inline(__always)
    private func decide(
        _ agent: AgentStorage,
        _ destination: PhoneNumber,
        _ country: Country,
        _ areaCode: UInt16,
        _ from: PhoneNumber?,
        _ dryRun: Bool
    ) throws(CallgateError) -> CallDecision {
        try agent.withLock { (state) throws(CallgateError) -> CallDecision in
            // The clock is read under the agent's lock, so this agent's decisions see time in order:
            // a call stamped 23:59:59.999 cannot write its day's counter over one already on the next day.
            let now = self.clock.now()
            let day = self.day.window(containing: now)
            let decision = try self.decideLocked(&state, destination, country, areaCode, from, dryRun, now, day)
            // The usage report's tallies, under the lock already held: a scan of a few slots and an add.
            if !dryRun { state.usage.count(decision, now: now, day: day) }
            return decision
        }
    }

    /// The decision itself, with the agent's lock held and the clock read.
    @inline(__always)
    private func decideLocked(
        _ state: inout AgentState,
        _ destination: PhoneNumber,
        _ country: Country,
        _ areaCode: UInt16,
        _ from: PhoneNumber?,
        _ dryRun: Bool,
        _ now: Timestamp,
        _ day: DayWindow
    ) throws(CallgateError) -> CallDecision {
        guard state.record.active else { return .deny(.agentInactive, resetsAt: day.end, country: country) }
        guard !state.holdings.isEmpty else { return .deny(.noAssignment, resetsAt: day.end, country: country) }
        let choice: Int
        if let from {
            guard let index = state.holdingIndex(of: from) else {
                return .deny(.numberNotAssignedToAgent, resetsAt: day.end, country: country, callerID: from)
            }
            let h = state.holdings[index]
            let used = h.counter.count(on: day.key)
            let reason: DenyReason? =
                !h.active
                ? .numberInactive
                : !h.allowedCountries.contains(country)
                    ? .countryNotAllowed : used >= h.dailyLimit ? .dailyLimitReached : nil
            if let reason {
                return .deny(
                    reason,
                    resetsAt: day.end,
                    country: country,
                    callerID: from,
                    count: used,
                    limit: h.dailyLimit
                )
            }
            choice = index
        } else {
            let lastPicked = state.lastPicked
            let chosen = state.holdings.withUnsafeBufferPointer { holdings in
                Self.choose(
                    in: holdings,
                    lastPicked: lastPicked,
                    country: country,
                    areaCode: areaCode,
                    dayKey: day.key
                )
            }
            switch chosen {
            case .chosen(let index):
                choice = index
            case .denied(let reason, let index):
                let h = index.map { state.holdings[$0] }
                return .deny(
                    reason,
                    resetsAt: day.end,
                    country: country,
                    callerID: h?.number,
                    count: h?.counter.count(on: day.key) ?? 0,
                    limit: h?.dailyLimit ?? 0
                )
            }
        }

        let holding = state.holdings[choice]
        let count = holding.counter.count(on: day.key) + 1
        // Never move a counter to an earlier day (a wall clock stepped back).
        let dayKey = max(day.key, holding.counter.dayKey)
        guard !dryRun else {
            return CallDecision(
                denyReason: nil,
                callerID: holding.number,
                destinationCountry: country,
                count: count - 1,
                limit: holding.dailyLimit,
                resetsAt: day.end,
                ticket: nil
            )
        }
        // Record first: if the store refuses, nothing is counted.
        let ticket = try self.changes.record(
            ChangeRecord(
                organization: self.id,
                at: now,
                actor: nil,
                event: .counter(number: holding.number, dayKey: dayKey, count: count)
            )
        )
        state.holdings[choice].counter = DailyCounter(dayKey: dayKey, count: count)
        state.holdings[choice].callsSinceAssigned &+= 1
        state.lastPicked = choice
        return CallDecision(
            denyReason: nil,
            callerID: holding.number,
            destinationCountry: country,
            count: count,
            limit: holding.dailyLimit,
            resetsAt: day.end,
            ticket: ticket
        )
    }

    enum Choice {
        case chosen(Int)
        /// The reason, and the holding to report (for DAILY_LIMIT_REACHED: the best one at its limit).
        case denied(DenyReason, Int?)
    }

    /// The caller-ID selection rule (see ``authorizeCall(agent:destination:from:dryRun:)``).
    static func choose(
        in holdings: UnsafeBufferPointer<Holding>,
        lastPicked: Int,
        country: Country,
        areaCode: UInt16,
        dayKey: Int64
    ) -> Choice {
        let n = holdings.count
        var best = -1
        var bestPresence = -1
        var bestRemaining: UInt32 = 0
        var bestDistance = Int.max
        var anyActive = false
        var atLimit = -1
        var atLimitPresence = -1
        for i in 0..<n {
            let h = holdings[i]
            guard h.active else { continue }
            anyActive = true
            guard h.allowedCountries.contains(country) else { continue }
            let presence = h.country == country ? (areaCode != 0 && h.areaCode == areaCode ? 2 : 1) : 0
            let used = h.counter.count(on: dayKey)
            guard used < h.dailyLimit else {
                if presence > atLimitPresence {
                    atLimit = i
                    atLimitPresence = presence
                }
                continue
            }
            let remaining = h.dailyLimit - used
            // Distance after the last pick, so that ties go round in assignment order.
            var distance = i - lastPicked - 1
            if distance < 0 { distance += n }
            if presence > bestPresence
                || (presence == bestPresence
                    && (remaining > bestRemaining || (remaining == bestRemaining && distance < bestDistance)))
            {
                best = i
                bestPresence = presence
                bestRemaining = remaining
                bestDistance = distance
            }
        }
        if best >= 0 { return .chosen(best) }
        if !anyActive { return .denied(.numberInactive, nil) }
        if atLimit < 0 { return .denied(.countryNotAllowed, nil) }
        return .denied(.dailyLimitReached, atLimit)
    }
}
