/// A bulk operation (assign, release, status, delete) or an inventory sync, as one change record.
///
/// The engine records it once, under the pool lock, before changing anything: if the sink refuses it,
/// nothing changes. The store applies the parts in this order, in one transaction: releases, attribute
/// updates, additions, deletions, assignments (so a number can be released and re-assigned, or
/// released and deleted, in one change). Every number gets its own audit entry under the change's
/// action, and one more entry without a number carries the summary.
public struct BulkChange: Sendable {
    public enum Kind: String, Sendable {
        case sync
        case assign = "bulk.assign"
        case release = "bulk.release"
        case status = "bulk.status"
        case delete = "bulk.delete"
    }

    public var kind: Kind
    /// Assignments ended, as they were (calls included); released at the change's instant.
    public var released: [AssignmentRecord] = []
    public var updated: [(before: NumberRecord, after: NumberRecord)] = []
    public var added: [NumberRecord] = []
    public var deleted: [NumberRecord] = []
    public var assigned: [AssignmentRecord] = []
    /// The summary entry's counts, in order (`{"released": 12}`).
    public var summary: [(String, Int)] = []
    /// The summary entry's other values (`{"pool": "sales"}`).
    public var notes: [(String, String)] = []

    public init(kind: Kind) { self.kind = kind }
}

/// What a bulk operation did to one number.
public enum BulkOutcome: String, Sendable, Hashable {
    case assigned
    case released
    case updated
    case deleted
    /// Already as asked: nothing to do.
    case unchanged
    /// Left alone; the reason says why (assigned, reserved, not assigned…).
    case skipped
}

/// One number of a bulk operation's report.
public struct BulkRow: Sendable, Hashable {
    public var number: PhoneNumber
    /// The agent concerned (the holder of a released number), if any.
    public var agent: String?
    public var outcome: BulkOutcome
    public var reason: String

    public init(number: PhoneNumber, agent: String?, outcome: BulkOutcome, reason: String = "") {
        self.number = number
        self.agent = agent
        self.outcome = outcome
        self.reason = reason
    }
}

/// The report of a bulk release, status update or delete: a row per number looked at, in number order.
public struct BulkReport: Sendable {
    public var rows: [BulkRow] = []
    /// Numbers changed (released, updated, deleted).
    public var changed = 0
    public var unchanged = 0
    public var skipped = 0
    /// The change, `nil` when nothing changed.
    public var ticket: ChangeTicket?

    public init() {}
}

/// One agent's line of a bulk assign.
public struct BulkAssignRow: Sendable, Hashable {
    public var agent: String
    /// The numbers it got (none when it failed).
    public var numbers: [PhoneNumber]
    /// Why the agent got nothing; `nil` when it got its numbers.
    public var failure: String?
}

/// The report of a bulk assign: one row per agent, in the order given.
public struct BulkAssignReport: Sendable {
    public var rows: [BulkAssignRow] = []
    /// Numbers assigned in all.
    public var assigned = 0
    /// Agents that got nothing.
    public var failed = 0
    public var ticket: ChangeTicket?
}

/// Which numbers a bulk status update or delete applies to.
public enum BulkTarget: Sendable, Hashable {
    /// These numbers (each must be in the organization).
    case numbers([PhoneNumber])
    /// Every number matching the filter; the filter must set at least one field.
    case filter(NumberFilter)
}

extension Organization {
    /// The most agents in one bulk assign, and the most numbers one call may hand out.
    public static let maximumBulkAgents = 10_000
    public static let maximumBulkNumbers = 200_000

    // MARK: - Bulk assign

