import ArgumentParser
import CallgateClient
import CallgateWire

/// The terms of an assignment given on the command line (`--limit`, `--countries`).
struct TermsOptions: ParsableArguments {
    @Option(help: "Daily call limit (default 100; 0 allows no calls).")
    var limit: UInt32?

    @Option(
        help: ArgumentHelp(
            "Allowed destination countries, comma-separated (default: the number's own).",
            valueName: "list"
        )
    )
    var countries: String?

    var wire: Wire.AssignmentTerms {
        Wire.AssignmentTerms(
            dailyLimit: limit ?? 0,
            allowedCountries: splitCountries(countries),
            zeroLimit: limit == 0
        )
    }
}

struct Assign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Assign a number to an agent.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The number.")
    var number: String

    @Argument(help: "The agent's id.")
    var agent: String

    @OptionGroup var terms: TermsOptions

    @Option(help: ArgumentHelp("The reservation token from `pick --reserve`.", valueName: "token"))
    var reservation: UInt64?

    func run() async throws {
        let request = Wire.AssignRequest(
            number: number,
            agentID: agent,
            terms: terms.wire,
            reservationToken: reservation ?? 0
        )
        let assignment = try await global.withClient { client in
            try await client.call(.assign(request)) { if case .assign(let value) = $0 { value } else { nil } }
        }
        global.emit(assignment.json, assignment.text)
    }
}

struct Release: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Release a number from its agent.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The number.")
    var number: String

    @Option(help: ArgumentHelp("Fail unless this agent holds the number.", valueName: "id"))
    var expectAgent: String?

    func run() async throws {
        let request = Wire.ReleaseRequest(number: number, expectedAgentID: expectAgent ?? "")
        let response = try await global.withClient { client in
            try await client.call(.release(request)) { if case .release(let value) = $0 { value } else { nil } }
        }
        global.emit(.object([("number", .string(response.number))]), "released \(response.number)")
    }
}

struct Assignments: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List assignments with today's usage, or change their terms.",
        subcommands: [ListAssignments.self, UpdateAssignment.self],
        defaultSubcommand: ListAssignments.self
    )
}

struct ListAssignments: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List assignments with today's usage (the default)."
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Only this agent's assignments.", valueName: "id"))
    var agent: String?

    func run() async throws {
        let (assignments, _) = try await global.withClient { client in
            try await collectPages(limit: nil, all: true, cursor: nil) { cursor, pageSize in
                let request = Wire.ListAssignmentsRequest(agentID: agent ?? "", cursor: cursor, pageSize: pageSize)
                let page = try await client.call(.listAssignments(request)) {
                    if case .listAssignments(let value) = $0 { value } else { nil }
                }
                return (page.assignments, page.nextCursor)
            }
        }
        var table = Table(["NUMBER", "AGENT", "USED/LIMIT", "REMAINING", "COUNTRIES", "ACTIVE"], rightAligned: [2, 3])
        for assignment in assignments {
            table.append([
                assignment.number, assignment.agentID, "\(assignment.countToday)/\(assignment.dailyLimit)",
                "\(assignment.remainingToday)", joined(assignment.allowedCountries),
                assignment.numberActive ? "yes" : "no",
            ])
        }
        global.emit(
            .object([("assignments", .array(assignments.map(\.json)))]),
            assignments.isEmpty ? "(no assignments)" : table.rendered()
        )
    }
}

struct UpdateAssignment: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "update",
        abstract: "Change an assignment's daily limit or countries; only the options given change."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The assigned number.")
    var number: String

    @Option(help: "Daily call limit.")
    var limit: UInt32?

    @Option(help: ArgumentHelp("Allowed destination countries, comma-separated.", valueName: "list"))
    var countries: String?

    func validate() throws {
        if limit == nil && countries == nil { throw ValidationError("Nothing to update: give --limit or --countries.") }
    }

    func run() async throws {
        var request = Wire.UpdateAssignmentRequest(number: number)
        if let limit {
            request.fields.append("daily_limit")
            request.dailyLimit = limit
        }
        if countries != nil {
            request.fields.append("allowed_countries")
            request.allowedCountries = splitCountries(countries)
        }
        let assignment = try await global.withClient { client in
            try await client.call(.updateAssignment(request)) {
                if case .updateAssignment(let value) = $0 { value } else { nil }
            }
        }
        global.emit(assignment.json, assignment.text)
    }
}

