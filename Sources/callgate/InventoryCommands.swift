import ArgumentParser
import CallgateClient
import CallgateWire
import Foundation

// MARK: - numbers sync

enum LocalOnlyArgument: String, ExpressibleByArgument, CaseIterable {
    case keep
    case deactivate
    case deleteUnassigned = "delete-unassigned"

    var wire: String { self == .deleteUnassigned ? "delete_unassigned" : self.rawValue }
}

/// `--daily-limit` and `--countries` of the bulk commands.
struct BulkTermsOptions: ParsableArguments {
    @Option(help: "Daily call limit of the assignments made (default 100; 0 allows no calls).")
    var dailyLimit: UInt32?

    @Option(
        help: ArgumentHelp(
            "Allowed destination countries of the assignments made, comma-separated (default: each number's own).",
            valueName: "list"
        )
    )
    var countries: String?

    var wire: Wire.AssignmentTerms {
        Wire.AssignmentTerms(
            dailyLimit: dailyLimit ?? 0,
            allowedCountries: splitCountries(countries),
            zeroLimit: dailyLimit == 0
        )
    }
}

/// Reads a text file (or standard input for `-`).
func readTextFile(_ path: String) throws -> String {
    if path == "-" { return String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) }
    do {
        return try String(contentsOfFile: path, encoding: .utf8)
    } catch {
        throw CLIError(code: "INVALID_ARGUMENT", message: "cannot read \(path) as UTF-8 text", exitCode: 2)
    }
}

/// Agent ids from a file: one or more per line (separated by commas or blanks); `#` starts a comment.
func readList(_ path: String) throws -> [String] {
    try readTextFile(path).split(whereSeparator: \.isNewline).flatMap { line in
        line.prefix { $0 != "#" }.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }).map(String.init)
    }
}

/// Phone numbers from a file: one or more per line separated by commas; `#` starts a comment. Blanks
/// are part of a number (`+1 415 555 0100`), so they do not separate numbers.
func readNumberList(_ path: String) throws -> [String] {
    try readTextFile(path).split(whereSeparator: \.isNewline).flatMap { line in
        line.prefix { $0 != "#" }.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }
}