    /// Gives each agent `perAgent` available numbers from the pool that `criteria` selects (usually a
    /// tag), with the same terms, as **one** change.
    ///
    /// Numbers are handed out in PickNumber's order (released longest ago first, then by number), agent
    /// by agent in the order given. An agent fails (and gets nothing) when it is unknown, inactive,
    /// listed twice, or fewer than `perAgent` numbers are left.
    ///
    /// - Parameter allOrNothing: any failing agent fails the whole call (`failedPrecondition`, every
    ///   failure in the message) and nothing is assigned; otherwise the others are assigned and the
    ///   report says which agents failed and why.
    /// - Throws: `invalidArgument` for bad parameters; `failedPrecondition` (all or nothing);
    ///   `unavailable` when the store refuses the change (then nothing is assigned).
    public func bulkAssign(
        agents: [String],
        pool criteria: NumberCriteria,
        perAgent: Int,
        terms: AssignmentTerms,
        allOrNothing: Bool,
        actor: Actor
    ) throws(CallgateError) -> BulkAssignReport {
        let matcher = try criteria.validated()
        try Self.validate(terms)
        guard !agents.isEmpty else { throw CallgateError(.invalidArgument, "no agents given") }
        guard agents.count <= Self.maximumBulkAgents else {
            throw CallgateError(
                .invalidArgument,
                "at most \(Self.maximumBulkAgents) agents per bulk assign, got \(agents.count)"
            )
        }
        guard perAgent >= 1, perAgent <= 1000 else {
            throw CallgateError(.invalidArgument, "per_agent must be 1 to 1000, got \(perAgent)")
        }
        guard agents.count * perAgent <= Self.maximumBulkNumbers else {
            throw CallgateError(
                .invalidArgument,
                "at most \(Self.maximumBulkNumbers) numbers per bulk assign, asked for \(agents.count * perAgent)"
            )
        }
        for agent in agents { try Self.validateAgentID(agent) }
        let now = self.clock.now()
        let day = self.day.window(containing: now)
        return try self.pool.withLock { (pool) throws(CallgateError) -> BulkAssignReport in
            var candidates: [(released: Int64, number: PhoneNumber)] = []
            self.visitAvailable(&pool, matcher, now: now) { number, entry in
                candidates.append((entry.releasedAt?.milliseconds ?? Int64.min, number))
            }
            candidates.sort { ($0.released, $0.number.digits) < ($1.released, $1.number.digits) }
            var next = 0
            var report = BulkAssignReport()
            var plans: [PlannedAssign] = []
            var seen = Set<String>()
            for id in agents {
                var failure: String?
                let agent = self.directory.lookup(id)
                if !seen.insert(id).inserted {
                    failure = "listed more than once"
                } else if agent == nil {
                    failure = "no agent with this id"
                } else if !agent!.state.withLock({ $0.record.active }) {
                    failure = "the agent is inactive"
                } else if candidates.count - next < perAgent {
                    failure = "only \(candidates.count - next) available numbers left in the pool, \(perAgent) needed"
                }
                guard let agent, failure == nil else {
                    report.rows.append(BulkAssignRow(agent: id, numbers: [], failure: failure))
                    report.failed += 1
                    continue
                }
                var given: [PhoneNumber] = []
                for (_, number) in candidates[next..<(next + perAgent)] {
                    let country = pool.numbers[number]!.attributes.country
                    plans.append(
                        PlannedAssign(
                            number: number,
                            agent: agent,
                            dailyLimit: terms.dailyLimit,
                            allowedCountries: terms.allowedCountries ?? [country]
                        )
                    )
                    given.append(number)
                }
                next += perAgent
                report.rows.append(BulkAssignRow(agent: id, numbers: given, failure: nil))
                report.assigned += perAgent
            }
            if allOrNothing, report.failed > 0 {
                let failures = report.rows.filter { $0.failure != nil }
                var message =
                    "all or nothing: nothing was assigned; \(failures.count) of \(agents.count) agents failed: "
                message += failures.prefix(5).map { "'\($0.agent)': \($0.failure!)" }.joined(separator: "; ")
                if failures.count > 5 { message += "; and \(failures.count - 5) more" }
                throw CallgateError(.failedPrecondition, message)
            }
            guard !plans.isEmpty else { return report }
            var change = BulkChange(kind: .assign)
            change.assigned = plans.map { plan in
                let entry = pool.numbers[plan.number]!
                return Self.assignmentRecord(
                    plan,
                    country: entry.attributes.country,
                    counter: entry.counter,
                    since: now,
                    by: actor,
                    dayKey: day.key
                )
            }
            change.summary = [("agents", report.rows.count - report.failed), ("assigned", plans.count)]
            change.notes = Self.criteriaNotes(criteria)
            report.ticket = try self.changes.record(self.change(now, actor, .bulk(change)))
            self.applyAssigns(&pool, plans, now: now, actor: actor)
            return report
        }
    }

