/// What a sync does with numbers the organization has and the file does not.
public enum LocalOnlyPolicy: String, Sendable, Hashable, CaseIterable {
    /// Leave them as they are.
    case keep
    /// Make them inactive (an assigned one stays assigned and stops authorizing).
    case deactivate
    /// Delete the unassigned, unreserved ones; keep the others.
    case deleteUnassigned = "delete_unassigned"
}

/// How to sync.
public struct SyncOptions: Sendable, Hashable {
    public var localOnly: LocalOnlyPolicy
    /// The terms of the assignments the file makes (default: 100 calls a day, the number's country).
    public var terms: AssignmentTerms
    /// Apply the good rows of a file that has bad ones (otherwise applying such a file is refused).
    public var skipBadRows: Bool

    public init(
        localOnly: LocalOnlyPolicy = .keep,
        terms: AssignmentTerms = AssignmentTerms(),
        skipBadRows: Bool = false
    ) {
        self.localOnly = localOnly
        self.terms = terms
        self.skipBadRows = skipBadRows
    }
}

/// What a sync does to one number.
public enum SyncAction: String, Sendable, Hashable {
    /// In the file only: added (and assigned when the file says so).
    case add
    /// In both, different: the changes say how.
    case update
    /// In both, the same.
    case unchanged
    /// In the organization only: handled by the ``LocalOnlyPolicy`` (the reason says how).
    case localOnly = "local_only"
    /// A bad row: nothing happens to its number.
    case rejected
}

/// One field a sync changes; `""` is none (`assigned_to` from `""` is an assignment).
public struct SyncFieldChange: Sendable, Hashable {
    public var field: String
    public var before: String
    public var after: String

    public init(_ field: String, _ before: String, _ after: String) {
        self.field = field
        self.before = before
        self.after = after
    }
}

/// One line of a sync's diff.
public struct SyncEntry: Sendable, Hashable {
    /// The file's line; 0 for a number only in the organization.
    public var line: Int
    /// E.164, or the text of a row whose number cannot be read.
    public var number: String
    public var action: SyncAction
    public var changes: [SyncFieldChange]
    /// A rejected row: why. A local-only number: `kept`, `deactivate`, `already inactive`, `delete`,
    /// `kept: assigned`, `kept: reserved`. An update: notes (`cancels a reservation`).
    public var reason: String
}

/// The diff of a sync (dry run) or what it applied.
public struct SyncReport: Sendable {
    public var format: ImportFormat
    /// The file's rows in file order, then the local-only numbers in number order.
    public var entries: [SyncEntry] = []
    public var toAdd = 0
    public var toUpdate = 0
    public var unchanged = 0
    public var localOnly = 0
    public var rejected = 0
    /// Of the above: assignments made, released, numbers deactivated and deleted.
    public var toAssign = 0
    public var toRelease = 0
    public var toDeactivate = 0
    public var toDelete = 0
    /// Identifies this diff: pass it to apply it.
    public var token = ""
    public var applied = false
    public var ticket: ChangeTicket?
}

extension Organization {
    /// Compares the organization's numbers with a source of truth (a provider's or directory's current
    /// inventory, in any layout ``ImportFile`` reads, optionally with an `assigned_to` column), and with
    /// `apply` makes the organization match it.
    ///
    /// Per number in the file: **add** (new; assigned when the file names an agent), **update** (its
    /// attributes as the import rules give them, and its holder when the file has an `assigned_to`
    /// column: an agent id assigns it with `options.terms`, re-assigning it from another agent; `-` or
    /// `none` releases it; an empty cell leaves the assignment alone), **unchanged**, or **rejected**
    /// (the import's row errors, an unknown or inactive agent, an inactive number to assign). Numbers only
    /// in the organization are handled by `options.localOnly`.
    ///
    /// A dry run (`apply == nil`) returns the diff and its token (a hash of every entry and of the
    /// options that shape it). Applying with that token recomputes the diff under the pool lock and
    /// applies it only if it is exactly the same diff, as **one** change (one store transaction, audited
    /// as `sync`); otherwise `failedPrecondition`. Activity that leaves the diff alone (calls counted,
    /// changes to numbers the diff does not mention: there are none unless the policy is `keep`…) does
    /// not invalidate a token.
    ///
    /// - Throws: `invalidArgument` for a bad file or token; `failedPrecondition` when the diff changed
    ///   since the dry run, or the file has bad rows and `options.skipBadRows` is not set; `unavailable`
    ///   when the store refuses the change (then nothing is applied).
    public func syncNumbers(
        csv: String,
        defaultProvider: String? = nil,
        options: SyncOptions = SyncOptions(),
        apply token: String? = nil,
        actor: Actor
    ) throws(CallgateError) -> SyncReport {
        let file = try ImportFile.parse(csv, defaultProvider: defaultProvider, assignments: true)
        return try self.syncNumbers(file, options: options, apply: token, actor: actor)
    }

