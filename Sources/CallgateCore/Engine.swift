/// All organizations, in memory: the registry that owns the clock and the change sink.
///
/// Operations of one organization are methods of ``Organization``; look it up once (per connection)
/// with ``organization(_:)`` and call it directly, so that the hot path never touches this registry.
public final class Engine: Sendable {
    public let clock: any EngineClock
    public let changes: any ChangeSink
    let organizations: Locked<[OrganizationID: Organization]>

    public init(clock: any EngineClock = SystemClock(), changes: any ChangeSink) {
        self.clock = clock
        self.changes = changes
        self.organizations = Locked([:])
    }

    /// Creates an organization.
    ///
    /// - Parameters:
    ///   - timeZone: IANA name of the organization's calendar (default `UTC`).
    /// - Throws: `invalidArgument` for an empty name or unknown time zone.
    @discardableResult
    public func createOrganization(
        name: String,
        timeZone: String = "UTC",
        actor: Actor
    ) throws(CallgateError) -> Organization {
        let trimmed = name.trimmingSpaces
        guard !trimmed.isEmpty else { throw CallgateError(.invalidArgument, "organization name must not be empty") }
        try Organization.validateText(trimmed, field: "organization name")
        let now = self.clock.now()
        return try self.organizations.withLock { (orgs) throws(CallgateError) -> Organization in
            let id = OrganizationID((orgs.keys.map(\.rawValue).max() ?? 0) + 1)
            let record = OrganizationRecord(id: id, name: trimmed, timeZone: timeZone, createdAt: now)
            let org = try Organization(record: record, clock: self.clock, changes: self.changes)
            _ = try self.changes.record(
                ChangeRecord(organization: id, at: now, actor: actor, event: .organizationCreated(record))
            )
            orgs[id] = org
            return org
        }
    }

    /// The organization with this id, or `nil`.
    public func organization(_ id: OrganizationID) -> Organization? {
        self.organizations.withLock { $0[id] }
    }

    /// Every organization, by id.
    public var allOrganizations: [Organization] {
        self.organizations.withLock { $0.values.sorted { $0.id < $1.id } }
    }
}
