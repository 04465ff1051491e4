import ArgumentParser
import CallgateClient
import CallgateWire
import Foundation

struct Numbers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the number inventory.",
        subcommands: [
            AddNumber.self, ImportNumbers.self, ListNumbers.self, ShowNumber.self, UpdateNumber.self,
            DeleteNumbers.self, SyncNumbers.self,
        ]
    )
}

enum StatusArgument: String, ExpressibleByArgument, CaseIterable {
    case active
    case inactive

    var wire: Wire.NumberStatus { self == .active ? .active : .inactive }
}

enum StateArgument: String, ExpressibleByArgument, CaseIterable {
    case available
    case reserved
    case assigned
}

/// The filters of PickNumber and `numbers list` (`NumberCriteria`).
struct CriteriaOptions: ParsableArguments {
    @Option(help: "ISO country code (US).")
    var country: String?

    @Option(help: "Leading digits after + (1415).")
    var prefix: String?

    @Option(help: "Tag (pool, department, range).")
    var tag: String?

    @Option(help: "Location.")
    var location: String?

    @Option(help: ArgumentHelp("Required capabilities, comma-separated (voice,sms).", valueName: "list"))
    var capabilities: String?

    @Option(help: "Provider (telnyx, twilio, …).")
    var provider: String?

    @Option(help: "Free-text search: digits, provider, location, tags, type, holder's agent id or name.")
    var text: String?

    @Option(help: ArgumentHelp("North American area code (415).", valueName: "digits"))
    var areaCode: String?

    @Option(
        help: ArgumentHelp(
            "The whole number with wildcards: ? one digit, * any digits (+1415???0000).",
            valueName: "pattern"
        )
    )
    var pattern: String?

    var wire: Wire.NumberCriteria {
        Wire.NumberCriteria(
            country: country?.uppercased() ?? "",
            prefix: prefix.map { $0.hasPrefix("+") ? String($0.dropFirst()) : $0 } ?? "",
            tag: tag ?? "",
            location: location ?? "",
            capabilities: splitList(capabilities),
            provider: provider ?? "",
            text: text ?? "",
            areaCode: areaCode ?? "",
            pattern: pattern ?? ""
        )
    }
}

struct AddNumber: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Add one number.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The number (E.164; pasted forms are accepted).")
    var number: String

    @Option(help: "Provider (telnyx, twilio, …).")
    var provider: String?

    @Option(help: "ISO country code; derived from the number when omitted.")
    var country: String?

    @Option(help: ArgumentHelp("Capabilities, comma-separated (voice,sms).", valueName: "list"))
    var capabilities: String?

    @Flag(help: "Add the number as inactive.")
    var inactive = false

    @Option(help: "Location.")
    var location: String?

    @Option(name: .customLong("tag"), help: "A tag; repeat for more.")
    var tags: [String] = []

    @Option(name: .customLong("type"), help: "Number type (did, tollfree, …).")
    var numberType: String?

    func run() async throws {
        let request = Wire.AddNumberRequest(
            number: number,
            provider: provider ?? "",
            country: country?.uppercased() ?? "",
            capabilities: splitList(capabilities),
            status: inactive ? .inactive : .active,
            location: location ?? "",
            tags: tags.flatMap { splitList($0) },
            numberType: numberType ?? ""
        )
        let info = try await global.withClient { client in
            try await client.call(.addNumber(request)) { if case .addNumber(let value) = $0 { value } else { nil } }
        }
        global.emit(info.json, "added \(info.number)\n" + info.text)
    }
}

