package import CallgateCore
package import CallgateStore
package import CallgateWire
import Synchronization

/// The answer to one request, and the change it must wait for before it may leave.
package struct Reply: Sendable {
    package var result: Wire.Response.Result
    /// In `commit` durability the reply is held until this change is committed.
    package var ticket: ChangeTicket?

    package init(_ result: Wire.Response.Result, ticket: ChangeTicket? = nil) {
        self.result = result
        self.ticket = ticket
    }

    package static func error(_ error: CallgateError) -> Reply {
        Reply(
            .error(
                Wire.Status(
                    code: Wire.StatusCode(rawValue: Int32(error.code.rawValue)) ?? .internal,
                    message: error.message
                )
            )
        )
    }

    package var statusCode: Wire.StatusCode {
        if case .error(let status) = self.result { return status.code }
        return .ok
    }
}

/// Runs one authenticated request against the engine and the store: checks the role, maps the wire
/// message to core values (parsing and validating every field), calls the engine, maps the result back.
///
/// Synchronous and thread-safe. The session handler runs the hot methods (``runsInline(_:)``) on its
/// event loop and the others on a thread pool.
package final class Dispatcher: Sendable {
    package let store: Store
    package let sessions: SessionRegistry
    package let durability: StoreConfiguration.Durability
    /// Each organization's decision counts, for its `stats` (nothing crosses organizations).
    private let tallies = Locked<[OrganizationID: DecisionTally]>([:])

    package init(store: Store, sessions: SessionRegistry) {
        self.store = store
        self.sessions = sessions
        self.durability = store.configuration.durability
    }

    /// An organization's decision counts, made on first use. A session looks its tally up once, at hello.
    package func tally(for organization: OrganizationID) -> DecisionTally {
        self.tallies.withLock { tallies in
            if let tally = tallies[organization] { return tally }
            let tally = DecisionTally()
            tallies[organization] = tally
            return tally
        }
    }

    /// Whether a method is cheap and bounded enough to run on the connection's event loop.
    package static func runsInline(_ method: Wire.Request.Method) -> Bool {
        switch method {
        case .authorizeCall, .pickNumber, .assign, .release, .getNumber, .hello: return true
        default: return false
        }
    }

    /// Answers one request of an authenticated session.
    package func handle(_ method: Wire.Request.Method, _ principal: Principal) -> Reply {
        guard AccessPolicy.allows(principal.role, method) else {
            return .error(AccessPolicy.denied(principal.role, method))
        }
        do throws(CallgateError) {
            return try self.dispatch(method, principal)
        } catch {
            return .error(error)
        }
    }

    private func dispatch(_ method: Wire.Request.Method, _ p: Principal) throws(CallgateError) -> Reply {
        let org = p.organization
        switch method {
        case .hello:
            throw CallgateError(.failedPrecondition, "the session is already authenticated")
        case .authorizeCall(let r):
            return try self.authorizeCall(r, p)
        case .pickNumber(let r):
            return try self.pickNumber(r, p)
        case .assign(let r):
            let number = try Self.number(r.number, field: "number")
            let terms = try Self.terms(r.terms)
            let (record, ticket) = try org.assign(
                number,
                to: try Self.required(r.agentID, field: "agent_id"),
                terms: terms,
                reservation: r.reservationToken == 0 ? nil : r.reservationToken,
                actor: p.actor
            )
            return Reply(.assign(Self.assignmentInfo(record)), ticket: ticket)
        case .release(let r):
            let number = try Self.number(r.number, field: "number")
            let ticket = try org.release(
                number,
                expectedAgent: r.expectedAgentID.isEmpty ? nil : r.expectedAgentID,
                actor: p.actor
            )
            return Reply(.release(Wire.ReleaseResponse(number: number.e164)), ticket: ticket)
        case .addNumber(let r):
            let record = try org.addNumber(try Self.numberInput(r), actor: p.actor)
            return self.changed(.addNumber(self.numberInfo(record, org)))
        case .importNumbers(let r):
            let report = try org.importNumbers(
                csv: r.csv,
                defaultProvider: r.defaultProvider.isEmpty ? nil : r.defaultProvider,
                dryRun: r.dryRun,
                actor: p.actor
            )
            return Reply(.importNumbers(Self.importResponse(report)), ticket: report.ticket)
        case .listNumbers(let r):
            return Reply(.listNumbers(try self.listNumbers(r, p)))
        case .getNumber(let r):
            let number = try Self.number(r.number, field: "number")
            guard let record = org.number(number) else { throw Self.numberNotFound(number) }
            if let agent = p.boundAgent, record.state != .assigned(agent: agent) {
                throw CallgateError(.permissionDenied, "an agent key may only read its own agent's numbers")
            }
            return Reply(.getNumber(self.numberInfo(record, org)))
        case .updateNumber(let r):
            let number = try Self.number(r.number, field: "number")
            let record = try org.updateNumber(number, try Self.numberUpdate(r), actor: p.actor)
            return self.changed(.updateNumber(self.numberInfo(record, org)))
        case .deleteNumbers(let r):
            let deleted: Int
            if r.allUnassigned {
                guard r.numbers.isEmpty else {
                    throw CallgateError(.invalidArgument, "give either numbers or all_unassigned, not both")
                }
                deleted = try org.deleteAllUnassigned(confirm: r.confirmAll, actor: p.actor)
            } else {
                guard !r.numbers.isEmpty else { throw CallgateError(.invalidArgument, "no numbers to delete") }
                deleted = try org.deleteNumbers(try Self.numbers(r.numbers), actor: p.actor)
            }
            return self.changed(.deleteNumbers(Wire.DeleteNumbersResponse(deleted: UInt32(deleted))))
        case .upsertAgent(let r):
            let record = try org.upsertAgent(
                AgentInput(
                    id: try Self.required(r.id, field: "id"),
                    displayName: r.displayName,
                    principal: r.principal,
                    active: !r.inactive
                ),
                actor: p.actor
            )
            return self.changed(.upsertAgent(Self.agentInfo(record)))
        case .listAgents(let r):
            let page = try org.listAgents(
                includeInactive: r.includeInactive,
                cursor: r.cursor.isEmpty ? nil : r.cursor,
                limit: try Self.pageSize(r.pageSize)
            )
            return Reply(
                .listAgents(
                    Wire.ListAgentsResponse(agents: page.items.map(Self.agentInfo), nextCursor: page.nextCursor ?? "")
                )
            )
        case .deactivateAgent(let r):
            let record = try org.deactivateAgent(try Self.required(r.id, field: "id"), actor: p.actor)
            return self.changed(.deactivateAgent(Self.agentInfo(record)))
        case .listAssignments(let r):
            var agent = r.agentID.isEmpty ? nil : r.agentID
            if let bound = p.boundAgent {
                guard agent == nil || agent == bound else {
                    throw CallgateError(.permissionDenied, "an agent key may only read its own agent's assignments")
                }
                agent = bound
            }
            let page = try org.listAssignments(
                agent: agent,
                cursor: r.cursor.isEmpty ? nil : r.cursor,
                limit: try Self.pageSize(r.pageSize)
            )
            return Reply(
                .listAssignments(
                    Wire.ListAssignmentsResponse(
                        assignments: page.items.map(Self.assignmentInfo),
                        nextCursor: page.nextCursor ?? ""
                    )
                )
            )
        case .updateAssignment(let r):
            let number = try Self.number(r.number, field: "number")
            var limit: UInt32?
            var countries: CountrySet?
            for field in r.fields {
                switch field {
                case "daily_limit": limit = r.dailyLimit
                case "allowed_countries": countries = try CountrySet(codes: r.allowedCountries)
                default:
                    throw CallgateError(
                        .invalidArgument,
                        "unknown field '\(field)' (update_assignment changes daily_limit, allowed_countries)"
                    )
                }
            }
            guard limit != nil || countries != nil else {
                throw CallgateError(.invalidArgument, "name the fields to change in 'fields'")
            }
            let record = try org.updateAssignment(
                number,
                dailyLimit: limit,
                allowedCountries: countries,
                actor: p.actor
            )
            return self.changed(.updateAssignment(Self.assignmentInfo(record)))
        case .resetCounters(let r):
            let count: Int
            if r.all {
                guard r.numbers.isEmpty else {
                    throw CallgateError(.invalidArgument, "give either numbers or all, not both")
                }
                count = try org.resetCounters(nil, actor: p.actor)
            } else {
                guard !r.numbers.isEmpty else {
                    throw CallgateError(.invalidArgument, "no numbers to reset (set all to reset every number)")
                }
                count = try org.resetCounters(try Self.numbers(r.numbers), actor: p.actor)
            }
            return self.changed(.resetCounters(Wire.ResetCountersResponse(reset: UInt32(count))))
        case .auditLog(let r):
            let query = AuditQuery(
                number: r.number.isEmpty ? nil : try Self.number(r.number, field: "number"),
                agent: r.agentID.isEmpty ? nil : r.agentID,
                from: r.fromMs == 0 ? nil : Timestamp(milliseconds: r.fromMs),
                to: r.toMs == 0 ? nil : Timestamp(milliseconds: r.toMs)
            )
            let page = try self.store.history.audit(
                org.id,
                query,
                cursor: r.cursor.isEmpty ? nil : r.cursor,
                limit: try Self.pageSize(r.pageSize)
            )
            return Reply(
                .auditLog(
                    Wire.AuditLogResponse(
                        entries: page.items.map {
                            Wire.AuditEntry(
                                id: $0.id,
                                atMs: $0.at.milliseconds,
                                actor: $0.actor,
                                action: $0.action,
                                number: $0.number?.e164 ?? "",
                                agentID: $0.agent ?? "",
                                beforeJson: $0.before ?? "",
                                afterJson: $0.after ?? ""
                            )
                        },
                        nextCursor: page.nextCursor ?? ""
                    )
                )
            )
        case .numberTimeline(let r):
            let number = try Self.number(r.number, field: "number")
            guard let record = org.number(number) else { throw Self.numberNotFound(number) }
            var current: AssignmentRecord?
            if case .assigned(let agent) = record.state {
                current = try org.assignments(of: agent).first { $0.number == number }
            }
            let periods = try self.store.history.timeline(org.id, number: number, current: current)
            return Reply(
                .numberTimeline(
                    Wire.NumberTimelineResponse(
                        periods: periods.map {
                            Wire.HoldingPeriod(
                                agentID: $0.agent,
                                fromMs: $0.from.milliseconds,
                                toMs: $0.to?.milliseconds ?? 0,
                                calls: $0.calls
                            )
                        }
                    )
                )
            )
        case .usageReport(let r):
            return Reply(.usageReport(try self.usageReport(r, p)))
        case .syncNumbers(let r):
            return try self.syncNumbers(r, p)
        case .poolCapacity(let r):
            return try self.poolCapacity(r, p)
        case .setPoolThreshold(let r):
            return try self.setPoolThreshold(r, p)
        case .bulkAssign(let r):
            return try self.bulkAssign(r, p)
        case .bulkRelease(let r):
            return try self.bulkRelease(r, p)
        case .bulkUpdateStatus(let r):
            return try self.bulkUpdateStatus(r, p)
        case .bulkDelete(let r):
            return try self.bulkDelete(r, p)
        case .createKey(let r):
            guard let role = Role(wire: r.role) else {
                throw CallgateError(.invalidArgument, "role must be admin, manager, dialer or agent")
            }
            let agent = r.agentID.isEmpty ? nil : r.agentID
            if let agent, role == .agent, org.agent(agent) == nil {
                throw CallgateError(.notFound, "no agent '\(agent)' in this organization")
            }
            let (record, secret) = try self.store.keys.create(
                organization: org.id,
                role: role,
                agent: agent,
                label: r.label,
                actor: p.actor,
                now: self.store.engine.clock.now()
            )
            return Reply(.createKey(Wire.CreateKeyResponse(key: Self.keyInfo(record), secret: secret)))
        case .listKeys(let r):
            let keys = self.store.keys.list(organization: org.id, includeRevoked: r.includeRevoked)
            return Reply(.listKeys(Wire.ListKeysResponse(keys: keys.map(Self.keyInfo))))
        case .revokeKey(let r):
            let record = try self.store.keys.revoke(
                id: try Self.required(r.id, field: "id"),
                organization: org.id,
                actor: p.actor,
                now: self.store.engine.clock.now()
            )
            self.sessions.revoke(keyID: record.id)
            return Reply(.revokeKey(Self.keyInfo(record)))
        case .stats:
            let counts = org.inventoryCounts()
            return Reply(
                .stats(
                    Wire.StatsResponse(
                        numbers: UInt32(clamping: counts.numbers),
                        available: UInt32(clamping: counts.available),
                        reserved: UInt32(clamping: counts.reserved),
                        assigned: UInt32(clamping: counts.assigned),
                        agents: UInt32(clamping: counts.agents),
                        decisions: p.tally.decisions.load(ordering: .relaxed),
                        allows: p.tally.allows.load(ordering: .relaxed),
                        connections: UInt32(clamping: self.sessions.count(organization: org.id)),
                        durability: self.durability.rawValue,
                        poolsBelowThreshold: org.poolsBelowThreshold().map(Self.poolInfo)
                    )
                )
            )
        }
    }

    /// A reply to an admin change: it waits for everything recorded so far (its own changes included).
    func changed(_ result: Wire.Response.Result) -> Reply {
        Reply(result, ticket: self.store.writer.lastTicket)
    }

    // MARK: - The hot path

    private func authorizeCall(_ r: Wire.AuthorizeCallRequest, _ p: Principal) throws(CallgateError) -> Reply {
        let (answer, ticket) = try self.authorizeCall(
            agent: r.agentID,
            destination: r.destination,
            from: r.fromNumber,
            dryRun: r.dryRun,
            p
        )
        return Reply(
            .authorizeCall(
                Wire.AuthorizeCallResponse(
                    verdict: answer.allowed ? .allow : .deny,
                    reason: Wire.DenyReason(rawValue: answer.reason) ?? .unspecified,
                    callerID: answer.callerIDDigits == 0 ? "" : "+\(answer.callerIDDigits)",
                    destinationCountry: answer.destinationCountry,
                    count: answer.count,
                    limit: answer.limit,
                    remaining: answer.remaining,
                    resetsAtMs: answer.resetsAtMilliseconds
                )
            ),
            ticket: ticket
        )
    }

    /// AuthorizeCall for the hot path: takes the request's strings, returns machine words.
    ///
    /// An agent key may only authorize for its own agent (an empty agent id means its own). A
    /// destination that does not parse is a DENY `INVALID_DESTINATION`, not an error; a caller ID that
    /// does not parse is `INVALID_ARGUMENT`.
    package func authorizeCall(
        agent requested: String,
        destination: String,
        from: String,
        dryRun: Bool,
        _ p: Principal
    ) throws(CallgateError) -> (AuthorizeCallAnswer, ChangeTicket?) {
        guard AccessPolicy.allowsAuthorizeCall(p.role) else {
            throw CallgateError(.permissionDenied, "a \(p.role) key may not call authorize_call")
        }
        var agent = requested
        if let bound = p.boundAgent {
            if agent.isEmpty {
                agent = bound
            } else if agent != bound {
                throw CallgateError(.permissionDenied, "an agent key may only authorize its own calls")
            }
        }
        guard !agent.isEmpty else { throw CallgateError(.invalidArgument, "agent_id is required") }
        var fromNumber: PhoneNumber?
        if !from.isEmpty { fromNumber = try Self.number(from, field: "from_number") }
        let decision: CallDecision
        if let number = try? PhoneNumber.parse(destination) {
            decision = try p.organization.authorizeCall(
                agent: agent,
                destination: number,
                from: fromNumber,
                dryRun: dryRun
            )
        } else {
            decision = p.organization.denyUnparsableDestination(agent: agent, callerID: fromNumber, dryRun: dryRun)
        }
        p.tally.decisions.add(1, ordering: .relaxed)
        if decision.isAllowed, !dryRun { p.tally.allows.add(1, ordering: .relaxed) }
        let answer = AuthorizeCallAnswer(
            allowed: decision.isAllowed,
            reason: Int32(decision.denyReason?.rawValue ?? 0),
            callerIDDigits: decision.callerID?.digits ?? 0,
            destinationCountry: decision.destinationCountry?.code ?? "",
            count: decision.count,
            limit: decision.limit,
            remaining: decision.remaining,
            resetsAtMilliseconds: decision.resetsAt.milliseconds
        )
        return (answer, decision.ticket)
    }

    private func pickNumber(_ r: Wire.PickNumberRequest, _ p: Principal) throws(CallgateError) -> Reply {
        let criteria = try Self.criteria(r.criteria)
        let mode: PickMode
        switch r.mode {
        case .reserve(let reserve):
            mode = .reserve(
                seconds: Int64(reserve.ttlSeconds == 0 ? 300 : reserve.ttlSeconds),
                agent: reserve.agentID.isEmpty ? nil : reserve.agentID
            )
        case .assign(let assign):
            guard p.role == .admin else {
                throw CallgateError(
                    .permissionDenied,
                    "a \(p.role) key may only reserve (pick with assign needs admin)"
                )
            }
            mode = .assign(
                agent: try Self.required(assign.agentID, field: "agent_id"),
                terms: try Self.terms(assign.terms)
            )
        case nil:
            throw CallgateError(.invalidArgument, "pick_number needs a mode: reserve or assign")
        }
        let result = try p.organization.pickNumber(criteria, mode: mode, actor: p.actor)
        return Reply(
            .pickNumber(
                Wire.PickNumberResponse(
                    number: self.numberInfo(result.number, p.organization, assignment: result.assignment),
                    reservationToken: result.reservation?.id ?? 0,
                    reservationExpiresAtMs: result.reservation?.expiresAt.milliseconds ?? 0,
                    assignment: result.assignment.map(Self.assignmentInfo)
                )
            ),
            ticket: result.ticket
        )
    }

    private func listNumbers(
        _ r: Wire.ListNumbersRequest,
        _ p: Principal
    ) throws(CallgateError) -> Wire.ListNumbersResponse {
        var agent = r.agentID.isEmpty ? nil : r.agentID
        if let bound = p.boundAgent {
            guard agent == nil || agent == bound else {
                throw CallgateError(.permissionDenied, "an agent key may only list its own agent's numbers")
            }
            agent = bound
        }
        let filter = NumberFilter(
            criteria: try Self.criteria(r.criteria),
            status: try Self.status(r.status),
            state: r.state.isEmpty ? nil : r.state,
            agent: agent
        )
        let page = try p.organization.listNumbers(
            filter,
            cursor: r.cursor.isEmpty ? nil : r.cursor,
            limit: try Self.pageSize(r.pageSize)
        )
        var limits: [String: [PhoneNumber: UInt32]] = [:]
        let numbers = page.items.map { record -> Wire.NumberInfo in
            var info = self.numberInfo(record, p.organization, assignment: nil, lookUpLimit: false)
            if case .assigned(let holder) = record.state {
                if limits[holder] == nil {
                    let held = (try? p.organization.assignments(of: holder)) ?? []
                    limits[holder] = Dictionary(
                        held.map { ($0.number, $0.dailyLimit) },
                        uniquingKeysWith: { a, _ in a }
                    )
                }
                info.dailyLimit = limits[holder]?[record.number] ?? 0
            }
            return info
        }
        return Wire.ListNumbersResponse(numbers: numbers, nextCursor: page.nextCursor ?? "")
    }

    // MARK: - Mapping to the wire

    private func numberInfo(
        _ record: NumberRecord,
        _ org: Organization,
        assignment: AssignmentRecord? = nil,
        lookUpLimit: Bool = true
    ) -> Wire.NumberInfo {
        var info = Wire.NumberInfo(
            number: record.number.e164,
            provider: record.attributes.provider,
            country: record.attributes.country.code,
            capabilities: Self.capabilityNames(record.attributes.capabilities),
            status: record.attributes.status == .active ? .active : .inactive,
            location: record.attributes.location,
            tags: record.attributes.tags,
            numberType: record.attributes.numberType,
            state: record.state.name,
            releasedAtMs: record.releasedAt?.milliseconds ?? 0,
            createdAtMs: record.createdAt.milliseconds,
            createdBy: record.createdBy.id,
            modifiedAtMs: record.modifiedAt.milliseconds,
            modifiedBy: record.modifiedBy.id,
            countToday: record.counter.count(on: org.today.key)
        )
        switch record.state {
        case .available:
            break
        case .reserved(let reservation):
            info.agentID = reservation.agent ?? ""
            info.reservationExpiresAtMs = reservation.expiresAt.milliseconds
        case .assigned(let agent):
            info.agentID = agent
            if let assignment {
                info.dailyLimit = assignment.dailyLimit
            } else if lookUpLimit, let held = try? org.assignments(of: agent) {
                info.dailyLimit = held.first { $0.number == record.number }?.dailyLimit ?? 0
            }
        }
        return info
    }

    package static func assignmentInfo(_ a: AssignmentRecord) -> Wire.AssignmentInfo {
        Wire.AssignmentInfo(
            number: a.number.e164,
            agentID: a.agent,
            dailyLimit: a.dailyLimit,
            allowedCountries: a.allowedCountries.codes,
            assignedAtMs: a.assignedAt.milliseconds,
            assignedBy: a.assignedBy.id,
            callsSinceAssigned: a.callsSinceAssigned,
            countToday: a.countToday,
            remainingToday: a.remainingToday,
            numberActive: a.numberActive
        )
    }

    package static func agentInfo(_ a: AgentRecord) -> Wire.AgentInfo {
        Wire.AgentInfo(
            id: a.id,
            displayName: a.displayName,
            principal: a.principal,
            active: a.active,
            createdAtMs: a.createdAt.milliseconds,
            modifiedAtMs: a.modifiedAt.milliseconds
        )
    }

    package static func keyInfo(_ k: APIKeyRecord) -> Wire.KeyInfo {
        Wire.KeyInfo(
            id: k.id,
            role: k.role.wire,
            agentID: k.agent ?? "",
            label: k.label,
            createdAtMs: k.createdAt.milliseconds,
            createdBy: k.createdBy.id,
            revokedAtMs: k.revokedAt?.milliseconds ?? 0
        )
    }

    private static func capabilityNames(_ c: Capabilities) -> [String] {
        let text = c.description
        return text.isEmpty ? [] : text.split(separator: ",").map(String.init)
    }

    // MARK: - Parsing what came in

    package static func number(_ text: String, field: String) throws(CallgateError) -> PhoneNumber {
        guard !text.isEmpty else { throw CallgateError(.invalidArgument, "\(field) is required") }
        do {
            return try PhoneNumber.parse(text)
        } catch {
            throw CallgateError(.invalidArgument, "\(field) is not a valid phone number: \(error)")
        }
    }

    static func numbers(_ texts: [String]) throws(CallgateError) -> [PhoneNumber] {
        var result: [PhoneNumber] = []
        result.reserveCapacity(texts.count)
        for (index, text) in texts.enumerated() { result.append(try Self.number(text, field: "numbers[\(index)]")) }
        return result
    }

    static func required(_ text: String, field: String) throws(CallgateError) -> String {
        guard !text.isEmpty else { throw CallgateError(.invalidArgument, "\(field) is required") }
        return text
    }

    static func pageSize(_ size: UInt32) throws(CallgateError) -> Int {
        guard size <= 1000 else { throw CallgateError(.invalidArgument, "page_size must be 1 to 1000, got \(size)") }
        return size == 0 ? 100 : Int(size)
    }

    private static func country(_ code: String, field: String) throws(CallgateError) -> Country? {
        guard !code.isEmpty else { return nil }
        guard let country = Country(code: code.uppercased()) else {
            throw CallgateError(.invalidArgument, "\(field) '\(code)' is not an ISO 3166 country code")
        }
        return country
    }

    private static func capabilities(_ names: [String]) throws(CallgateError) -> Capabilities? {
        guard !names.isEmpty else { return nil }
        return try Capabilities(names: names.joined(separator: ","))
    }

    static func status(_ status: Wire.NumberStatus) throws(CallgateError) -> NumberStatus? {
        switch status {
        case .unspecified: return nil
        case .active: return .active
        case .inactive: return .inactive
        }
    }

    static func criteria(_ c: Wire.NumberCriteria?) throws(CallgateError) -> NumberCriteria {
        guard let c else { return NumberCriteria() }
        return NumberCriteria(
            country: try Self.country(c.country, field: "criteria.country"),
            prefix: c.prefix.isEmpty ? nil : c.prefix,
            tag: c.tag.isEmpty ? nil : c.tag,
            location: c.location.isEmpty ? nil : c.location,
            capabilities: try Self.capabilities(c.capabilities),
            provider: c.provider.isEmpty ? nil : c.provider,
            text: c.text.isEmpty ? nil : c.text,
            areaCode: c.areaCode.isEmpty ? nil : c.areaCode,
            pattern: c.pattern.isEmpty ? nil : c.pattern
        )
    }

    package static func importResponse(_ report: ImportReport) -> Wire.ImportNumbersResponse {
        Wire.ImportNumbersResponse(
            rows: report.rows.map {
                Wire.ImportRowResult(
                    line: UInt32(clamping: $0.line),
                    number: $0.number,
                    outcome: $0.outcome.rawValue,
                    reason: $0.reason
                )
            },
            added: UInt32(clamping: report.added),
            unchanged: UInt32(clamping: report.unchanged),
            updated: UInt32(clamping: report.updated),
            rejected: UInt32(clamping: report.rejected),
            format: report.format.rawValue
        )
    }

    static func terms(_ t: Wire.AssignmentTerms?) throws(CallgateError) -> AssignmentTerms {
        guard let t else { return AssignmentTerms() }
        let limit = t.dailyLimit == 0 && !t.zeroLimit ? AssignmentTerms.defaultDailyLimit : t.dailyLimit
        let countries = t.allowedCountries.isEmpty ? nil : try CountrySet(codes: t.allowedCountries)
        return AssignmentTerms(dailyLimit: limit, allowedCountries: countries)
    }

    package static func numberInput(_ r: Wire.AddNumberRequest) throws(CallgateError) -> NumberInput {
        NumberInput(
            number: try Self.number(r.number, field: "number"),
            provider: r.provider,
            country: try Self.country(r.country, field: "country"),
            capabilities: try Self.capabilities(r.capabilities) ?? .voice,
            status: try Self.status(r.status) ?? .active,
            location: r.location,
            tags: r.tags,
            numberType: r.numberType.isEmpty ? "did" : r.numberType
        )
    }

    private static func numberUpdate(_ r: Wire.UpdateNumberRequest) throws(CallgateError) -> NumberUpdate {
        var update = NumberUpdate()
        guard !r.fields.isEmpty else { throw CallgateError(.invalidArgument, "name the fields to change in 'fields'") }
        for field in r.fields {
            switch field {
            case "provider": update.provider = r.provider
            case "capabilities": update.capabilities = try Self.capabilities(r.capabilities) ?? []
            case "status":
                guard let status = try Self.status(r.status) else {
                    throw CallgateError(.invalidArgument, "status must be active or inactive")
                }
                update.status = status
            case "location": update.location = r.location
            case "tags": update.tags = r.tags
            case "number_type": update.numberType = r.numberType
            default:
                throw CallgateError(
                    .invalidArgument,
                    "unknown field '\(field)' (update_number changes provider, capabilities, status, location, tags, number_type)"
                )
            }
        }
        return update
    }

    private static func numberNotFound(_ number: PhoneNumber) -> CallgateError {
        CallgateError(.notFound, "no number \(number) in this organization")
    }
}

/// AuthorizeCall decisions and ALLOWs of one organization since the server started.
package final class DecisionTally: Sendable {
    let decisions = Atomic<UInt64>(0)
    let allows = Atomic<UInt64>(0)

    package init() {}
}
