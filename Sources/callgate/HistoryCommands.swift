import ArgumentParser
import CallgateClient
import CallgateWire
import Foundation

struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read the audit history, or a number's holding timeline.",
        subcommands: [AuditLog.self, Timeline.self],
        defaultSubcommand: AuditLog.self
    )
}

struct AuditLog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "List audit entries: who changed what, when (the default)."
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "Only entries about this number.")
    var number: String?

    @Option(help: ArgumentHelp("Only entries about this agent.", valueName: "id"))
    var agent: String?

    @Option(help: ArgumentHelp("From this time (2026-06-15, 2026-06-15T09:00, or with Z / offset).", valueName: "time"))
    var since: String?

    @Option(help: ArgumentHelp("Until this time (same forms as --since).", valueName: "time"))
    var until: String?

    @Option(help: "At most this many entries (default 100).")
    var limit: Int?

    @Option(help: "Continue from this cursor (printed when there is more).")
    var cursor: String?

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if let since, Times.parse(since) == nil { throw ValidationError("--since: cannot read '\(since)' as a time") }
        if let until, Times.parse(until) == nil { throw ValidationError("--until: cannot read '\(until)' as a time") }
    }

    func run() async throws {
        var request = Wire.AuditLogRequest(
            number: number ?? "",
            agentID: agent ?? "",
            fromMs: since.flatMap(Times.parse) ?? 0,
            toMs: until.flatMap(Times.parse) ?? 0
        )
        let (entries, next) = try await global.withClient { client in
            try await collectPages(limit: limit ?? 100, all: false, cursor: cursor) { cursor, pageSize in
                request.cursor = cursor
                request.pageSize = pageSize
                let page = try await client.call(.auditLog(request)) {
                    if case .auditLog(let value) = $0 { value } else { nil }
                }
                return (page.entries, page.nextCursor)
            }
        }
        let json = JSON.object([
            (
                "entries",
                .array(
                    entries.map {
                        .object([
                            ("id", .int($0.id)),
                            ("at", .time($0.atMs)),
                            ("actor", .optional($0.actor)),
                            ("action", .string($0.action)),
                            ("number", .optional($0.number)),
                            ("agent_id", .optional($0.agentID)),
                            ("before", .document($0.beforeJson)),
                            ("after", .document($0.afterJson)),
                        ])
                    }
                )
            ),
            ("next_cursor", .optional(next)),
        ])
        var table = Table(["TIME", "ACTOR", "ACTION", "NUMBER", "AGENT", "CHANGES"])
        for entry in entries {
            table.append([
                Times.local(entry.atMs), dash(entry.actor), entry.action, dash(entry.number), dash(entry.agentID),
                entry.action == "number.import" && entry.number.isEmpty
                    ? importSummary(entry.afterJson) : changes(before: entry.beforeJson, after: entry.afterJson),
            ])
        }
        global.emit(json, entries.isEmpty ? "(no entries)" : table.rendered())
        noteMore(next, global, alternative: "a larger --limit")
    }
}

/// The entry of a whole import (`{"added":N,"updated":M}`): `import: N added, M updated`.
private func importSummary(_ after: String) -> String {
    let counts = (try? JSONSerialization.jsonObject(with: Data(after.utf8))) as? [String: Any]
    return "import: \(counts?["added"] ?? "?") added, \(counts?["updated"] ?? "?") updated"
}

/// The fields that differ between two JSON records: `daily_limit: 100 → 50; tags: [] → ["east"]`.
private func changes(before: String, after: String) -> String {
    func parse(_ text: String) -> [String: Any]? {
        guard !text.isEmpty else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }
    func compact(_ value: Any?) -> String {
        guard let value else { return "-" }
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: value,
                options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes]
            )
        else { return String(describing: value) }
        return String(decoding: data, as: UTF8.self)
    }
    let old = parse(before)
    let new = parse(after)
    switch (old, new) {
    case (nil, nil): return "-"
    case (nil, .some): return "created"
    case (.some, nil): return "removed"
    case (.some(let old), .some(let new)):
        var parts: [String] = []
        for key in Set(old.keys).union(new.keys).sorted() {
            let was = compact(old[key])
            let now = compact(new[key])
            if was != now { parts.append("\(key): \(was) → \(now)") }
        }
        return parts.isEmpty ? "-" : parts.joined(separator: "; ")
    }
}

struct Timeline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show who held a number, from when to when, and how many calls they placed."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The number.")
    var number: String

    func run() async throws {
        let response = try await global.withClient { client in
            try await client.call(.numberTimeline(Wire.NumberTimelineRequest(number: number))) {
                if case .numberTimeline(let value) = $0 { value } else { nil }
            }
        }
        let json = JSON.object([
            ("number", .string(number)),
            (
                "periods",
                .array(
                    response.periods.map {
                        .object([
                            ("agent_id", .string($0.agentID)),
                            ("from", .time($0.fromMs)),
                            ("to", .time($0.toMs)),
                            ("calls", .uint($0.calls)),
                        ])
                    }
                )
            ),
        ])
        var table = Table(["AGENT", "FROM", "TO", "CALLS"], rightAligned: [3])
        for period in response.periods {
            table.append([
                period.agentID, Times.local(period.fromMs), period.toMs == 0 ? "(holding)" : Times.local(period.toMs),
                "\(period.calls)",
            ])
        }
        global.emit(json, response.periods.isEmpty ? "(never assigned)" : table.rendered())
    }
}