    public func syncNumbers(
        _ file: ImportFile,
        options: SyncOptions = SyncOptions(),
        apply token: String? = nil,
        actor: Actor
    ) throws(CallgateError) -> SyncReport {
        try Self.validate(options.terms)
        if let token, token.isEmpty {
            throw CallgateError(.invalidArgument, "applying a sync needs the token of its dry run")
        }
        let now = self.clock.now()
        let day = self.day.window(containing: now)
        return try self.pool.withLock { (pool) throws(CallgateError) -> SyncReport in
            var plan = SyncPlan()
            var report = self.syncDiff(file, options, &pool, now: now, actor: actor, plan: &plan)
            guard let token else { return report }
            guard token == report.token else {
                throw CallgateError(
                    .failedPrecondition,
                    "inventory changed since the dry run (or the file or options differ): run the dry run again "
                        + "and review the new diff"
                )
            }
            if report.rejected > 0, !options.skipBadRows {
                let first = report.entries.first { $0.action == .rejected }!
                throw CallgateError(
                    .failedPrecondition,
                    "the file has \(report.rejected) bad row\(report.rejected == 1 ? "" : "s") (line \(first.line): "
                        + "\(first.reason)); fix them, or skip them explicitly (skip_bad_rows)"
                )
            }
            report.applied = true
            guard !plan.isEmpty else { return report }

            var change = BulkChange(kind: .sync)
            change.released = plan.releases.map(\.record)
            var released: [PhoneNumber: DailyCounter] = [:]
            for r in plan.releases { released[r.number] = r.record.counter }
            var holders: [PhoneNumber: String] = [:]
            for a in plan.assigns { holders[a.number] = a.agent.id }
            change.updated = plan.updates.map { number, attributes in
                let before = self.numberRecord(number, pool.numbers[number]!, dayKey: day.key, now: now)
                var after = before
                after.attributes = attributes
                after.modifiedAt = now
                after.modifiedBy = actor
                if let holder = holders[number] {
                    after.state = .assigned(agent: holder)
                } else if released[number] != nil {
                    after.state = .available
                }
                return (before, after)
            }
            change.added = plan.adds.map { self.numberRecord($0.0, $0.1, dayKey: 0, now: now) }
            change.deleted = plan.deletes.map { self.numberRecord($0, pool.numbers[$0]!, dayKey: 0, now: now) }
            var fresh: [PhoneNumber: NumberEntry] = [:]
            for (number, entry) in plan.adds where holders[number] != nil { fresh[number] = entry }
            change.assigned = plan.assigns.map { a in
                let entry = pool.numbers[a.number] ?? fresh[a.number]!
                return Self.assignmentRecord(
                    a,
                    country: entry.attributes.country,
                    counter: released[a.number] ?? entry.counter,
                    since: now,
                    by: actor,
                    dayKey: day.key
                )
            }
            change.summary = [
                ("added", report.toAdd), ("updated", report.toUpdate), ("unchanged", report.unchanged),
                ("local_only", report.localOnly), ("rejected", report.rejected), ("assigned", report.toAssign),
                ("released", report.toRelease), ("deactivated", report.toDeactivate), ("deleted", report.toDelete),
            ]
            change.notes = [("token", report.token), ("local_only", options.localOnly.rawValue)]
            report.ticket = try self.changes.record(self.change(now, actor, .bulk(change)))

            self.applyReleases(&pool, plan.releases, now: now)
            for (number, attributes) in plan.updates {
                guard var entry = pool.numbers[number] else { continue }
                let previous = entry.attributes.status
                entry.attributes = attributes
                entry.modifiedAt = now
                entry.modifiedBy = actor
                pool.replace(number, with: entry)
                Self.tellHolder(number, entry, previousStatus: previous)
            }
            pool.add(contentsOf: plan.adds)
            pool.remove(contentsOf: plan.deletes)
            self.applyAssigns(&pool, plan.assigns, now: now, actor: actor)
            return report
        }
    }