struct ImportNumbers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import numbers from a CSV file (number,provider,country[,…]).",
        discussion: """
            Reads number,provider,country[,location,tags,type,capabilities] with or without a header, a \
            plain list of numbers (give --default-provider), or a Telnyx or Twilio number export. Every \
            row is reported: added, updated (with the fields changed), unchanged, or rejected with its \
            line and reason. The good rows are applied together, in one transaction.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The CSV file, or - for standard input.", valueName: "file"))
    var file: String

    @Flag(help: "Report what would happen without changing anything.")
    var dryRun = false

    @Option(help: ArgumentHelp("Provider of the rows that give none (required for a plain list).", valueName: "name"))
    var defaultProvider: String?

    @Flag(help: "List only the rows that were rejected or updated (the totals count every row).")
    var changesOnly = false

    func run() async throws {
        let csv: String
        if file == "-" {
            csv = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            do {
                csv = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw CLIError(code: "INVALID_ARGUMENT", message: "cannot read \(file) as UTF-8 text", exitCode: 2)
            }
        }
        let response = try await global.withClient { client in
            let maximum = Int(client.session.maxFrameBytes)
            if maximum > 0 && csv.utf8.count + (defaultProvider?.utf8.count ?? 0) + 64 > maximum {
                throw CLIError(
                    code: "INVALID_ARGUMENT",
                    message: """
                        \(file) is \(csv.utf8.count) bytes; the server accepts requests up to \(maximum) bytes: \
                        split the file (or start callgated with a larger --max-frame-bytes)
                        """,
                    exitCode: 2
                )
            }
            return try await client.call(
                .importNumbers(
                    Wire.ImportNumbersRequest(csv: csv, dryRun: dryRun, defaultProvider: defaultProvider ?? "")
                ),
                timeout: .seconds(600)
            ) { if case .importNumbers(let value) = $0 { value } else { nil } }
        }
        let json = JSON.object([
            ("dry_run", .bool(dryRun)),
            ("format", .string(response.format)),
            (
                "rows",
                .array(
                    response.rows.map {
                        .object([
                            ("line", .int($0.line)),
                            ("number", .optional($0.number)),
                            ("outcome", .string($0.outcome)),
                            ("reason", .optional($0.reason)),
                        ])
                    }
                )
            ),
            ("added", .int(response.added)),
            ("updated", .int(response.updated)),
            ("unchanged", .int(response.unchanged)),
            ("rejected", .int(response.rejected)),
        ])
        var table = Table(["LINE", "NUMBER", "OUTCOME", "REASON"], rightAligned: [0])
        let listed = response.rows.filter { !changesOnly || $0.outcome == "rejected" || $0.outcome == "updated" }
        for row in listed {
            table.append(["\(row.line)", dash(row.number), row.outcome, dash(row.reason)])
        }
        var text =
            listed.isEmpty ? (response.rows.isEmpty ? "(no rows)" : "(no rows rejected or updated)") : table.rendered()
        text += "\n\n\(response.format.isEmpty ? "" : "\(response.format) file: ")"
        text += "\(response.added) added, \(response.updated) updated, \(response.unchanged) unchanged, "
        text += "\(response.rejected) rejected"
        if dryRun { text += " (dry run: nothing was changed)" }
        global.emit(json, text)
    }
}

struct ListNumbers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List numbers.")

    @OptionGroup var global: GlobalOptions

    @OptionGroup var criteria: CriteriaOptions

    @Option(help: "active or inactive.")
    var status: StatusArgument?

    @Option(help: "available, reserved or assigned.")
    var state: StateArgument?

    @Option(help: "Only the numbers of this agent.")
    var agent: String?

    @Option(help: "At most this many numbers (default: one page of 100).")
    var limit: Int?

    @Option(help: "Continue from this cursor (printed when there is more).")
    var cursor: String?

    @Flag(help: "Follow the cursors to the end.")
    var all = false

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() async throws {
        var request = Wire.ListNumbersRequest(
            criteria: criteria.wire,
            status: status?.wire ?? .unspecified,
            state: state?.rawValue ?? "",
            agentID: agent ?? ""
        )
        let (numbers, next) = try await global.withClient { client in
            try await collectPages(limit: limit, all: all, cursor: cursor) { cursor, pageSize in
                request.cursor = cursor
                request.pageSize = pageSize
                let page = try await client.call(.listNumbers(request)) {
                    if case .listNumbers(let value) = $0 { value } else { nil }
                }
                return (page.numbers, page.nextCursor)
            }
        }
        global.emit(
            .object([("numbers", .array(numbers.map(\.json))), ("next_cursor", .optional(next))]),
            numbersTable(numbers)
        )
        noteMore(next, global)
    }
}

struct ShowNumber: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one number.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The number.")
    var number: String

    func run() async throws {
        let info = try await global.withClient { client in
            try await client.call(.getNumber(Wire.GetNumberRequest(number: number))) {
                if case .getNumber(let value) = $0 { value } else { nil }
            }
        }
        global.emit(info.json, info.text)
    }
}

struct UpdateNumber: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Change a number's fields; only the options given change."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The number.")
    var number: String

    @Option(help: "Provider.")
    var provider: String?

    @Option(help: "active or inactive.")
    var status: StatusArgument?

    @Option(help: "Location (empty to clear).")
    var location: String?

    @Option(help: ArgumentHelp("Tags, comma-separated (empty to clear).", valueName: "list"))
    var tags: String?

    @Option(help: ArgumentHelp("Capabilities, comma-separated.", valueName: "list"))
    var capabilities: String?

    @Option(name: .customLong("type"), help: "Number type (did, tollfree, …).")
    var numberType: String?

    func validate() throws {
        if provider == nil && status == nil && location == nil && tags == nil && capabilities == nil
            && numberType == nil
        {
            throw ValidationError(
                "Nothing to update: give --provider, --status, --location, --tags, --capabilities or --type."
            )
        }
    }

    func run() async throws {
        var request = Wire.UpdateNumberRequest(number: number)
        if let provider {
            request.fields.append("provider")
            request.provider = provider
        }
        if let capabilities {
            request.fields.append("capabilities")
            request.capabilities = splitList(capabilities)
        }
        if let status {
            request.fields.append("status")
            request.status = status.wire
        }
        if let location {
            request.fields.append("location")
            request.location = location
        }
        if let tags {
            request.fields.append("tags")
            request.tags = splitList(tags)
        }
        if let numberType {
            request.fields.append("number_type")
            request.numberType = numberType
        }
        let info = try await global.withClient { client in
            try await client.call(.updateNumber(request)) {
                if case .updateNumber(let value) = $0 { value } else { nil }
            }
        }
        global.emit(info.json, "updated \(info.number)\n" + info.text)
    }
}

struct DeleteNumbers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete",
        abstract: "Delete unassigned numbers: the ones named, or all of them with --all-unassigned --confirm."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The numbers to delete.")
    var numbers: [String] = []

    @Flag(help: "Delete every unassigned number of the organization (needs --confirm).")
    var allUnassigned = false

    @Flag(help: "Confirm --all-unassigned.")
    var confirm = false

    func validate() throws {
        if allUnassigned {
            guard numbers.isEmpty else { throw ValidationError("Give numbers or --all-unassigned, not both.") }
            guard confirm else {
                throw ValidationError("--all-unassigned deletes every unassigned number; add --confirm to do it.")
            }
        } else if numbers.isEmpty {
            throw ValidationError("Give the numbers to delete, or --all-unassigned --confirm.")
        }
    }

    func run() async throws {
        let request = Wire.DeleteNumbersRequest(numbers: numbers, allUnassigned: allUnassigned, confirmAll: confirm)
        let response = try await global.withClient { client in
            try await client.call(.deleteNumbers(request), timeout: .seconds(600)) {
                if case .deleteNumbers(let value) = $0 { value } else { nil }
            }
        }
        global.emit(.object([("deleted", .int(response.deleted))]), "deleted \(response.deleted)")
    }
}
