/// What one agent did from one number on one local day: allowed calls by local hour and denials by
/// reason. The usage report is built from these.
///
/// Records taken from the engine (``Organization/takeUsage()``) are deltas since the previous take: the
/// store adds them to what it holds.
public struct UsageRecord: Hashable, Sendable {
    /// The organization's local date, `2026-11-21`.
    public var day: String
    /// The agent; empty for agent ids that are not in the organization (their `UNKNOWN_AGENT`
    /// denials, and `INVALID_DESTINATION` for such ids).
    public var agent: String
    /// The caller-ID number; `nil` for denials tied to none of the agent's numbers (`NO_ASSIGNMENT`,
    /// `AGENT_INACTIVE`, `NUMBER_NOT_ASSIGNED_TO_AGENT`, …).
    public var number: PhoneNumber?
    /// Allowed calls by local wall-clock hour (24 entries). On the day a DST change repeats an hour,
    /// both of its occurrences count in the same entry.
    public var allowedByHour: [UInt32]
    /// Denials by reason: entry `reason.rawValue - 1` (8 entries).
    public var denied: [UInt32]

    public init(
        day: String,
        agent: String,
        number: PhoneNumber?,
        allowedByHour: [UInt32] = Array(repeating: 0, count: 24),
        denied: [UInt32] = Array(repeating: 0, count: DenyReason.allCases.count)
    ) {
        self.day = day
        self.agent = agent
        self.number = number
        self.allowedByHour = allowedByHour
        self.denied = denied
    }

    /// All allowed calls.
    public var allowed: UInt64 { self.allowedByHour.reduce(0) { $0 + UInt64($1) } }

    /// Denials for one reason.
    public func denied(_ reason: DenyReason) -> UInt32 { self.denied[Int(reason.rawValue) - 1] }

    /// Whether nothing was counted.
    public var isEmpty: Bool { self.allowedByHour.allSatisfy { $0 == 0 } && self.denied.allSatisfy { $0 == 0 } }
}

/// One slice of the retention of past days: delete at most `limit` rows of the daily counters and at
/// most `limit` rows of the usage tallies whose local day is before `beforeDay`.
public struct RetentionPrune: Hashable, Sendable {
    /// The first local date kept, `2025-10-18`.
    public var beforeDay: String
    /// Rows deleted per table at most.
    public var limit: Int
    /// Set on the first slice of a pass (when it deletes anything): what the pass removes, for the
    /// audit log.
    public var summary: Summary?

    /// What one retention pass removes.
    public struct Summary: Hashable, Sendable {
        public var counters: Int
        public var usage: Int
        public var retentionDays: Int

        public init(counters: Int, usage: Int, retentionDays: Int) {
            self.counters = counters
            self.usage = usage
            self.retentionDays = retentionDays
        }
    }

    public init(beforeDay: String, limit: Int, summary: Summary? = nil) {
        self.beforeDay = beforeDay
        self.limit = limit
        self.summary = summary
    }
}

/// A calendar date without a time zone (`2026-11-21`): an organization's local day in reports.
public struct LocalDate: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    /// Reads exactly `YYYY-MM-DD` (a real date, years 0001 to 9999); `nil` for anything else.
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), year >= 1,
            (1...12).contains(month), day >= 1, day <= Self.daysIn(month: month, year: year)
        else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    /// A date from parts already known to be valid (a calendar's).
    init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// The date `ordinal` days after 1970-01-01 (Howard Hinnant's civil-from-days).
    public init(ordinal: Int) {
        let z = ordinal + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        self.day = doy - (153 * mp + 2) / 5 + 1
        self.month = mp < 10 ? mp + 3 : mp - 9
        self.year = yoe + era * 400 + (self.month <= 2 ? 1 : 0)
    }

    /// Days since 1970-01-01 (Howard Hinnant's days-from-civil).
    public var ordinal: Int {
        let y = self.month <= 2 ? self.year - 1 : self.year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (self.month + 9) % 12
        let doy = (153 * mp + 2) / 5 + self.day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The date `days` days later (earlier when negative).
    public func adding(days: Int) -> LocalDate { LocalDate(ordinal: self.ordinal + days) }

    /// `2026-11-21` (zero-padded, so that dates sort as text).
    public var description: String {
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(self.year, 4))-\(pad(self.month, 2))-\(pad(self.day, 2))"
    }

    public static func < (lhs: LocalDate, rhs: LocalDate) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}
