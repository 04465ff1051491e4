package import CallgateCore
package import CallgateStore
package import CallgateWire

/// Who is calling: an authenticated API key and its organization.
package struct Principal: Sendable {
    package let key: APIKeyRecord
    package let organization: Organization
    /// The organization's decision counts (``Dispatcher/tally(for:)``), looked up once per session.
    package let tally: DecisionTally

    package init(key: APIKeyRecord, organization: Organization, tally: DecisionTally) {
        self.key = key
        self.organization = organization
        self.tally = tally
    }

    package var role: Role { self.key.role }

    /// How changes made through this key appear in the audit history: `key:<id>`.
    package var actor: Actor { Actor("key:\(self.key.id)") }

    /// The agent an agent key is bound to (`nil` for other roles).
    package var boundAgent: String? { self.key.role == .agent ? self.key.agent : nil }
}

/// Which roles may call which method (see the method table in `proto/README.md`).
///
/// Record-level rules (an agent key sees only its own agent's numbers, a dialer may only reserve) are
/// applied by ``Dispatcher`` where the record is known.
package enum AccessPolicy {
    package static func allows(_ role: Role, _ method: Wire.Request.Method) -> Bool {
        switch method {
        case .hello:
            return true
        case .authorizeCall:
            return Self.allowsAuthorizeCall(role)
        case .pickNumber:
            return role == .admin || role == .dialer
        case .listNumbers, .getNumber, .listAssignments:
            return true
        case .listAgents:
            return role != .agent
        case .usageReport:
            // An agent key: its own agent's report only (Dispatcher+Usage.swift).
            return role == .admin || role == .manager || role == .agent
        case .auditLog, .numberTimeline, .stats, .poolCapacity:
            return role == .admin || role == .manager
        case .assign, .release, .addNumber, .importNumbers, .updateNumber, .deleteNumbers, .upsertAgent,
            .deactivateAgent, .updateAssignment, .resetCounters, .syncNumbers, .createKey, .listKeys, .revokeKey,
            .setPoolThreshold, .bulkAssign, .bulkRelease, .bulkUpdateStatus, .bulkDelete:
            return role == .admin
        }
    }

    /// AuthorizeCall's rule alone, for the hot path.
    @inline(__always)
    package static func allowsAuthorizeCall(_ role: Role) -> Bool { role != .manager }

    package static func denied(_ role: Role, _ method: Wire.Request.Method) -> CallgateError {
        CallgateError(.permissionDenied, "a \(role) key may not call \(method.name)")
    }
}

extension Role {
    package init?(wire: Wire.Role) {
        switch wire {
        case .admin: self = .admin
        case .manager: self = .manager
        case .dialer: self = .dialer
        case .agent: self = .agent
        case .unspecified: return nil
        }
    }

    package var wire: Wire.Role {
        switch self {
        case .admin: return .admin
        case .manager: return .manager
        case .dialer: return .dialer
        case .agent: return .agent
        }
    }
}
