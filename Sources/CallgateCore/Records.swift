/// Identifies an organization (tenant). Every other record belongs to exactly one.
public struct OrganizationID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    public var description: String { "org-\(self.rawValue)" }

    public static func < (lhs: OrganizationID, rhs: OrganizationID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Who made an admin change: an API key, a CLI user, or the system itself. Recorded in the audit log.
public struct Actor: Hashable, Sendable, CustomStringConvertible {
    public var id: String

    public init(_ id: String) { self.id = id }

    /// Changes made by Callgate itself (first start, expiry).
    public static let system = Actor("system")

    public var description: String { self.id }
}

/// An organization as stored.
public struct OrganizationRecord: Hashable, Sendable {
    public var id: OrganizationID
    public var name: String
    /// IANA time zone name of the organization's calendar day.
    public var timeZone: String
    public var createdAt: Timestamp

    public init(
        id: OrganizationID,
        name: String,
        timeZone: String,
        createdAt: Timestamp
    ) {
        self.id = id
        self.name = name
        self.timeZone = timeZone
        self.createdAt = createdAt
    }
}

/// Whether a number may be handed out and used.
public enum NumberStatus: String, Hashable, Sendable, CaseIterable {
    case active
    case inactive
}

/// What a number can do.
public struct Capabilities: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8

    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let voice = Capabilities(rawValue: 1)
    public static let sms = Capabilities(rawValue: 2)
    public static let mms = Capabilities(rawValue: 4)
    public static let fax = Capabilities(rawValue: 8)

    static let names: [(String, Capabilities)] = [("voice", .voice), ("sms", .sms), ("mms", .mms), ("fax", .fax)]

    /// Parses names like `voice,sms` (case-insensitive; `,`, `;`, `|` or blanks between).
    public init(names text: String) throws(CallgateError) {
        var result: Capabilities = []
        for part in text.split(whereSeparator: { ",;| ".contains($0) }) where !part.isEmpty {
            guard let found = Self.names.first(where: { $0.0 == part.lowercased() }) else {
                throw CallgateError(.invalidArgument, "unknown capability '\(part)' (expected voice, sms, mms or fax)")
            }
            result.insert(found.1)
        }
        self = result
    }

    public var description: String { Self.names.filter { self.contains($0.1) }.map(\.0).joined(separator: ",") }
}

/// The admin-editable attributes of a phone number.
public struct NumberAttributes: Hashable, Sendable {
    /// Carrier or provider: `telnyx`, `twilio`, or free text.
    public var provider: String
    /// The number's country: derived from the number.
    public var country: Country
    public var capabilities: Capabilities
    public var status: NumberStatus
    /// Free-form location (`Austin office`).
    public var location: String
    /// Pools, departments, ranges, campaigns. Sorted, unique.
    public var tags: [String]
    /// `did`, `tollfree`, `mobile`, …
    public var numberType: String

    public init(
        provider: String,
        country: Country,
        capabilities: Capabilities,
        status: NumberStatus,
        location: String,
        tags: [String],
        numberType: String
    ) {
        self.provider = provider
        self.country = country
        self.capabilities = capabilities
        self.status = status
        self.location = location
        self.tags = tags
        self.numberType = numberType
    }
}

/// Where a number is in its lifecycle: `available → reserved (optional) → assigned → available`.
public enum NumberState: Hashable, Sendable {
    case available
    case reserved(Reservation)
    case assigned(agent: String)

    /// A short name: `available`, `reserved`, `assigned`.
    public var name: String {
        switch self {
        case .available: return "available"
        case .reserved: return "reserved"
        case .assigned: return "assigned"
        }
    }
}

/// A hold on an available number until it expires or is assigned.
public struct Reservation: Hashable, Sendable {
    /// Token that the reserver passes to ``Organization/assign(_:to:terms:reservation:actor:)``.
    public var id: UInt64
    public var expiresAt: Timestamp
    /// The agent the number is being reserved for, when the picker said so.
    public var agent: String?
    public var reservedBy: Actor

    public init(
        id: UInt64,
        expiresAt: Timestamp,
        agent: String?,
        reservedBy: Actor
    ) {
        self.id = id
        self.expiresAt = expiresAt
        self.agent = agent
        self.reservedBy = reservedBy
    }
}

/// A daily call counter: calls placed from a number on one local day.
public struct DailyCounter: Hashable, Sendable {
    /// The local day (``DayWindow/key``: its end instant in seconds).
    public var dayKey: Int64
    public var count: UInt32