    /// What applying a sync will do, gathered while the diff is computed.
    struct SyncPlan {
        var releases: [PlannedRelease] = []
        var updates: [(PhoneNumber, NumberAttributes)] = []
        var adds: [(PhoneNumber, NumberEntry)] = []
        var deletes: [PhoneNumber] = []
        var assigns: [PlannedAssign] = []

        var isEmpty: Bool {
            self.releases.isEmpty && self.updates.isEmpty && self.adds.isEmpty && self.deletes.isEmpty
                && self.assigns.isEmpty
        }
    }

    /// The diff of a sync under the pool lock (changes nothing), and the plan that applies it.
    func syncDiff(
        _ file: ImportFile,
        _ options: SyncOptions,
        _ pool: inout PoolState,
        now: Timestamp,
        actor: Actor,
        plan: inout SyncPlan
    ) -> SyncReport {
        let dayKey = self.day.window(containing: now).key
        var report = SyncReport(format: file.format)
        report.entries.reserveCapacity(file.rows.count)
        var inFile = Set<PhoneNumber>()
        inFile.reserveCapacity(file.rows.count)
        var agents: [String: AgentEntry?] = [:]
        /// The agent to assign to, or why not.
        func agent(_ id: String) -> Result<AgentEntry, CallgateError> {
            let entry: AgentEntry?
            if let known = agents[id] {
                entry = known
            } else {
                entry = self.directory.lookup(id)
                agents[id] = entry
            }
            guard let entry else { return .failure(CallgateError(.invalidArgument, "no agent '\(id)'")) }
            guard entry.state.withLock({ $0.record.active }) else {
                return .failure(CallgateError(.invalidArgument, "agent '\(id)' is inactive"))
            }
            return .success(entry)
        }
        func reject(_ row: ImportRow, _ reason: String) {
            report.entries.append(
                SyncEntry(line: row.line, number: row.text, action: .rejected, changes: [], reason: reason)
            )
            report.rejected += 1
        }
        func terms(_ country: Country) -> (UInt32, CountrySet) {
            (options.terms.dailyLimit, options.terms.allowedCountries ?? [country])
        }

        for row in file.rows {
            if let number = row.number { inFile.insert(number) }
            let values: ImportValues
            switch row.values {
            case .failure(let error):
                reject(row, error.message)
                continue
            case .success(let v):
                values = v
            }
            guard let number = row.number else { continue }
            let existing = pool.numbers[number]
            let after = values.applied(to: existing?.attributes)
            var changes: [SyncFieldChange] = []
            var note = ""
            var assignTo: AgentEntry?
            var release: PlannedRelease?
            let state = existing?.state(at: now) ?? .available
            var holder: String?
            if case .assigned(let id) = state { holder = id }
            switch row.assignment {
            case nil:
                break
            case .unassigned:
                if let holder, case .assigned(let a) = existing!.lifecycle {
                    release = self.planRelease(number, a, dayKey: dayKey)
                    changes.append(SyncFieldChange("assigned_to", holder, ""))
                }
            case .agent(let id):
                guard holder != id else { break }
                switch agent(id) {
                case .failure(let error):
                    reject(row, error.message)
                    continue
                case .success(let entry):
                    guard after.status == .active else {
                        reject(row, "the number is inactive and cannot be assigned to '\(id)'")
                        continue
                    }
                    assignTo = entry
                }
                if let existing, case .assigned(let a) = existing.lifecycle {
                    release = self.planRelease(number, a, dayKey: dayKey)
                } else if case .reserved = state {
                    note = "cancels a reservation"
                }
                changes.append(SyncFieldChange("assigned_to", holder ?? "", id))
            }
            if let existing {
                changes.insert(contentsOf: Self.fieldChanges(existing.attributes, after), at: 0)
                guard !changes.isEmpty else {
                    report.entries.append(
                        SyncEntry(line: row.line, number: row.text, action: .unchanged, changes: [], reason: "")
                    )
                    report.unchanged += 1
                    continue
                }
                if after != existing.attributes { plan.updates.append((number, after)) }
                report.entries.append(
                    SyncEntry(line: row.line, number: row.text, action: .update, changes: changes, reason: note)
                )
                report.toUpdate += 1
            } else {
                plan.adds.append(
                    (
                        number,
                        NumberEntry(
                            attributes: after,
                            lifecycle: .available,
                            releasedAt: nil,
                            createdAt: now,
                            createdBy: actor,
                            modifiedAt: now,
                            modifiedBy: actor,
                            counter: .zero
                        )
                    )
                )
                report.entries.append(
                    SyncEntry(line: row.line, number: row.text, action: .add, changes: changes, reason: "")
                )
                report.toAdd += 1
            }
            if let release {
                plan.releases.append(release)
                report.toRelease += 1
            }
            if let assignTo {
                let (limit, countries) = terms(after.country)
                plan.assigns.append(
                    PlannedAssign(number: number, agent: assignTo, dailyLimit: limit, allowedCountries: countries)
                )
                report.toAssign += 1
            }
        }

        // Numbers of the organization the file does not have, in number order.
        for number in pool.ascending(after: nil) where !inFile.contains(number) {
            let entry = pool.numbers[number]!
            var changes: [SyncFieldChange] = []
            let reason: String
            switch options.localOnly {
            case .keep:
                reason = "kept"
            case .deactivate:
                if entry.attributes.status == .active {
                    reason = "deactivate"
                    changes = [SyncFieldChange("status", "active", "inactive")]
                    var attributes = entry.attributes
                    attributes.status = .inactive
                    plan.updates.append((number, attributes))
                    report.toDeactivate += 1
                } else {
                    reason = "already inactive"
                }
            case .deleteUnassigned:
                let state = entry.state(at: now)
                if case .available = state {
                    reason = "delete"
                    plan.deletes.append(number)
                    report.toDelete += 1
                } else {
                    reason = "kept: \(state.name)"
                }
            }
            report.entries.append(
                SyncEntry(line: 0, number: number.e164, action: .localOnly, changes: changes, reason: reason)
            )
            report.localOnly += 1
        }
        report.token = Self.syncToken(report, options)
        return report
    }