    // MARK: - Bulk release

    /// Releases many numbers as **one** change: the numbers given, or every number of the agents given.
    ///
    /// - Parameters:
    ///   - numbers: each must be in the organization (else `notFound`, nothing released); one that is
    ///     not assigned is reported `skipped`.
    ///   - agents: each must exist (else `notFound`); all their numbers are released.
    public func bulkRelease(
        numbers: [PhoneNumber] = [],
        agents: [String] = [],
        actor: Actor
    ) throws(CallgateError) -> BulkReport {
        guard numbers.isEmpty != agents.isEmpty else {
            throw CallgateError(.invalidArgument, "give either numbers or agents to release")
        }
        guard numbers.count <= Self.maximumBulkNumbers else {
            throw CallgateError(
                .invalidArgument,
                "at most \(Self.maximumBulkNumbers) numbers per bulk release, got \(numbers.count)"
            )
        }
        guard agents.count <= Self.maximumBulkAgents else {
            throw CallgateError(
                .invalidArgument,
                "at most \(Self.maximumBulkAgents) agents per bulk release, got \(agents.count)"
            )
        }
        let now = self.clock.now()
        let day = self.day.window(containing: now)
        return try self.pool.withLock { (pool) throws(CallgateError) -> BulkReport in
            var targets: [PhoneNumber]
            if agents.isEmpty {
                for number in numbers where pool.numbers[number] == nil { throw Self.numberNotFound(number) }
                targets = Array(Set(numbers))
            } else {
                targets = []
                for id in Set(agents) {
                    guard let agent = self.directory.lookup(id) else { throw Self.agentNotFound(id) }
                    targets += agent.state.withLock { $0.holdings.map(\.number) }
                }
            }
            targets.sort()
            var report = BulkReport()
            var releases: [PlannedRelease] = []
            for number in targets {
                let entry = pool.numbers[number]!
                guard case .assigned(let a) = entry.lifecycle, let plan = self.planRelease(number, a, dayKey: day.key)
                else {
                    let reason = entry.state(at: now).name == "reserved" ? "reserved, not assigned" : "not assigned"
                    report.rows.append(BulkRow(number: number, agent: nil, outcome: .skipped, reason: reason))
                    report.skipped += 1
                    continue
                }
                releases.append(plan)
                report.rows.append(BulkRow(number: number, agent: a.agent.id, outcome: .released))
                report.changed += 1
            }
            guard !releases.isEmpty else { return report }
            var change = BulkChange(kind: .release)
            change.released = releases.map(\.record)
            change.summary = [("released", releases.count), ("skipped", report.skipped)]
            report.ticket = try self.changes.record(self.change(now, actor, .bulk(change)))
            self.applyReleases(&pool, releases, now: now)
            return report
        }
    }

    // MARK: - Bulk status

