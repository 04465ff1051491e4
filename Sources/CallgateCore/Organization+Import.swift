/// What became of one import row.
public enum ImportOutcome: String, Sendable, Hashable {
    /// A new number, added available.
    case added
    /// Already present with the same attributes.
    case unchanged
    /// Already present; its attributes were changed to the row's.
    case updated
    /// Not applied; the reason says why.
    case rejected
}

/// The result of one import row.
public struct ImportRowResult: Sendable, Hashable {
    public var line: Int
    /// E.164 when the number could be read, else the text as written.
    public var number: String
    public var outcome: ImportOutcome
    /// Why a row was rejected, or which fields an update changed.
    public var reason: String

    public init(line: Int, number: String, outcome: ImportOutcome, reason: String) {
        self.line = line
        self.number = number
        self.outcome = outcome
        self.reason = reason
    }
}

/// The report of an import: one result per data row, in file order, and the totals.
public struct ImportReport: Sendable {
    public var format: ImportFormat
    public var rows: [ImportRowResult] = []
    public var added = 0
    public var unchanged = 0
    public var updated = 0
    public var rejected = 0
    public var dryRun: Bool
    /// The change that applied the import (`nil` for a dry run or when nothing changed).
    public var ticket: ChangeTicket?

    public init(format: ImportFormat, dryRun: Bool) {
        self.format = format
        self.dryRun = dryRun
    }
}

extension Organization {
    /// Imports numbers from CSV text (see ``ImportFile`` for the layouts and ``importNumbers(_:dryRun:actor:)``).
    public func importNumbers(
        csv: String,
        defaultProvider: String? = nil,
        dryRun: Bool = false,
        actor: Actor
    ) throws(CallgateError) -> ImportReport {
        try self.importNumbers(ImportFile.parse(csv, defaultProvider: defaultProvider), dryRun: dryRun, actor: actor)
    }

    /// Applies an import: every good row is added (new number, available), updated (present with other
    /// attributes: they change, whatever the number's lifecycle state) or unchanged; bad rows are reported
    /// and skipped.
    ///
    /// All the good rows are applied as **one** change under the pool lock: if the store refuses it,
    /// nothing is applied and the error is thrown; nobody ever sees half an import. A number made inactive
    /// by an import stops authorizing at once, as with ``updateNumber(_:_:actor:)``.
    ///
    /// - Parameter dryRun: compute the same report and change nothing.
    public func importNumbers(_ file: ImportFile, dryRun: Bool, actor: Actor) throws(CallgateError) -> ImportReport {
        let now = self.clock.now()
        let day = self.day.window(containing: now)
        var report = ImportReport(format: file.format, dryRun: dryRun)
        report.rows.reserveCapacity(file.rows.count)
        return try self.pool.withLock { (pool) throws(CallgateError) -> ImportReport in
            var added: [NumberRecord] = []
            var updated: [(before: NumberRecord, after: NumberRecord)] = []
            var newEntries: [(PhoneNumber, NumberEntry)] = []
            var changedEntries: [(PhoneNumber, NumberEntry)] = []
            for row in file.rows {
                let values: ImportValues
                switch row.values {
                case .failure(let error):
                    report.rows.append(
                        ImportRowResult(line: row.line, number: row.text, outcome: .rejected, reason: error.message)
                    )
                    report.rejected += 1
                    continue
                case .success(let v):
                    values = v
                }
                guard let number = row.number else { continue }
                if var entry = pool.numbers[number] {
                    let after = values.applied(to: entry.attributes)
                    guard after != entry.attributes else {
                        report.rows.append(
                            ImportRowResult(line: row.line, number: row.text, outcome: .unchanged, reason: "")
                        )
                        report.unchanged += 1
                        continue
                    }
                    let changed = Self.changedFields(entry.attributes, after)
                    let beforeRecord = self.numberRecord(number, entry, dayKey: day.key, now: now)
                    entry.attributes = after
                    entry.modifiedAt = now
                    entry.modifiedBy = actor
                    var afterRecord = beforeRecord
                    afterRecord.attributes = after
                    afterRecord.modifiedAt = now
                    afterRecord.modifiedBy = actor
                    updated.append((beforeRecord, afterRecord))
                    changedEntries.append((number, entry))
                    report.rows.append(
                        ImportRowResult(line: row.line, number: row.text, outcome: .updated, reason: changed)
                    )
                    report.updated += 1
                } else {
                    let entry = NumberEntry(
                        attributes: values.applied(to: nil),
                        lifecycle: .available,
                        releasedAt: nil,
                        createdAt: now,
                        createdBy: actor,
                        modifiedAt: now,
                        modifiedBy: actor,
                        counter: .zero
                    )
                    added.append(self.numberRecord(number, entry, dayKey: 0, now: now))
                    newEntries.append((number, entry))
                    report.rows.append(ImportRowResult(line: row.line, number: row.text, outcome: .added, reason: ""))
                    report.added += 1
                }
            }
            guard !dryRun, !added.isEmpty || !updated.isEmpty else { return report }
            // In number order, the store writes its rows and index entries in key order (a file in
            // random order touches B-tree pages at random: 1.6 times the store's time for 100,000 rows).
            added.sort { $0.number < $1.number }
            updated.sort { $0.after.number < $1.after.number }
            // One change for the whole import: if the store refuses it, nothing is applied.
            report.ticket = try self.changes.record(
                self.change(now, actor, .numbersImported(added: added, updated: updated))
            )
            pool.add(contentsOf: newEntries)
            for (number, entry) in changedEntries {
                let previous = pool.numbers[number]?.attributes.status
                pool.replace(number, with: entry)
                Self.tellHolder(number, entry, previousStatus: previous)
            }
            return report
        }
    }

    /// The names of the fields that differ, for the report of an updated row.
    static func changedFields(_ a: NumberAttributes, _ b: NumberAttributes) -> String {
        "changed: " + Self.fieldChanges(a, b).map(\.field).joined(separator: ", ")
    }
}

extension ImportValues {
    /// The attributes after the row: its values over `current` (or over the defaults for a new number).
    func applied(to current: NumberAttributes?) -> NumberAttributes {
        NumberAttributes(
            provider: self.provider,
            country: self.country,
            capabilities: self.capabilities ?? current?.capabilities ?? .voice,
            status: self.status ?? current?.status ?? .active,
            location: self.location ?? current?.location ?? "",
            tags: self.tags ?? current?.tags ?? [],
            numberType: self.numberType ?? current?.numberType ?? "did"
        )
    }
}