    /// The attribute fields that differ, with their values before and after.
    static func fieldChanges(_ a: NumberAttributes, _ b: NumberAttributes) -> [SyncFieldChange] {
        var changes: [SyncFieldChange] = []
        if a.provider != b.provider { changes.append(SyncFieldChange("provider", a.provider, b.provider)) }
        if a.capabilities != b.capabilities {
            changes.append(SyncFieldChange("capabilities", a.capabilities.description, b.capabilities.description))
        }
        if a.status != b.status { changes.append(SyncFieldChange("status", a.status.rawValue, b.status.rawValue)) }
        if a.location != b.location { changes.append(SyncFieldChange("location", a.location, b.location)) }
        if a.tags != b.tags {
            changes.append(SyncFieldChange("tags", a.tags.joined(separator: ";"), b.tags.joined(separator: ";")))
        }
        if a.numberType != b.numberType { changes.append(SyncFieldChange("type", a.numberType, b.numberType)) }
        return changes
    }

    /// `sync1-` and 16 hex digits: FNV-1a (64 bits) of every entry and of the options that shape the
    /// diff (not `skipBadRows`: skipping decides whether to apply, not what). Deterministic across
    /// restarts.
    static func syncToken(_ report: SyncReport, _ options: SyncOptions) -> String {
        var hash = FNV1a()
        hash.add(options.localOnly.rawValue)
        hash.add(String(options.terms.dailyLimit))
        hash.add(options.terms.allowedCountries?.codes.joined(separator: ",") ?? "-")
        hash.add(report.format.rawValue)
        for entry in report.entries {
            hash.add(String(entry.line))
            hash.add(entry.number)
            hash.add(entry.action.rawValue)
            hash.add(entry.reason)
            for change in entry.changes {
                hash.add(change.field)
                hash.add(change.before)
                hash.add(change.after)
            }
            hash.separate()
        }
        let hex = String(hash.value, radix: 16)
        return "sync1-" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// FNV-1a, 64 bits: a stable hash (unlike `Hasher`, the same in every process).
struct FNV1a {
    private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325

    mutating func add(_ text: String) {
        for byte in text.utf8 { self.byte(byte) }
        self.byte(0x1F)
    }

    mutating func separate() { self.byte(0x1E) }

    private mutating func byte(_ byte: UInt8) {
        self.value = (self.value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
    }
}
