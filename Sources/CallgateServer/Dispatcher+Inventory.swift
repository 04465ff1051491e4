package import CallgateCore
package import CallgateWire

/// Inventory sync, pools and bulk operations: wire ↔ engine.
extension Dispatcher {
    func syncNumbers(_ r: Wire.SyncNumbersRequest, _ p: Principal) throws(CallgateError) -> Reply {
        let policy: LocalOnlyPolicy
        if r.localOnly.isEmpty {
            policy = .keep
        } else if let value = LocalOnlyPolicy(rawValue: String(r.localOnly.map { $0 == "-" ? "_" : $0 })) {
            policy = value
        } else {
            throw CallgateError(
                .invalidArgument,
                "local_only must be keep, deactivate or delete_unassigned, got '\(r.localOnly)'"
            )
        }
        if !r.apply, !r.token.isEmpty {
            throw CallgateError(.invalidArgument, "a token goes with apply; a dry run makes one")
        }
        if r.apply, r.token.isEmpty {
            throw CallgateError(.invalidArgument, "apply needs the token of a dry run (token)")
        }
        let report = try p.organization.syncNumbers(
            csv: r.csv,
            defaultProvider: r.defaultProvider.isEmpty ? nil : r.defaultProvider,
            options: SyncOptions(localOnly: policy, terms: try Self.terms(r.terms), skipBadRows: r.skipBadRows),
            apply: r.apply ? r.token : nil,
            actor: p.actor
        )
        let entries = report.entries.lazy.filter { !r.omitUnchanged || $0.action != .unchanged }.map {
            Wire.SyncEntry(
                line: UInt32(clamping: $0.line),
                number: $0.number,
                action: $0.action.rawValue,
                changes: $0.changes.map { Wire.SyncFieldChange(field: $0.field, before: $0.before, after: $0.after) },
                reason: $0.reason
            )
        }
        return Reply(
            .syncNumbers(
                Wire.SyncNumbersResponse(
                    entries: Array(entries),
                    toAdd: UInt32(clamping: report.toAdd),
                    toUpdate: UInt32(clamping: report.toUpdate),
                    unchanged: UInt32(clamping: report.unchanged),
                    localOnly: UInt32(clamping: report.localOnly),
                    rejected: UInt32(clamping: report.rejected),
                    toAssign: UInt32(clamping: report.toAssign),
                    toRelease: UInt32(clamping: report.toRelease),
                    toDeactivate: UInt32(clamping: report.toDeactivate),
                    toDelete: UInt32(clamping: report.toDelete),
                    token: report.token,
                    applied: report.applied,
                    format: report.format.rawValue
                )
            ),
            ticket: report.ticket
        )
    }

    func poolCapacity(_ r: Wire.PoolCapacityRequest, _ p: Principal) throws(CallgateError) -> Reply {
        let page = try p.organization.poolCapacity(
            pool: r.tag.isEmpty ? nil : r.tag,
            cursor: r.cursor.isEmpty ? nil : r.cursor,
            limit: try Self.pageSize(r.pageSize)
        )
        return Reply(
            .poolCapacity(
                Wire.PoolCapacityResponse(pools: page.items.map(Self.poolInfo), nextCursor: page.nextCursor ?? "")
            )
        )
    }

    func setPoolThreshold(_ r: Wire.SetPoolThresholdRequest, _ p: Principal) throws(CallgateError) -> Reply {
        let pool = try p.organization.setPoolThreshold(
            try Self.required(r.tag, field: "tag"),
            threshold: r.threshold == 0 ? nil : r.threshold,
            actor: p.actor
        )
        return self.changed(.setPoolThreshold(Self.poolInfo(pool)))
    }