    /// Sets the status of many numbers as **one** change. Numbers made inactive stop authorizing at once.
    ///
    /// - Throws: `notFound` for a listed number not in the organization, `invalidArgument` for an empty
    ///   filter; nothing changes then.
    public func bulkUpdateStatus(
        _ target: BulkTarget,
        status: NumberStatus,
        actor: Actor
    ) throws(CallgateError) -> BulkReport {
        let now = self.clock.now()
        let day = self.day.window(containing: now)
        let select = try self.selector(target)
        return try self.pool.withLock { (pool) throws(CallgateError) -> BulkReport in
            let targets = try select(&pool, now)
            var report = BulkReport()
            var updated: [(before: NumberRecord, after: NumberRecord)] = []
            var entries: [(PhoneNumber, NumberEntry)] = []
            for number in targets {
                var entry = pool.numbers[number]!
                guard entry.attributes.status != status else {
                    report.rows.append(BulkRow(number: number, agent: nil, outcome: .unchanged))
                    report.unchanged += 1
                    continue
                }
                let before = self.numberRecord(number, entry, dayKey: day.key, now: now)
                entry.attributes.status = status
                entry.modifiedAt = now
                entry.modifiedBy = actor
                var after = before
                after.attributes = entry.attributes
                after.modifiedAt = now
                after.modifiedBy = actor
                updated.append((before, after))
                entries.append((number, entry))
                report.rows.append(
                    BulkRow(number: number, agent: nil, outcome: .updated, reason: "status: \(status.rawValue)")
                )
                report.changed += 1
            }
            guard !updated.isEmpty else { return report }
            var change = BulkChange(kind: .status)
            change.updated = updated
            change.summary = [("updated", updated.count), ("unchanged", report.unchanged)]
            change.notes = [("status", status.rawValue)]
            report.ticket = try self.changes.record(self.change(now, actor, .bulk(change)))
            for (number, entry) in entries {
                let previous = pool.numbers[number]?.attributes.status
                pool.replace(number, with: entry)
                Self.tellHolder(number, entry, previousStatus: previous)
            }
            return report
        }
    }

    // MARK: - Bulk delete

    /// Deletes many unassigned numbers as **one** change.
    ///
    /// - Parameters:
    ///   - target: the numbers (each must be in the organization, else `notFound`), or a filter; `nil`
    ///     with `allUnassigned`.
    ///   - allUnassigned: every unassigned, unreserved number of the organization; needs `confirm`.
    ///   - skipHeld: with a number list, assigned or reserved numbers are reported `skipped` instead of
    ///     failing the call (`failedPrecondition`). A filter always skips them.
    public func bulkDelete(
        _ target: BulkTarget?,
        allUnassigned: Bool = false,
        confirm: Bool = false,
        skipHeld: Bool = false,
        actor: Actor
    ) throws(CallgateError) -> BulkReport {
        if allUnassigned {
            guard target == nil else {
                throw CallgateError(.invalidArgument, "give numbers, a filter or all_unassigned, not several")
            }
            guard confirm else {
                throw CallgateError(
                    .failedPrecondition,
                    "deleting all unassigned numbers needs an explicit confirmation (confirm_delete_all_unassigned)"
                )
            }
        }
        guard allUnassigned || target != nil else {
            throw CallgateError(.invalidArgument, "give the numbers to delete, a filter, or all_unassigned")
        }
        let select = try self.selector(target)
        let skip: Bool
        if case .numbers = target { skip = skipHeld } else { skip = true }
        let now = self.clock.now()
        return try self.pool.withLock { (pool) throws(CallgateError) -> BulkReport in
            let targets = try select(&pool, now)
            var report = BulkReport()
            var deleted: [NumberRecord] = []
            for number in targets {
                let entry = pool.numbers[number]!
                let state = entry.state(at: now)
                guard case .available = state else {
                    guard skip else {
                        throw CallgateError(
                            .failedPrecondition,
                            "number \(number) is \(state.name); release it before deleting (or skip held numbers)"
                        )
                    }
                    var agent: String?
                    if case .assigned(let id) = state { agent = id }
                    report.rows.append(BulkRow(number: number, agent: agent, outcome: .skipped, reason: state.name))
                    report.skipped += 1
                    continue
                }
                deleted.append(self.numberRecord(number, entry, dayKey: 0, now: now))
                report.rows.append(BulkRow(number: number, agent: nil, outcome: .deleted))
                report.changed += 1
            }
            guard !deleted.isEmpty else { return report }
            var change = BulkChange(kind: .delete)
            change.deleted = deleted
            change.summary = [("deleted", deleted.count), ("skipped", report.skipped)]
            if allUnassigned { change.notes = [("scope", "all unassigned")] }
            report.ticket = try self.changes.record(self.change(now, actor, .bulk(change)))
            pool.remove(contentsOf: deleted.map(\.number))
            return report
        }
    }

