import ArgumentParser
import CallgateClient
import CallgateWire
import Foundation

/// `--by agent|number`.
enum UsageGroupArgument: String, ExpressibleByArgument, CaseIterable {
    case agent, number
}

struct Usage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Usage report: calls allowed, denials by reason and the peak hour, per agent or per number.",
        discussion: """
            Days are the organization's local dates (YYYY-MM-DD, both included, at most 400 days); hours are \
            its local wall-clock hours. Reads every page. --csv writes one line per row (- for standard output).
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("First local day (YYYY-MM-DD).", valueName: "day"))
    var from: String

    @Option(help: ArgumentHelp("Last local day, included (default: --from).", valueName: "day"))
    var to: String?

    @Option(help: "Group by agent or by number.")
    var by: UsageGroupArgument = .agent

    @Option(help: ArgumentHelp("Only this agent's calls.", valueName: "id"))
    var agent: String?

    @Option(help: ArgumentHelp("Only calls from this caller-ID number.", valueName: "e164"))
    var number: String?

    @Flag(help: "One row per day instead of one for the whole range.")
    var perDay = false

    @Option(help: ArgumentHelp("Write the rows as CSV to this file (- for standard output).", valueName: "file"))
    var csv: String?

    func validate() throws {
        if global.json && csv != nil { throw ValidationError("--json and --csv cannot be combined") }
    }

    func run() async throws {
        let request = Wire.UsageReportRequest(
            fromDay: from,
            toDay: to ?? from,
            groupBy: by.rawValue,
            agentID: agent ?? "",
            number: number ?? "",
            perDay: perDay,
            pageSize: 1000
        )
        let report = try await global.withClient { client in
            do {
                return try await client.usageReportAllPages(request)
            } catch let error as CallgateClientError {
                throw CLIError(error)
            }
        }
        var rows = report.rows
        if let unknown = report.unknownAgents { rows.append(unknown) }
        if let csv {
            try Self.write(Self.csv(rows, by: by, perDay: perDay), to: csv)
            return
        }
        global.emit(self.json(report), self.table(report))
    }

    // MARK: - Output

    private var keyName: String { by == .agent ? "agent_id" : "number" }

    private static let reasons = Wire.DenyReason.allCases.filter { $0 != .unspecified }

    private func json(_ report: Wire.UsageReportResponse) -> JSON {
        func row(_ r: Wire.UsageRow) -> JSON {
            var members: [(String, JSON)] = [(keyName, .string(r.key))]
            if perDay { members.append(("day", .string(r.day))) }
            members += [
                ("calls_allowed", .uint(r.callsAllowed)),
                ("calls_denied", .uint(r.callsDenied)),
                ("denials", .object(r.denials.map { (constantName($0.reason), .uint($0.count)) })),
                ("peak_hour", r.peakHourCalls == 0 ? .null : .int(r.peakHour)),
                ("peak_hour_calls", .uint(r.peakHourCalls)),
                ("calls_by_hour", .object(r.callsByHour.map { (String($0.hour), .uint($0.calls)) })),
            ]
            return .object(members)
        }
        return .object([
            ("from", .string(from)),
            ("to", .string(to ?? from)),
            ("group_by", .string(by.rawValue)),
            ("time_zone", .string(report.timeZone)),
            ("rows", .array(report.rows.map(row))),
            ("unknown_agents", report.unknownAgents.map(row) ?? .null),
        ])
    }

    private func table(_ report: Wire.UsageReportResponse) -> String {
        var headers = [by == .agent ? "AGENT" : "NUMBER"]
        if perDay { headers.append("DAY") }
        headers += ["ALLOWED", "DENIED", "PEAK HOUR", "PEAK CALLS", "DENIALS"]
        let first = perDay ? 2 : 1
        var table = Table(headers, rightAligned: [first, first + 1, first + 3])
        func append(_ r: Wire.UsageRow, key: String) {
            var cells = [key]
            if perDay { cells.append(r.day) }
            cells += [
                "\(r.callsAllowed)", "\(r.callsDenied)",
                r.peakHourCalls == 0 ? "-" : (r.peakHour < 10 ? "0\(r.peakHour):00" : "\(r.peakHour):00"),
                r.peakHourCalls == 0 ? "-" : "\(r.peakHourCalls)",
                r.denials.isEmpty
                    ? "-" : r.denials.map { "\(constantName($0.reason)) \($0.count)" }.joined(separator: ", "),
            ]
            table.append(cells)
        }
        for row in report.rows { append(row, key: row.key) }
        if let unknown = report.unknownAgents { append(unknown, key: "(unknown agent ids)") }
        let body = report.rows.isEmpty && report.unknownAgents == nil ? "(no usage)" : table.rendered()
        return body + "\n(days and hours in \(report.timeZone))"
    }

    /// One line per row: key, [day,] calls, denials by reason, peak hour, then calls by hour. The row
    /// with an empty agent_id counts agent ids that are not in the organization.
    static func csv(_ rows: [Wire.UsageRow], by: UsageGroupArgument, perDay: Bool) -> String {
        var header = [by == .agent ? "agent_id" : "number"]
        if perDay { header.append("day") }
        header += ["calls_allowed", "calls_denied"] + reasons.map { lowerName($0) }
        header += ["peak_hour", "peak_hour_calls"] + (0..<24).map { $0 < 10 ? "h0\($0)" : "h\($0)" }
        var lines = [header.joined(separator: ",")]
        for r in rows {
            var cells = [csvField(r.key)]
            if perDay { cells.append(r.day) }
            cells += ["\(r.callsAllowed)", "\(r.callsDenied)"]
            cells += reasons.map { reason in "\(r.denials.first { $0.reason == reason }?.count ?? 0)" }
            cells += [r.peakHourCalls == 0 ? "" : "\(r.peakHour)", "\(r.peakHourCalls)"]
            cells += (0..<24).map { hour in "\(r.callsByHour.first { $0.hour == hour }?.calls ?? 0)" }
            lines.append(cells.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A CSV field, quoted when it holds a comma, a quote or a line break.
    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    private static func write(_ text: String, to path: String) throws {
        if path == "-" {
            writeToStandardOutput(text)
            return
        }
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
            throw CLIError(code: "IO", message: "cannot write \(path)")
        }
    }
}
