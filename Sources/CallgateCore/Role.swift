/// What an API key may do in its organization (design: "Access"). The raw values are those of the
/// wire enum `callgate.v1.Role` (`proto/callgate/v1/callgate.proto`; 0 there is "unspecified").
public enum Role: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Everything in its organization.
    case admin = 1
    /// Reads only.
    case manager = 2
    /// AuthorizeCall and PickNumber-with-reserve for any agent of its organization, plus reads.
    case dialer = 3
    /// Bound to one agent: authorizes its own calls and reads its own numbers.
    case agent = 4

    /// The lowercase name: `admin`, `manager`, `dialer`, `agent` (also the stored form).
    public var description: String {
        switch self {
        case .admin: "admin"
        case .manager: "manager"
        case .dialer: "dialer"
        case .agent: "agent"
        }
    }

    /// The role named `name` (case-insensitive), or `nil`.
    public init?(name: String) {
        guard let role = Self.allCases.first(where: { $0.description == name.lowercased() }) else { return nil }
        self = role
    }
}