    // MARK: - Shared steps (under the pool lock)

    /// A release worked out before the change is recorded.
    struct PlannedRelease {
        var number: PhoneNumber
        var holder: AgentEntry
        var record: AssignmentRecord
    }

    /// An assignment worked out before the change is recorded; the holding is made when it is applied
    /// (from the number's counter then, which a release in the same change has just brought back).
    struct PlannedAssign {
        var number: PhoneNumber
        var agent: AgentEntry
        var dailyLimit: UInt32
        var allowedCountries: CountrySet
    }

    /// The assignment record of a held number (read under its holder's lock), or `nil` if the holder
    /// has lost it (never, while the pool lock is held).
    func planRelease(_ number: PhoneNumber, _ a: AssignedTo, dayKey: Int64) -> PlannedRelease? {
        let record = a.agent.state.withLock { state in
            state.holdingIndex(of: number).map {
                Self.assignmentRecord(state.holdings[$0], agent: a.agent.id, since: a.since, by: a.by, dayKey: dayKey)
            }
        }
        return record.map { PlannedRelease(number: number, holder: a.agent, record: $0) }
    }

    /// The record of a planned assignment, as it will be made.
    static func assignmentRecord(
        _ plan: PlannedAssign,
        country: Country,
        counter: DailyCounter,
        since: Timestamp,
        by actor: Actor,
        dayKey: Int64
    ) -> AssignmentRecord {
        let holding = Holding(
            number: plan.number,
            country: country,
            areaCode: plan.number.nanpAreaCode ?? 0,
            active: true,
            dailyLimit: plan.dailyLimit,
            allowedCountries: plan.allowedCountries,
            counter: counter,
            callsSinceAssigned: 0
        )
        return Self.assignmentRecord(holding, agent: plan.agent.id, since: since, by: actor, dayKey: dayKey)
    }

    /// Ends the planned assignments: one lock per agent; each number's counter comes back to the pool.
    func applyReleases(_ pool: inout PoolState, _ releases: [PlannedRelease], now: Timestamp) {
        var byAgent: [String: (agent: AgentEntry, numbers: Set<PhoneNumber>)] = [:]
        for r in releases { byAgent[r.holder.id, default: (r.holder, [])].numbers.insert(r.number) }
        for (_, group) in byAgent {
            let removed = group.agent.state.withLock { $0.removeHoldings(group.numbers) }
            for holding in removed {
                guard var entry = pool.numbers[holding.number] else { continue }
                entry.counter = holding.counter
                entry.lifecycle = .available
                entry.releasedAt = now
                pool.replace(holding.number, with: entry)
            }
        }
    }

    /// Makes the planned assignments: one lock per agent.
    func applyAssigns(_ pool: inout PoolState, _ plans: [PlannedAssign], now: Timestamp, actor: Actor) {
        var byAgent: [String: (agent: AgentEntry, holdings: [Holding])] = [:]
        for plan in plans {
            guard var entry = pool.numbers[plan.number] else { continue }
            let holding = Holding(
                number: plan.number,
                country: entry.attributes.country,
                areaCode: plan.number.nanpAreaCode ?? 0,
                active: entry.attributes.status == .active,
                dailyLimit: plan.dailyLimit,
                allowedCountries: plan.allowedCountries,
                counter: entry.counter,
                callsSinceAssigned: 0
            )
            byAgent[plan.agent.id, default: (plan.agent, [])].holdings.append(holding)
            entry.lifecycle = .assigned(AssignedTo(agent: plan.agent, since: now, by: actor))
            pool.replace(plan.number, with: entry)
        }
        for (_, group) in byAgent {
            group.agent.state.withLock { $0.addHoldings(group.holdings) }
        }
    }

