import CallgateCore
import CallgateStore
import CallgateWire

extension Dispatcher {
    /// `usage_report`: calls allowed, denials by reason and the peak hour per agent or per number over a
    /// range of local days, read from the store (runs on the thread pool).
    ///
    /// A range that reaches today (or yesterday, whose last tallies may still be in memory just after
    /// midnight) first has the engine's tallies written, so the report counts every decision made until
    /// it was asked. An agent key reads its own agent's usage only.
    func usageReport(_ r: Wire.UsageReportRequest, _ p: Principal) throws(CallgateError) -> Wire.UsageReportResponse {
        let org = p.organization
        var agent = r.agentID.isEmpty ? nil : r.agentID
        if let bound = p.boundAgent {
            guard agent == nil || agent == bound else {
                throw CallgateError(.permissionDenied, "an agent key may only read its own agent's usage")
            }
            agent = bound
        }
        let number = r.number.isEmpty ? nil : try Self.number(r.number, field: "number")
        let query = try UsageQuery(
            fromDay: r.fromDay,
            toDay: r.toDay,
            groupBy: r.groupBy,
            agent: agent,
            number: number,
            perDay: r.perDay
        )
        let limit = try Self.pageSize(r.pageSize)
        if let agent, org.agent(agent) == nil {
            throw CallgateError(.notFound, "no agent '\(agent.prefix(100))' in this organization")
        }
        // Once per report (its first page), for this organization only. A store that cannot write
        // answers from what it has: the tallies stay counted in memory.
        if r.cursor.isEmpty, let today = LocalDate(org.day.localDate(of: org.today)),
            query.to >= today.adding(days: -1)
        {
            _ = try? self.store.usage.takeNow(foldingCounters: true, of: org.id)
        }
        let report = try self.store.usage.report(
            org.id,
            query,
            cursor: r.cursor.isEmpty ? nil : r.cursor,
            limit: limit
        )
        return Wire.UsageReportResponse(
            rows: report.rows.map(Self.usageRow),
            nextCursor: report.nextCursor ?? "",
            timeZone: org.day.timeZoneIdentifier,
            unknownAgents: report.unknownAgents.map(Self.usageRow)
        )
    }

    static func usageRow(_ row: UsageReportRow) -> Wire.UsageRow {
        let peak = row.peakHour
        return Wire.UsageRow(
            key: row.key,
            day: row.day ?? "",
            callsAllowed: row.allowed,
            callsDenied: row.deniedTotal,
            denials: DenyReason.allCases.sorted { $0.rawValue < $1.rawValue }.compactMap { reason in
                let count = row.denied(reason)
                guard count > 0 else { return nil }
                return Wire.DenialCount(
                    reason: Wire.DenyReason(rawValue: Int32(reason.rawValue)) ?? .unspecified,
                    count: count
                )
            },
            peakHour: UInt32(peak?.hour ?? 0),
            peakHourCalls: peak?.calls ?? 0,
            callsByHour: row.allowedByHour.enumerated().compactMap { hour, calls in
                calls > 0 ? Wire.HourCount(hour: UInt32(hour), calls: calls) : nil
            }
        )
    }
}