    func bulkAssign(_ r: Wire.BulkAssignRequest, _ p: Principal) throws(CallgateError) -> Reply {
        let report = try p.organization.bulkAssign(
            agents: r.agentIds,
            pool: try Self.criteria(r.criteria),
            perAgent: Int(r.perAgent),
            terms: try Self.terms(r.terms),
            allOrNothing: r.allOrNothing,
            actor: p.actor
        )
        return Reply(
            .bulkAssign(
                Wire.BulkAssignResponse(
                    rows: report.rows.map {
                        Wire.BulkAssignRow(
                            agentID: $0.agent,
                            numbers: $0.numbers.map { $0.e164 },
                            outcome: $0.failure == nil ? "assigned" : "rejected",
                            reason: $0.failure ?? ""
                        )
                    },
                    assigned: UInt32(clamping: report.assigned),
                    rejected: UInt32(clamping: report.failed)
                )
            ),
            ticket: report.ticket
        )
    }

    func bulkRelease(_ r: Wire.BulkReleaseRequest, _ p: Principal) throws(CallgateError) -> Reply {
        let report = try p.organization.bulkRelease(
            numbers: try Self.numbers(r.numbers),
            agents: r.agentIds,
            actor: p.actor
        )
        return Reply(.bulkRelease(Self.bulkResponse(report)), ticket: report.ticket)
    }

    func bulkUpdateStatus(_ r: Wire.BulkUpdateStatusRequest, _ p: Principal) throws(CallgateError) -> Reply {
        guard let status = try Self.status(r.status) else {
            throw CallgateError(.invalidArgument, "status must be active or inactive")
        }
        let target = try Self.bulkTarget(r.numbers, r.criteria, state: r.state, agent: r.agentID)
        guard let target else {
            throw CallgateError(.invalidArgument, "give numbers or a filter (criteria, state, agent_id)")
        }
        let report = try p.organization.bulkUpdateStatus(target, status: status, actor: p.actor)
        return Reply(.bulkUpdateStatus(Self.bulkResponse(report)), ticket: report.ticket)
    }

    func bulkDelete(_ r: Wire.BulkDeleteRequest, _ p: Principal) throws(CallgateError) -> Reply {
        let report = try p.organization.bulkDelete(
            try Self.bulkTarget(r.numbers, r.criteria, state: r.state, agent: ""),
            allUnassigned: r.allUnassigned,
            confirm: r.confirmDeleteAllUnassigned,
            skipHeld: r.skipHeld,
            actor: p.actor
        )
        return Reply(.bulkDelete(Self.bulkResponse(report)), ticket: report.ticket)
    }

    /// Numbers, or a filter when any of its fields is set, or `nil`.
    private static func bulkTarget(
        _ numbers: [String],
        _ criteria: Wire.NumberCriteria?,
        state: String,
        agent: String
    ) throws(CallgateError) -> BulkTarget? {
        let filter = NumberFilter(
            criteria: try Self.criteria(criteria),
            state: state.isEmpty ? nil : state,
            agent: agent.isEmpty ? nil : agent
        )
        let hasFilter = filter != NumberFilter()
        if !numbers.isEmpty {
            guard !hasFilter else { throw CallgateError(.invalidArgument, "give either numbers or a filter, not both") }
            return .numbers(try Self.numbers(numbers))
        }
        return hasFilter ? .filter(filter) : nil
    }

    static func poolInfo(_ pool: PoolCapacity) -> Wire.PoolInfo {
        Wire.PoolInfo(
            tag: pool.pool,
            available: UInt32(clamping: pool.counts.available),
            reserved: UInt32(clamping: pool.counts.reserved),
            assigned: UInt32(clamping: pool.counts.assigned),
            inactive: UInt32(clamping: pool.counts.inactive),
            total: UInt32(clamping: pool.counts.total),
            threshold: pool.threshold ?? 0,
            belowThreshold: pool.isBelowThreshold
        )
    }

    static func bulkResponse(_ report: BulkReport) -> Wire.BulkResponse {
        Wire.BulkResponse(
            rows: report.rows.map {
                Wire.BulkRow(
                    number: $0.number.e164,
                    agentID: $0.agent ?? "",
                    outcome: $0.outcome.rawValue,
                    reason: $0.reason
                )
            },
            changed: UInt32(clamping: report.changed),
            unchanged: UInt32(clamping: report.unchanged),
            skipped: UInt32(clamping: report.skipped)
        )
    }
}