    /// Visits every available, active number that `matcher` selects (the digit ranges first, when it
    /// has any). PickNumber and bulk assign use it.
    func visitAvailable(
        _ pool: inout PoolState,
        _ matcher: NumberMatcher,
        now: Timestamp,
        _ body: (PhoneNumber, NumberEntry) -> Void
    ) {
        func consider(_ number: PhoneNumber, _ entry: inout NumberEntry) -> Bool {
            if entry.attributes.status == .active, entry.isAvailable(at: now), matcher.matches(number, entry.attributes)
            {
                body(number, entry)
            }
            return true
        }
        if matcher.ranges != nil {
            pool.scan(matcher.ranges, after: nil, digits: matcher.matchesDigits, consider)
        } else {
            for (number, entry) in pool.numbers {
                var entry = entry
                _ = consider(number, &entry)
            }
        }
    }

    /// Resolves a bulk target to numbers (in number order) under the pool lock.
    func selector(
        _ target: BulkTarget?
    ) throws(CallgateError) -> (inout PoolState, Timestamp) throws(CallgateError) -> [PhoneNumber] {
        switch target {
        case nil:
            return { pool, now in pool.numbers.filter { $0.value.isAvailable(at: now) }.map(\.key).sorted() }
        case .numbers(let numbers):
            guard !numbers.isEmpty else { throw CallgateError(.invalidArgument, "no numbers given") }
            guard numbers.count <= Self.maximumBulkNumbers else {
                throw CallgateError(.invalidArgument, "at most \(Self.maximumBulkNumbers) numbers per call")
            }
            let unique = Array(Set(numbers)).sorted()
            return { (pool, _) throws(CallgateError) -> [PhoneNumber] in
                for number in unique where pool.numbers[number] == nil { throw Self.numberNotFound(number) }
                return unique
            }
        case .filter(let filter):
            guard filter != NumberFilter() else {
                throw CallgateError(
                    .invalidArgument,
                    "an empty filter matches every number: set at least one criterion"
                )
            }
            let matcher = try filter.criteria.validated()
            if let state = filter.state, !["available", "reserved", "assigned"].contains(state) {
                throw CallgateError(.invalidArgument, "state must be available, reserved or assigned, got '\(state)'")
            }
            return { pool, now in
                var found: [PhoneNumber] = []
                pool.scan(matcher.ranges, after: nil, digits: matcher.matchesDigits) { number, entry in
                    if let status = filter.status, entry.attributes.status != status { return true }
                    let state = entry.state(at: now)
                    if let wanted = filter.state, state.name != wanted { return true }
                    if let agent = filter.agent, state != .assigned(agent: agent) { return true }
                    if matcher.matches(number, entry.attributes, holder: { self.holder(of: entry, state) }) {
                        found.append(number)
                    }
                    return true
                }
                return found
            }
        }
    }

    /// The pool criteria of a bulk assign, for its audit summary.
    static func criteriaNotes(_ c: NumberCriteria) -> [(String, String)] {
        var notes: [(String, String)] = []
        if let tag = c.tag { notes.append(("pool", tag)) }
        if let country = c.country { notes.append(("country", country.code)) }
        if let prefix = c.prefix { notes.append(("prefix", prefix)) }
        if let areaCode = c.areaCode { notes.append(("area_code", areaCode)) }
        if let location = c.location { notes.append(("location", location)) }
        if let provider = c.provider { notes.append(("provider", provider)) }
        return notes
    }
}

extension AgentState {
    /// Removes the holdings of these numbers and returns them. The rotation goes on from where it was:
    /// the holding picked last keeps being the reference when it stays, else the one before it.
    mutating func removeHoldings(_ numbers: Set<PhoneNumber>) -> [Holding] {
        var removed: [Holding] = []
        var kept: [Holding] = []
        kept.reserveCapacity(self.holdings.count)
        var lastPicked = -1
        for (i, holding) in self.holdings.enumerated() {
            if numbers.contains(holding.number) {
                removed.append(holding)
            } else {
                kept.append(holding)
                if i <= self.lastPicked { lastPicked = kept.count - 1 }
            }
        }
        self.holdings = kept
        self.lastPicked = lastPicked
        return removed
    }
}
