import CallgateWire
import Foundation

// MARK: - JSON

/// A JSON value whose objects keep the order their keys were written in.
enum JSON {
    case null
    case bool(Bool)
    case integer(Int64)
    case uint(UInt64)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])
    /// JSON text produced elsewhere (the server's before/after records), embedded as is.
    case raw(String)

    /// `ms` as an ISO-8601 UTC string; `null` for 0 (unset).
    static func time(_ ms: Int64) -> JSON { ms == 0 ? .null : .string(Times.utc(ms)) }

    /// An empty string as `null`.
    static func optional(_ text: String) -> JSON { text.isEmpty ? .null : .string(text) }

    static func strings(_ values: [String]) -> JSON { .array(values.map { .string($0) }) }

    static func int<I: BinaryInteger>(_ value: I) -> JSON { .integer(Int64(value)) }

    /// A JSON document received as text: embedded when it parses, else as a string; empty is `null`.
    static func document(_ text: String) -> JSON {
        if text.isEmpty { return .null }
        let valid = (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) != nil
        return valid ? .raw(text) : .string(text)
    }

    /// Pretty-printed with two-space indentation.
    func rendered() -> String {
        var out = ""
        write(to: &out, indent: 0)
        return out
    }

    private func write(to out: inout String, indent: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .integer(let value): out += String(value)
        case .uint(let value): out += String(value)
        case .string(let value): JSON.writeString(value, to: &out)
        case .raw(let text): out += text
        case .array(let values):
            if values.isEmpty {
                out += "[]"
                return
            }
            out += "[\n"
            for (index, value) in values.enumerated() {
                out += String(repeating: " ", count: indent + 2)
                value.write(to: &out, indent: indent + 2)
                out += index == values.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: " ", count: indent) + "]"
        case .object(let members):
            if members.isEmpty {
                out += "{}"
                return
            }
            out += "{\n"
            for (index, (key, value)) in members.enumerated() {
                out += String(repeating: " ", count: indent + 2)
                JSON.writeString(key, to: &out)
                out += ": "
                value.write(to: &out, indent: indent + 2)
                out += index == members.count - 1 ? "\n" : ",\n"
            }
            out += String(repeating: " ", count: indent) + "}"
        }
    }

    private static func writeString(_ value: String, to out: inout String) {
        out += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

// MARK: - Tables and fields

/// A plain-text table: a header row and left-aligned (or right-aligned) padded columns.
struct Table {
    var headers: [String]
    /// Indexes of the columns aligned right (numbers).
    var rightAligned: Set<Int> = []
    var rows: [[String]] = []

    init(_ headers: [String], rightAligned: Set<Int> = []) {
        self.headers = headers
        self.rightAligned = rightAligned
    }

    mutating func append(_ row: [String]) { rows.append(row) }

    func rendered() -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        var lines: [String] = []
        for row in [headers] + rows {
            var line = ""
            for (index, width) in widths.enumerated() {
                let cell = index < row.count ? row[index] : ""
                let padding = String(repeating: " ", count: width - cell.count)
                if index > 0 { line += "  " }
                line += rightAligned.contains(index) ? padding + cell : cell + padding
            }
            while line.last == " " { line.removeLast() }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}

/// `label: value` lines with the values aligned.
func renderFields(_ fields: [(String, String)]) -> String {
    let width = fields.map(\.0.count).max() ?? 0
    return fields.map { label, value in
        label + ":" + String(repeating: " ", count: width - label.count + 1) + value
    }.joined(separator: "\n")
}

/// `-` for an empty value in human output.
func dash(_ text: String) -> String { text.isEmpty ? "-" : text }

func joined(_ values: [String]) -> String { values.isEmpty ? "-" : values.joined(separator: ",") }

// MARK: - Times

enum Times {
    /// `ms` as local ISO-8601 with offset (`2026-06-16T00:00:00-04:00`); `-` for 0.
    static func local(_ ms: Int64) -> String {
        guard ms != 0 else { return "-" }
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone.current
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date(ms))
    }

    /// `ms` as UTC ISO-8601 (`2026-06-16T04:00:00Z`).
    static func utc(_ ms: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date(ms))
    }

    private static func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }

    /// Reads `2026-06-15T10:00:00Z`, `…+02:00`, `…T10:00:00.250Z`, local `2026-06-15T10:00[:00]` or a local
    /// date `2026-06-15` (midnight), as Unix milliseconds.
    static func parse(_ text: String) -> Int64? {
        let attempts: [(ISO8601DateFormatter.Options, TimeZone?, String)] = [
            ([.withInternetDateTime], nil, text),
            ([.withInternetDateTime, .withFractionalSeconds], nil, text),
            (
                [.withFullDate, .withTime, .withColonSeparatorInTime, .withDashSeparatorInDate], TimeZone.current,
                text.count == 16 ? text + ":00" : text
            ),
            ([.withFullDate, .withDashSeparatorInDate], TimeZone.current, text),
        ]
        for (options, zone, input) in attempts {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = options
            if let zone { formatter.timeZone = zone }
            if let date = formatter.date(from: input) {
                return Int64((date.timeIntervalSince1970 * 1000).rounded())
            }
        }
        return nil
    }
}

// MARK: - Names of wire enums

/// `dailyLimitReached` → `DAILY_LIMIT_REACHED`: the proto's constant names, without the enum prefix.
func constantName<E>(_ value: E) -> String {
    var out = ""
    for character in String(describing: value) {
        if character.isUppercase && !out.isEmpty { out += "_" }
        out += character.uppercased()
    }
    return out
}

