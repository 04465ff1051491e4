/// A state change made by the engine: what changed, by whom, when.
///
/// The engine hands every change to a ``ChangeSink`` *inside* the lock that orders it, so for any one
/// number or agent the records arrive in the order the changes happened. The store persists them
/// (write-through) and builds the audit history from them.
public struct ChangeRecord: Sendable {
    public var organization: OrganizationID
    public var at: Timestamp
    /// Who made the change; `nil` for counted calls on the hot path.
    public var actor: Actor?
    public var event: ChangeEvent

    @inlinable
    public init(organization: OrganizationID, at: Timestamp, actor: Actor?, event: ChangeEvent) {
        self.organization = organization
        self.at = at
        self.actor = actor
        self.event = event
    }
}

/// The kinds of change. Counter changes carry absolute values, so a store may coalesce them (keep the
/// last per number) and apply them twice without harm.
public enum ChangeEvent: Sendable {
    /// An ALLOW counted a call: the number's counter is now `count` on day `dayKey`.
    case counter(number: PhoneNumber, dayKey: Int64, count: UInt32)
    indirect case organizationCreated(OrganizationRecord)
    indirect case numberAdded(NumberRecord)
    indirect case numberUpdated(before: NumberRecord, after: NumberRecord)
    /// Numbers deleted together (all or nothing).
    indirect case numbersDeleted([NumberRecord])
    /// A bulk import, applied all or nothing: the numbers it added and the ones whose attributes it
    /// changed (as they were before and after).
    indirect case numbersImported(added: [NumberRecord], updated: [(before: NumberRecord, after: NumberRecord)])
    indirect case agentUpserted(before: AgentRecord?, after: AgentRecord)
    indirect case reserved(number: PhoneNumber, Reservation)
    /// A reservation was cancelled (released) before it expired.
    indirect case reservationCancelled(number: PhoneNumber, Reservation)
    indirect case assigned(AssignmentRecord)
    indirect case assignmentUpdated(before: AssignmentRecord, after: AssignmentRecord)
    /// An agent gave a number back; `assignment` holds the calls made while it held it.
    indirect case released(AssignmentRecord, releasedAt: Timestamp)
    /// Admin reset: these numbers' counters are zero on `dayKey`.
    indirect case countersReset(numbers: [PhoneNumber], dayKey: Int64)
    /// Usage tallies taken from the engine (allowed calls by hour, denials by reason): deltas to add.
    indirect case usageTallied([UsageRecord])
    /// Retention: one slice of the deletion of past days' counters and usage tallies.
    indirect case retentionPruned(RetentionPrune)
    /// A bulk operation or an inventory sync, applied all or nothing (see ``BulkChange``).
    indirect case bulk(BulkChange)
    /// A pool's low-capacity threshold was set (`after`) or removed (`after == nil`).
    indirect case poolThresholdSet(pool: String, before: UInt32?, after: UInt32?)
    /// Not a change: a store that buffers counters before writing them to the tables its readers see
    /// (CallgateStore's counter log) writes every earlier one there in the same commit. Recorded before
    /// a usage report that covers today.
    case countersVisible

    /// The audit action name (`number.add`, `assign`, …); `nil` for counted calls and usage tallies.
    public var action: String? {
        switch self {
        case .counter: return nil
        case .organizationCreated: return "organization.create"
        case .numberAdded: return "number.add"
        case .numberUpdated: return "number.update"
        case .numbersDeleted: return "number.delete"
        case .numbersImported: return "number.import"
        case .agentUpserted: return "agent.upsert"
        case .reserved: return "reserve"
        case .reservationCancelled: return "reservation.cancel"
        case .assigned: return "assign"
        case .assignmentUpdated: return "assignment.update"
        case .released: return "release"
        case .countersReset: return "counters.reset"
        case .usageTallied: return nil
        case .retentionPruned: return "retention.prune"
        case .bulk(let change): return change.kind.rawValue
        case .poolThresholdSet: return "pool.threshold"
        case .countersVisible: return nil
        }
    }
}

/// A receipt for a recorded change. A durable sink completes it after the change is committed; the
/// server releases a reply only then (in `commit` durability).
public struct ChangeTicket: Hashable, Comparable, Sendable {
    /// Position of the change in the sink's log.
    public let sequence: UInt64

    @inlinable
    public init(sequence: UInt64) { self.sequence = sequence }

    public static func < (lhs: ChangeTicket, rhs: ChangeTicket) -> Bool { lhs.sequence < rhs.sequence }
}

/// Receives every change the engine makes: the seam between the engine and the store.
///
/// Class-bound: a sink is a shared service (a log, a writer), and a class existential is called
/// without projecting a box on every decision.
///
/// - Important: ``record(_:)`` is called while the engine holds a lock (an agent's lock on the hot path),
///   so it must not block, wait on I/O or call back into the engine. Append and return.
public protocol ChangeSink: AnyObject, Sendable {
    /// Accepts a change and returns its ticket.
    ///
    /// - Throws: ``CallgateError`` `unavailable` when the sink can no longer accept changes (the store
    ///   failed); the engine then leaves its state unchanged and passes the error on.
    func record(_ change: ChangeRecord) throws(CallgateError) -> ChangeTicket
}
