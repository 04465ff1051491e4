/// Why a call was denied.
///
/// The raw values are the wire values of `DenyReason` in `proto/`.
public enum DenyReason: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The agent holds no numbers.
    case noAssignment = 1
    /// The requested caller-ID number is not one of the agent's.
    case numberNotAssignedToAgent = 2
    /// Every eligible number (or the requested one) has used its daily limit.
    case dailyLimitReached = 3
    /// No number of the agent (or not the requested one) may call the destination's country.
    case countryNotAllowed = 4
    /// The requested number (or every number of the agent) is inactive.
    case numberInactive = 5
    /// The agent is deactivated.
    case agentInactive = 6
    /// No agent with this id in the organization.
    case unknownAgent = 7
    /// The destination is not a number of any country.
    case invalidDestination = 8

    /// The name used on the wire and in reports: `DAILY_LIMIT_REACHED`.
    public var description: String {
        switch self {
        case .noAssignment: return "NO_ASSIGNMENT"
        case .numberNotAssignedToAgent: return "NUMBER_NOT_ASSIGNED_TO_AGENT"
        case .dailyLimitReached: return "DAILY_LIMIT_REACHED"
        case .countryNotAllowed: return "COUNTRY_NOT_ALLOWED"
        case .numberInactive: return "NUMBER_INACTIVE"
        case .agentInactive: return "AGENT_INACTIVE"
        case .unknownAgent: return "UNKNOWN_AGENT"
        case .invalidDestination: return "INVALID_DESTINATION"
        }
    }
}

/// The answer to AuthorizeCall. A plain value of machine words: building one allocates nothing.
public struct CallDecision: Hashable, Sendable, CustomStringConvertible {
    /// `nil` when the call is allowed.
    public var denyReason: DenyReason?
    /// The caller-ID number used (or that would be used / was asked for).
    public var callerID: PhoneNumber?
    /// The destination's country, when known.
    public var destinationCountry: Country?
    /// Calls counted today on the caller-ID number, including this one when allowed.
    public var count: UInt32
    /// The caller-ID number's daily limit.
    public var limit: UInt32
    /// When the counter resets: the next local midnight of the organization.
    public var resetsAt: Timestamp
    /// The receipt of the counted call; `nil` for a DENY or a dry run.
    public var ticket: ChangeTicket?

    /// Whether the call may be placed.
    @inlinable
    public var isAllowed: Bool { self.denyReason == nil }

    /// Calls left today on the caller-ID number.
    @inlinable
    public var remaining: UInt32 { self.limit > self.count ? self.limit - self.count : 0 }

    /// A DENY (used by the engine, and by the server for a destination that does not parse).
    public static func deny(
        _ reason: DenyReason,
        resetsAt: Timestamp,
        country: Country? = nil,
        callerID: PhoneNumber? = nil,
        count: UInt32 = 0,
        limit: UInt32 = 0
    ) -> CallDecision {
        CallDecision(
            denyReason: reason,
            callerID: callerID,
            destinationCountry: country,
            count: count,
            limit: limit,
            resetsAt: resetsAt,
            ticket: nil
        )
    }

    public var description: String {
        let verdict = self.denyReason.map { "DENY \($0)" } ?? "ALLOW"
        let from = self.callerID.map { " from \($0)" } ?? ""
        let country = self.destinationCountry.map { " to \($0)" } ?? ""
        return "\(verdict)\(from)\(country) count \(self.count)/\(self.limit)"
    }
}