/// `dailyLimitReached` → `daily_limit_reached`.
func lowerName<E>(_ value: E) -> String { constantName(value).lowercased() }

// MARK: - Wire messages as JSON and text

extension Wire.NumberInfo {
    var json: JSON {
        .object([
            ("number", .string(number)),
            ("provider", .optional(provider)),
            ("country", .optional(country)),
            ("capabilities", .strings(capabilities)),
            ("status", .string(lowerName(status))),
            ("location", .optional(location)),
            ("tags", .strings(tags)),
            ("number_type", .optional(numberType)),
            ("state", .optional(state)),
            ("agent_id", .optional(agentID)),
            ("reservation_expires_at", .time(reservationExpiresAtMs)),
            ("released_at", .time(releasedAtMs)),
            ("count_today", .int(countToday)),
            ("daily_limit", .int(dailyLimit)),
            ("created_at", .time(createdAtMs)),
            ("created_by", .optional(createdBy)),
            ("modified_at", .time(modifiedAtMs)),
            ("modified_by", .optional(modifiedBy)),
        ])
    }

    /// `3/100` when assigned, `3` otherwise.
    var usage: String { state == "assigned" || dailyLimit > 0 ? "\(countToday)/\(dailyLimit)" : "\(countToday)" }

    var text: String {
        var fields: [(String, String)] = [
            ("number", number),
            ("country", dash(country)),
            ("provider", dash(provider)),
            ("type", dash(numberType)),
            ("capabilities", joined(capabilities)),
            ("status", lowerName(status)),
            ("state", dash(state)),
            ("agent", dash(agentID)),
        ]
        if reservationExpiresAtMs != 0 { fields.append(("reserved until", Times.local(reservationExpiresAtMs))) }
        fields += [
            ("calls today", usage),
            ("location", dash(location)),
            ("tags", joined(tags)),
            ("released at", Times.local(releasedAtMs)),
            ("created", Times.local(createdAtMs) + (createdBy.isEmpty ? "" : " by \(createdBy)")),
            ("modified", Times.local(modifiedAtMs) + (modifiedBy.isEmpty ? "" : " by \(modifiedBy)")),
        ]
        return renderFields(fields)
    }
}

func numbersTable(_ numbers: [Wire.NumberInfo]) -> String {
    var table = Table(
        ["NUMBER", "COUNTRY", "PROVIDER", "TYPE", "STATUS", "STATE", "AGENT", "TODAY", "TAGS", "LOCATION"],
        rightAligned: [7]
    )
    for number in numbers {
        table.append([
            number.number, dash(number.country), dash(number.provider), dash(number.numberType),
            lowerName(number.status), dash(number.state), dash(number.agentID), number.usage, joined(number.tags),
            dash(number.location),
        ])
    }
    return numbers.isEmpty ? "(no numbers)" : table.rendered()
}

extension Wire.AgentInfo {
    var json: JSON {
        .object([
            ("id", .string(id)),
            ("display_name", .optional(displayName)),
            ("principal", .optional(principal)),
            ("active", .bool(active)),
            ("created_at", .time(createdAtMs)),
            ("modified_at", .time(modifiedAtMs)),
        ])
    }

    var text: String {
        renderFields([
            ("agent", id),
            ("name", dash(displayName)),
            ("principal", dash(principal)),
            ("active", active ? "yes" : "no"),
            ("created", Times.local(createdAtMs)),
            ("modified", Times.local(modifiedAtMs)),
        ])
    }
}

extension Wire.AssignmentInfo {
    var json: JSON {
        .object([
            ("number", .string(number)),
            ("agent_id", .string(agentID)),
            ("daily_limit", .int(dailyLimit)),
            ("allowed_countries", .strings(allowedCountries)),
            ("count_today", .int(countToday)),
            ("remaining_today", .int(remainingToday)),
            ("number_active", .bool(numberActive)),
            ("calls_since_assigned", .uint(callsSinceAssigned)),
            ("assigned_at", .time(assignedAtMs)),
            ("assigned_by", .optional(assignedBy)),
        ])
    }

    var text: String {
        renderFields([
            ("number", number),
            ("agent", agentID),
            ("used today", "\(countToday)/\(dailyLimit)"),
            ("remaining", "\(remainingToday)"),
            ("countries", joined(allowedCountries)),
            ("number active", numberActive ? "yes" : "no"),
            ("calls since assigned", "\(callsSinceAssigned)"),
            ("assigned", Times.local(assignedAtMs) + (assignedBy.isEmpty ? "" : " by \(assignedBy)")),
        ])
    }
}

extension Wire.KeyInfo {
    var json: JSON {
        .object([
            ("id", .string(id)),
            ("role", .string(lowerName(role))),
            ("agent_id", .optional(agentID)),
            ("label", .optional(label)),
            ("created_at", .time(createdAtMs)),
            ("created_by", .optional(createdBy)),
            ("revoked_at", .time(revokedAtMs)),
        ])
    }

    var fields: [(String, String)] {
        [
            ("key id", id),
            ("role", lowerName(role)),
            ("agent", dash(agentID)),
            ("label", dash(label)),
            ("created", Times.local(createdAtMs) + (createdBy.isEmpty ? "" : " by \(createdBy)")),
            ("revoked", Times.local(revokedAtMs)),
        ]
    }
}