    public static let zero = DailyCounter(dayKey: 0, count: 0)

    /// Calls counted on the given day: zero when the counter belongs to an earlier day. A counter of a
    /// later day (the wall clock stepped back) still counts, so a count never goes back.
    @inlinable
    public func count(on dayKey: Int64) -> UInt32 { self.dayKey >= dayKey ? self.count : 0 }

    public init(
        dayKey: Int64,
        count: UInt32
    ) {
        self.dayKey = dayKey
        self.count = count
    }
}

/// A phone number with its lifecycle state, as returned by reads and carried in change records.
public struct NumberRecord: Hashable, Sendable {
    public var number: PhoneNumber
    public var attributes: NumberAttributes
    public var state: NumberState
    /// When the number last came back from an agent (the picker prefers the oldest).
    public var releasedAt: Timestamp?
    public var createdAt: Timestamp
    public var createdBy: Actor
    public var modifiedAt: Timestamp
    public var modifiedBy: Actor
    /// The number's daily counter (count on ``DailyCounter/dayKey``).
    public var counter: DailyCounter

    public init(
        number: PhoneNumber,
        attributes: NumberAttributes,
        state: NumberState,
        releasedAt: Timestamp?,
        createdAt: Timestamp,
        createdBy: Actor,
        modifiedAt: Timestamp,
        modifiedBy: Actor,
        counter: DailyCounter
    ) {
        self.number = number
        self.attributes = attributes
        self.state = state
        self.releasedAt = releasedAt
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.modifiedAt = modifiedAt
        self.modifiedBy = modifiedBy
        self.counter = counter
    }
}

/// The terms of an assignment.
public struct AssignmentTerms: Hashable, Sendable {
    /// Calls per local day from the number. Default 100.
    public var dailyLimit: UInt32
    /// Destination countries; `nil` means the number's own country.
    public var allowedCountries: CountrySet?

    public static let defaultDailyLimit: UInt32 = 100
    /// The largest daily limit accepted.
    public static let maximumDailyLimit: UInt32 = 10_000_000

    public init(dailyLimit: UInt32 = AssignmentTerms.defaultDailyLimit, allowedCountries: CountrySet? = nil) {
        self.dailyLimit = dailyLimit
        self.allowedCountries = allowedCountries
    }
}

/// A number held by an agent, with today's usage.
public struct AssignmentRecord: Hashable, Sendable {
    public var number: PhoneNumber
    public var agent: String
    public var dailyLimit: UInt32
    public var allowedCountries: CountrySet
    public var assignedAt: Timestamp
    public var assignedBy: Actor
    /// Calls placed from the number since it was assigned.
    public var callsSinceAssigned: UInt64
    /// Calls on the current local day.
    public var countToday: UInt32
    public var remainingToday: UInt32 { self.dailyLimit > self.countToday ? self.dailyLimit - self.countToday : 0 }
    /// The number's counter as stored (day and count).
    public var counter: DailyCounter
    /// Whether the number is active.
    public var numberActive: Bool

    public init(
        number: PhoneNumber,
        agent: String,
        dailyLimit: UInt32,
        allowedCountries: CountrySet,
        assignedAt: Timestamp,
        assignedBy: Actor,
        callsSinceAssigned: UInt64,
        countToday: UInt32,
        counter: DailyCounter,
        numberActive: Bool
    ) {
        self.number = number
        self.agent = agent
        self.dailyLimit = dailyLimit
        self.allowedCountries = allowedCountries
        self.assignedAt = assignedAt
        self.assignedBy = assignedBy
        self.callsSinceAssigned = callsSinceAssigned
        self.countToday = countToday
        self.counter = counter
        self.numberActive = numberActive
    }
}

/// An agent: the dialer's user.
public struct AgentRecord: Hashable, Sendable {
    /// The dialer's own user id.
    public var id: String
    public var displayName: String
    /// E-mail or UPN.
    public var principal: String
    public var active: Bool
    public var createdAt: Timestamp
    public var modifiedAt: Timestamp

    public init(
        id: String,
        displayName: String,
        principal: String,
        active: Bool,
        createdAt: Timestamp,
        modifiedAt: Timestamp
    ) {
        self.id = id
        self.displayName = displayName
        self.principal = principal
        self.active = active
        self.createdAt = createdAt
        self.modifiedAt = modifiedAt
    }
}

/// One page of a listing; pass ``nextCursor`` back to get the next one.
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    /// `nil` when this is the last page.
    public var nextCursor: String?

    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

extension Page: Equatable where Item: Equatable {}
