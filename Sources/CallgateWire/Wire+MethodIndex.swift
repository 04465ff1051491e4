extension Wire.Request.Method {
    /// The method's position in ``allNames`` (`0..<24`, the order of the proto's `oneof`): lets metrics
    /// keep one precreated series per method in an array instead of looking names up.
    public var index: Int {
        switch self {
        case .hello: return 0
        case .authorizeCall: return 1
        case .pickNumber: return 2
        case .assign: return 3
        case .release: return 4
        case .addNumber: return 5
        case .importNumbers: return 6
        case .listNumbers: return 7
        case .getNumber: return 8
        case .updateNumber: return 9
        case .deleteNumbers: return 10
        case .upsertAgent: return 11
        case .listAgents: return 12
        case .deactivateAgent: return 13
        case .listAssignments: return 14
        case .updateAssignment: return 15
        case .resetCounters: return 16
        case .auditLog: return 17
        case .numberTimeline: return 18
        case .syncNumbers: return 19
        case .createKey: return 20
        case .listKeys: return 21
        case .revokeKey: return 22
        case .stats: return 23
        }
    }

    /// Every method's ``name``, at its ``index``.
    public static let allNames: [String] = [
        "hello", "authorize_call", "pick_number", "assign", "release", "add_number", "import_numbers",
        "list_numbers", "get_number", "update_number", "delete_numbers", "upsert_agent", "list_agents",
        "deactivate_agent", "list_assignments", "update_assignment", "reset_counters", "audit_log",
        "number_timeline", "sync_numbers", "create_key", "list_keys", "revoke_key", "stats",
    ]
}