struct Authorize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask whether an agent may call a destination now (an ALLOW counts one call unless --dry-run)."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The agent's id.")
    var agent: String

    @Argument(help: "The destination number.")
    var destination: String

    @Option(help: ArgumentHelp("The caller ID to use; Callgate chooses when omitted.", valueName: "number"))
    var from: String?

    @Flag(help: "Decide without counting the call.")
    var dryRun = false

    func run() async throws {
        let request = Wire.AuthorizeCallRequest(
            agentID: agent,
            destination: destination,
            fromNumber: from ?? "",
            dryRun: dryRun
        )
        let answer = try await global.withClient { client in
            try await client.call(.authorizeCall(request)) {
                if case .authorizeCall(let value) = $0 { value } else { nil }
            }
        }
        let allowed = answer.verdict == .allow
        let json = JSON.object([
            ("verdict", .string(lowerName(answer.verdict))),
            ("reason", answer.reason == .unspecified ? .null : .string(lowerName(answer.reason))),
            ("caller_id", .optional(answer.callerID)),
            ("destination_country", .optional(answer.destinationCountry)),
            ("count", .int(answer.count)),
            ("limit", .int(answer.limit)),
            ("remaining", .int(answer.remaining)),
            ("resets_at", .time(answer.resetsAtMs)),
            ("dry_run", .bool(dryRun)),
        ])
        var fields: [(String, String)] = [
            ("verdict", constantName(answer.verdict) + (dryRun ? " (dry run, not counted)" : "")),
            ("reason", allowed || answer.reason == .unspecified ? "-" : constantName(answer.reason)),
            ("caller id", dash(answer.callerID)),
            ("destination", destination + (answer.destinationCountry.isEmpty ? "" : " (\(answer.destinationCountry))")),
            ("count", "\(answer.count)/\(answer.limit)"),
            ("remaining", "\(answer.remaining)"),
            ("resets at", Times.local(answer.resetsAtMs)),
        ]
        if allowed { fields.remove(at: 1) }
        global.emit(json, renderFields(fields))
    }
}

struct Pick: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Take one available number matching the criteria: reserve it, or assign it to an agent.",
        discussion: "Among matches, the number released longest ago is preferred."
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var criteria: CriteriaOptions

    @Option(help: ArgumentHelp("Reserve the number for this many seconds.", valueName: "seconds"))
    var reserve: UInt32?

    @Option(help: ArgumentHelp("With --reserve: the agent the reservation is for.", valueName: "id"))
    var agent: String?

    @Option(name: .customLong("assign"), help: ArgumentHelp("Assign the number to this agent.", valueName: "agent"))
    var assignTo: String?

    @OptionGroup var terms: TermsOptions

    func validate() throws {
        switch (reserve, assignTo) {
        case (nil, nil): throw ValidationError("Give --reserve SECONDS or --assign AGENT.")
        case (.some, .some): throw ValidationError("Give either --reserve or --assign, not both.")
        case (.some(let seconds), nil):
            if seconds == 0 { throw ValidationError("--reserve must be at least 1 second.") }
            if terms.limit != nil || terms.countries != nil {
                throw ValidationError(
                    "--limit and --countries go with --assign; use them on `assign` after a reservation."
                )
            }
        case (nil, .some):
            if agent != nil { throw ValidationError("--agent goes with --reserve; --assign names the agent.") }
        }
    }

    func run() async throws {
        let mode: Wire.PickNumberRequest.Mode
        if let reserve {
            mode = .reserve(Wire.ReserveMode(ttlSeconds: reserve, agentID: agent ?? ""))
        } else {
            mode = .assign(Wire.AssignMode(agentID: assignTo ?? "", terms: terms.wire))
        }
        let request = Wire.PickNumberRequest(criteria: criteria.wire, mode: mode)
        let picked = try await global.withClient { client in
            try await client.call(.pickNumber(request)) { if case .pickNumber(let value) = $0 { value } else { nil } }
        }
        let json = JSON.object([
            ("number", picked.number?.json ?? .null),
            ("reservation_token", picked.reservationToken == 0 ? .null : .string(String(picked.reservationToken))),
            ("reservation_expires_at", .time(picked.reservationExpiresAtMs)),
            ("assignment", picked.assignment?.json ?? .null),
        ])
        var text: String
        if let assignment = picked.assignment {
            text = "assigned \(assignment.number) to \(assignment.agentID)\n" + assignment.text
        } else {
            text = "reserved \(picked.number?.number ?? "-")\n"
            text += renderFields([
                ("reservation token", String(picked.reservationToken)),
                ("expires at", Times.local(picked.reservationExpiresAtMs)),
            ])
            text += "\nassign it with: callgate assign \(picked.number?.number ?? "NUMBER") \(agent ?? "AGENT") "
            text += "--reservation \(picked.reservationToken)"
        }
        global.emit(json, text)
    }
}

struct Reset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Reset today's call counters of numbers.")

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The numbers.")
    var numbers: [String] = []

    @Flag(help: "Reset every number of the organization.")
    var all = false

    func validate() throws {
        if all && !numbers.isEmpty { throw ValidationError("Give numbers or --all, not both.") }
        if !all && numbers.isEmpty { throw ValidationError("Give the numbers to reset, or --all.") }
    }

    func run() async throws {
        let response = try await global.withClient { client in
            try await client.call(.resetCounters(Wire.ResetCountersRequest(numbers: numbers, all: all))) {
                if case .resetCounters(let value) = $0 { value } else { nil }
            }
        }
        global.emit(.object([("reset", .int(response.reset))]), "reset \(response.reset)")
    }
}
