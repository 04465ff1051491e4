/// An assignment as the store keeps it, for rebuilding the engine on start.
public struct StoredAssignment: Sendable, Hashable {
    public var agent: String
    public var dailyLimit: UInt32
    public var allowedCountries: CountrySet
    public var assignedAt: Timestamp
    public var assignedBy: Actor
    public var callsSinceAssigned: UInt64

    public init(
        agent: String,
        dailyLimit: UInt32,
        allowedCountries: CountrySet,
        assignedAt: Timestamp,
        assignedBy: Actor,
        callsSinceAssigned: UInt64
    ) {
        self.agent = agent
        self.dailyLimit = dailyLimit
        self.allowedCountries = allowedCountries
        self.assignedAt = assignedAt
        self.assignedBy = assignedBy
        self.callsSinceAssigned = callsSinceAssigned
    }
}

extension Engine {
    /// Re-creates a stored organization without recording a change (the store is loading itself).
    @discardableResult
    public func restoreOrganization(_ record: OrganizationRecord) throws(CallgateError) -> Organization {
        try self.organizations.withLock { (orgs) throws(CallgateError) -> Organization in
            guard orgs[record.id] == nil else {
                throw CallgateError(.alreadyExists, "organization \(record.id) is loaded twice")
            }
            let org = try Organization(record: record, clock: self.clock, changes: self.changes)
            orgs[record.id] = org
            return org
        }
    }
}

extension Organization {
    /// Makes room for `numbers` numbers before restoring them (no rehashing while loading).
    public func reserveCapacity(numbers: Int) {
        self.pool.withLock { $0.reserveCapacity(numbers) }
    }

    /// Puts every agent's numbers back in assignment order (oldest first, as they were assigned), so
    /// that the caller-ID rotation goes on in the same order after a restart. Call after the last
    /// ``restoreNumber(_:assignment:)``.
    public func finishRestore() {
        self.pool.withLock { pool in
            for agent in self.directory.all() {
                agent.state.withLock { state in
                    state.holdings.sort { a, b in
                        let sa = pool.numbers[a.number]?.assignedSince ?? Timestamp(milliseconds: 0)
                        let sb = pool.numbers[b.number]?.assignedSince ?? Timestamp(milliseconds: 0)
                        return (sa, a.number) < (sb, b.number)
                    }
                    state.lastPicked = -1
                }
            }
        }
    }

    /// Re-creates a stored agent without recording a change.
    public func restoreAgent(_ record: AgentRecord) {
        _ = self.directory.lookupOrInsert(record.id) { AgentEntry(record: record) }
    }

    /// Re-creates a stored number, and its assignment when it has one, without recording a change.
    /// Agents must be restored first.
    ///
    /// - Throws: `failedPrecondition` when the assignment names an agent that is not loaded, or the
    ///   number is loaded twice.
    public func restoreNumber(_ record: NumberRecord, assignment: StoredAssignment?) throws(CallgateError) {
        try self.pool.withLock { (pool) throws(CallgateError) in
            guard pool.numbers[record.number] == nil else {
                throw CallgateError(.failedPrecondition, "number \(record.number) is loaded twice")
            }
            var lifecycle = PoolLifecycle.available
            if case .reserved(let r) = record.state { lifecycle = .reserved(r) }
            if let assignment {
                guard let agent = self.directory.lookup(assignment.agent) else {
                    throw CallgateError(
                        .failedPrecondition,
                        "number \(record.number) is assigned to agent '\(assignment.agent)', which is not stored"
                    )
                }
                agent.state.withLock { state in
                    state.holdings.append(
                        Holding(
                            number: record.number,
                            country: record.attributes.country,
                            areaCode: record.number.nanpAreaCode ?? 0,
                            active: record.attributes.status == .active,
                            dailyLimit: assignment.dailyLimit,
                            allowedCountries: assignment.allowedCountries,
                            counter: record.counter,
                            callsSinceAssigned: assignment.callsSinceAssigned
                        )
                    )
                }
                lifecycle = .assigned(AssignedTo(agent: agent, since: assignment.assignedAt, by: assignment.assignedBy))
            }
            pool.insert(
                record.number,
                NumberEntry(
                    attributes: record.attributes,
                    lifecycle: lifecycle,
                    releasedAt: record.releasedAt,
                    createdAt: record.createdAt,
                    createdBy: record.createdBy,
                    modifiedAt: record.modifiedAt,
                    modifiedBy: record.modifiedBy,
                    counter: record.counter
                )
            )
        }
    }
}