struct SyncNumbers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Compare the inventory with a provider's (or directory's) list, then make it match.",
        discussion: """
            FILE is the source of truth in any format `numbers import` reads, optionally with an assigned_to \
            column (an agent id assigns the number, re-assigning it from another agent; - or none releases it; \
            an empty cell leaves the assignment alone). --dry-run prints the diff and its token; \
            --apply --token T applies exactly that diff, or fails with FAILED_PRECONDITION if the inventory \
            changed since. --apply without --token makes a dry run and applies the diff it printed. A file \
            with bad rows is applied only with --skip-bad-rows.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The CSV file, or - for standard input.", valueName: "file"))
    var file: String

    @Flag(help: "Print the diff and its token; change nothing.")
    var dryRun = false

    @Flag(help: "Apply the diff (of --token, or of a dry run made now).")
    var apply = false

    @Option(help: ArgumentHelp("The token a dry run printed.", valueName: "token"))
    var token: String?

    @Option(help: "Numbers the organization has and the file does not: keep, deactivate or delete-unassigned.")
    var localOnly: LocalOnlyArgument = .keep

    @OptionGroup var terms: BulkTermsOptions

    @Option(help: ArgumentHelp("Provider of the rows that give none (required for a plain list).", valueName: "name"))
    var defaultProvider: String?

    @Flag(help: "Apply the good rows of a file that has bad ones.")
    var skipBadRows = false

    @Flag(help: "List only what changes (and rejected rows); the totals count everything.")
    var changesOnly = false

    func validate() throws {
        guard dryRun != apply else { throw ValidationError("Give --dry-run or --apply.") }
        if token != nil && !apply { throw ValidationError("--token goes with --apply.") }
    }

    func run() async throws {
        let csv = try readTextFile(file)
        var request = Wire.SyncNumbersRequest(
            csv: csv,
            defaultProvider: defaultProvider ?? "",
            localOnly: localOnly.wire,
            terms: terms.wire,
            skipBadRows: skipBadRows,
            omitUnchanged: changesOnly
        )
        let response = try await global.withClient { client in
            let maximum = Int(client.session.maxFrameBytes)
            if maximum > 0 && csv.utf8.count + 256 > maximum {
                throw CLIError(
                    code: "INVALID_ARGUMENT",
                    message: """
                        \(file) is \(csv.utf8.count) bytes; the server accepts requests up to \(maximum) bytes \
                        (start callgated with a larger --max-frame-bytes)
                        """,
                    exitCode: 2
                )
            }
            if apply {
                if let token {
                    request.token = token
                } else {
                    let dry = try await client.call(.syncNumbers(request), timeout: .seconds(600)) {
                        if case .syncNumbers(let value) = $0 { value } else { nil }
                    }
                    request.token = dry.token
                }
                request.apply = true
            }
            return try await client.call(.syncNumbers(request), timeout: .seconds(600)) {
                if case .syncNumbers(let value) = $0 { value } else { nil }
            }
        }
        let entries = response.entries.filter { !changesOnly || $0.action != "unchanged" }
        let json = JSON.object([
            ("applied", .bool(response.applied)),
            ("token", .string(response.token)),
            ("format", .string(response.format)),
            ("local_only", .string(localOnly.wire)),
            (
                "entries",
                .array(
                    entries.map {
                        .object([
                            ("line", $0.line == 0 ? .null : .int($0.line)),
                            ("number", .string($0.number)),
                            ("action", .string($0.action)),
                            (
                                "changes",
                                .array(
                                    $0.changes.map {
                                        .object([
                                            ("field", .string($0.field)), ("before", .optional($0.before)),
                                            ("after", .optional($0.after)),
                                        ])
                                    }
                                )
                            ),
                            ("reason", .optional($0.reason)),
                        ])
                    }
                )
            ),
            ("to_add", .int(response.toAdd)),
            ("to_update", .int(response.toUpdate)),
            ("unchanged", .int(response.unchanged)),
            ("local_only_numbers", .int(response.localOnly)),
            ("rejected", .int(response.rejected)),
            ("to_assign", .int(response.toAssign)),
            ("to_release", .int(response.toRelease)),
            ("to_deactivate", .int(response.toDeactivate)),
            ("to_delete", .int(response.toDelete)),
        ])
        var table = Table(["LINE", "NUMBER", "ACTION", "CHANGES"], rightAligned: [0])
        for entry in entries {
            var details = entry.changes.map { "\($0.field): \(dash($0.before)) → \(dash($0.after))" }
            if !entry.reason.isEmpty { details.append(entry.reason) }
            table.append([
                entry.line == 0 ? "-" : "\(entry.line)", entry.number,
                entry.action.replacingOccurrences(of: "_", with: "-"),
                details.isEmpty ? "-" : details.joined(separator: "; "),
            ])
        }
        var text = entries.isEmpty ? "(nothing to list)" : table.rendered()
        text += "\n\n\(response.format) file: \(response.toAdd) to add, \(response.toUpdate) to update, "
        text += "\(response.unchanged) unchanged, \(response.localOnly) only local, \(response.rejected) rejected; "
        text += "\(response.toAssign) assignments, \(response.toRelease) releases, "
        text += "\(response.toDeactivate) to deactivate, \(response.toDelete) to delete"
        if response.applied {
            text += "\napplied (token \(response.token))"
        } else {
            text += "\ntoken: \(response.token)\n(dry run: nothing was changed; apply this diff with "
            text += "callgate numbers sync \(file) --apply --token \(response.token)"
            if localOnly != .keep { text += " --local-only \(localOnly.rawValue)" }
            text += " and the same options)"
        }
        global.emit(json, text)
    }
}

// MARK: - pools

struct Pools: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pool (tag) capacity: available, reserved, assigned and inactive numbers; low-capacity thresholds.",
        subcommands: [ListPools.self, PoolThreshold.self],
        defaultSubcommand: ListPools.self
    )
}

extension Wire.PoolInfo {
    var json: JSON {
        .object([
            ("tag", .string(tag)),
            ("available", .int(available)),
            ("reserved", .int(reserved)),
            ("assigned", .int(assigned)),
            ("inactive", .int(inactive)),
            ("total", .int(total)),
            ("threshold", threshold == 0 ? .null : .int(threshold)),
            ("below_threshold", .bool(belowThreshold)),
        ])
    }
}

func poolsTable(_ pools: [Wire.PoolInfo]) -> String {
    var table = Table(
        ["POOL", "AVAILABLE", "RESERVED", "ASSIGNED", "INACTIVE", "TOTAL", "THRESHOLD", "LOW"],
        rightAligned: [1, 2, 3, 4, 5, 6]
    )
    for pool in pools {
        table.append([
            pool.tag, "\(pool.available)", "\(pool.reserved)", "\(pool.assigned)", "\(pool.inactive)",
            "\(pool.total)", pool.threshold == 0 ? "-" : "\(pool.threshold)", pool.belowThreshold ? "LOW" : "",
        ])
    }
    return pools.isEmpty ? "(no pools)" : table.rendered()
}

struct ListPools: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Per pool (tag): available / reserved / assigned / inactive counts (the default)."
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "Only this pool (tag).")
    var tag: String?

    func run() async throws {
        let (pools, _) = try await global.withClient { client in
            try await collectPages(limit: nil, all: true, cursor: nil) { cursor, pageSize in
                let page = try await client.call(
                    .poolCapacity(Wire.PoolCapacityRequest(tag: tag ?? "", cursor: cursor, pageSize: pageSize))
                ) { if case .poolCapacity(let value) = $0 { value } else { nil } }
                return (page.pools, page.nextCursor)
            }
        }
        global.emit(.object([("pools", .array(pools.map(\.json)))]), poolsTable(pools))
    }
}

struct PoolThreshold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "threshold",
        abstract: "Warn (stats, metrics) when a pool has fewer than N available numbers; N = 0 removes the warning."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The pool (tag).")
    var tag: String

    @Argument(help: "The threshold (0 removes it).")
    var threshold: UInt32

    func run() async throws {
        let pool = try await global.withClient { client in
            try await client.call(
                .setPoolThreshold(Wire.SetPoolThresholdRequest(tag: tag, threshold: threshold))
            ) { if case .setPoolThreshold(let value) = $0 { value } else { nil } }
        }
        let what = threshold == 0 ? "removed the threshold of \(pool.tag)" : "threshold of \(pool.tag): \(threshold)"
        global.emit(pool.json, what + "\n" + poolsTable([pool]))
    }
}

// MARK: - bulk operations

/// Agent ids from `--agents a,b` and/or `--agents-file F`.
struct AgentListOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Agent ids, comma-separated.", valueName: "list"))
    var agents: String?

    @Option(
        help: ArgumentHelp("A file of agent ids (one per line, or comma-separated; # comments).", valueName: "file")
    )
    var agentsFile: String?

    func ids() throws -> [String] {
        var ids = splitList(agents)
        if let agentsFile { ids += try readList(agentsFile) }
        return ids
    }
}

func bulkRowsTable(_ response: Wire.BulkResponse) -> String {
    var table = Table(["NUMBER", "AGENT", "OUTCOME", "REASON"])
    for row in response.rows { table.append([row.number, dash(row.agentID), row.outcome, dash(row.reason)]) }
    return response.rows.isEmpty ? "(no numbers)" : table.rendered()
}

extension Wire.BulkResponse {
    var json: JSON {
        .object([
            (
                "rows",
                .array(
                    rows.map {
                        .object([
                            ("number", .string($0.number)), ("agent_id", .optional($0.agentID)),
                            ("outcome", .string($0.outcome)), ("reason", .optional($0.reason)),
                        ])
                    }
                )
            ),
            ("changed", .int(changed)),
            ("unchanged", .int(unchanged)),
            ("skipped", .int(skipped)),
        ])
    }
}

struct AssignMany: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "assign-many",
        abstract: "Give each agent N available numbers from a pool, in one transaction.",
        discussion: """
            Numbers are taken in pick order (released longest ago first). Without --all-or-nothing an agent \
            that fails (unknown, inactive, listed twice, pool exhausted) is reported and the others are \
            assigned; with it, any failure assigns nothing.
            """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var agentList: AgentListOptions

    @Option(help: "The pool (tag) to take numbers from.")
    var pool: String

    @Option(help: "Numbers per agent (1 to 1000).")
    var perAgent: UInt32

    @OptionGroup var terms: BulkTermsOptions

    @Flag(help: "Assign nothing unless every agent gets its numbers.")
    var allOrNothing = false

    func run() async throws {
        let ids = try agentList.ids()
        guard !ids.isEmpty else { throw CLIError.usage("give --agents or --agents-file") }
        let request = Wire.BulkAssignRequest(
            agentIds: ids,
            criteria: Wire.NumberCriteria(tag: pool),
            perAgent: perAgent,
            terms: terms.wire,
            allOrNothing: allOrNothing
        )
        let response = try await global.withClient { client in
            try await client.call(.bulkAssign(request), timeout: .seconds(600)) {
                if case .bulkAssign(let value) = $0 { value } else { nil }
            }
        }
        let json = JSON.object([
            (
                "rows",
                .array(
                    response.rows.map {
                        .object([
                            ("agent_id", .string($0.agentID)), ("outcome", .string($0.outcome)),
                            ("numbers", .strings($0.numbers)), ("reason", .optional($0.reason)),
                        ])
                    }
                )
            ),
            ("assigned", .int(response.assigned)),
            ("rejected", .int(response.rejected)),
        ])
        var table = Table(["AGENT", "OUTCOME", "NUMBERS", "REASON"])
        for row in response.rows {
            table.append([row.agentID, row.outcome, joined(row.numbers), dash(row.reason)])
        }
        global.emit(
            json,
            table.rendered() + "\n\n\(response.assigned) numbers assigned, \(response.rejected) agents rejected"
        )
    }
}

struct ReleaseMany: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release-many",
        abstract: "Release many numbers in one transaction: the numbers given, or all numbers of the agents given."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The numbers to release.")
    var numbers: [String] = []

    @Option(help: ArgumentHelp("A file of numbers to release (one per line).", valueName: "file"))
    var numbersFile: String?

    @OptionGroup var agentList: AgentListOptions

    func run() async throws {
        let list = numbers + (try numbersFile.map(readNumberList) ?? [])
        let agents = try agentList.ids()
        guard list.isEmpty != agents.isEmpty else {
            throw CLIError.usage("give either numbers or --agents / --agents-file (exactly one of them)")
        }
        let response = try await global.withClient { client in
            try await client.call(
                .bulkRelease(Wire.BulkReleaseRequest(numbers: list, agentIds: agents)),
                timeout: .seconds(600)
            ) { if case .bulkRelease(let value) = $0 { value } else { nil } }
        }
        global.emit(
            response.json,
            bulkRowsTable(response) + "\n\n\(response.changed) released, \(response.skipped) skipped"
        )
    }
}

struct UpdateStatusMany: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update-status-many",
        abstract: "Set the status of many numbers in one transaction: the numbers given, or those matching filters."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The numbers.")
    var numbers: [String] = []

    @Option(help: ArgumentHelp("A file of numbers (one per line).", valueName: "file"))
    var numbersFile: String?

    @Option(help: "The new status: active or inactive.")
    var status: StatusArgument

    @OptionGroup var criteria: CriteriaOptions

    @Option(help: "Filter: available, reserved or assigned.")
    var state: StateArgument?

    @Option(help: "Filter: the numbers of this agent.")
    var agent: String?

    func run() async throws {
        let list = numbers + (try numbersFile.map(readNumberList) ?? [])
        let request = Wire.BulkUpdateStatusRequest(
            numbers: list,
            criteria: criteria.wire,
            state: state?.rawValue ?? "",
            agentID: agent ?? "",
            status: status.wire
        )
        let response = try await global.withClient { client in
            try await client.call(.bulkUpdateStatus(request), timeout: .seconds(600)) {
                if case .bulkUpdateStatus(let value) = $0 { value } else { nil }
            }
        }
        global.emit(
            response.json,
            bulkRowsTable(response)
                + "\n\n\(response.changed) updated, \(response.unchanged) already \(status.rawValue)"
        )
    }
}

struct DeleteMany: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete-many",
        abstract: "Delete many unassigned numbers in one transaction: listed, matching filters, or all of them.",
        discussion: """
            Assigned and reserved numbers are never deleted: listed ones fail the command unless --skip-held; \
            a filter or --all-unassigned skips them. --all-unassigned needs --yes-delete-all-unassigned.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The numbers.")
    var numbers: [String] = []

    @Option(help: ArgumentHelp("A file of numbers (one per line).", valueName: "file"))
    var numbersFile: String?

    @OptionGroup var criteria: CriteriaOptions

    @Option(help: "Filter: available or reserved (assigned numbers are never deleted).")
    var state: StateArgument?

    @Flag(help: "Delete every unassigned, unreserved number of the organization.")
    var allUnassigned = false

    @Flag(help: "Confirm --all-unassigned.")
    var yesDeleteAllUnassigned = false

    @Flag(help: "Skip listed numbers that are assigned or reserved instead of failing.")
    var skipHeld = false

    func validate() throws {
        if allUnassigned && !yesDeleteAllUnassigned {
            throw ValidationError(
                "--all-unassigned deletes every unassigned number: add --yes-delete-all-unassigned to do it."
            )
        }
    }

    func run() async throws {
        let list = numbers + (try numbersFile.map(readNumberList) ?? [])
        let request = Wire.BulkDeleteRequest(
            numbers: list,
            criteria: criteria.wire,
            state: state?.rawValue ?? "",
            allUnassigned: allUnassigned,
            confirmDeleteAllUnassigned: yesDeleteAllUnassigned,
            skipHeld: skipHeld
        )
        let response = try await global.withClient { client in
            try await client.call(.bulkDelete(request), timeout: .seconds(600)) {
                if case .bulkDelete(let value) = $0 { value } else { nil }
            }
        }
        global.emit(
            response.json,
            bulkRowsTable(response) + "\n\n\(response.changed) deleted, \(response.skipped) skipped"
        )
    }
}
