public import CallgateWire

/// One typed call per method of `proto/README.md`: each sends its request, throws `.status(code)` for an
/// error answer and `.protocolViolation` for a result of the wrong kind.
extension CallgateClient {
    /// `authorize_call`.
    public func authorizeCall(
        _ request: Wire.AuthorizeCallRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.AuthorizeCallResponse {
        try await self.sendExpecting(.authorizeCall(request), timeout: timeout) {
            if case .authorizeCall(let response) = $0 { return response }
            return nil
        }
    }

    /// `pick_number`.
    public func pickNumber(
        _ request: Wire.PickNumberRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.PickNumberResponse {
        try await self.sendExpecting(.pickNumber(request), timeout: timeout) {
            if case .pickNumber(let response) = $0 { return response }
            return nil
        }
    }

    /// `assign`.
    public func assign(
        _ request: Wire.AssignRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.AssignmentInfo {
        try await self.sendExpecting(.assign(request), timeout: timeout) {
            if case .assign(let response) = $0 { return response }
            return nil
        }
    }

    /// `release`.
    public func release(
        _ request: Wire.ReleaseRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.ReleaseResponse {
        try await self.sendExpecting(.release(request), timeout: timeout) {
            if case .release(let response) = $0 { return response }
            return nil
        }
    }

    /// `add_number`.
    public func addNumber(
        _ request: Wire.AddNumberRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.NumberInfo {
        try await self.sendExpecting(.addNumber(request), timeout: timeout) {
            if case .addNumber(let response) = $0 { return response }
            return nil
        }
    }

    /// `import_numbers`.
    public func importNumbers(
        _ request: Wire.ImportNumbersRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.ImportNumbersResponse {
        try await self.sendExpecting(.importNumbers(request), timeout: timeout) {
            if case .importNumbers(let response) = $0 { return response }
            return nil
        }
    }

    /// `list_numbers`.
    public func listNumbers(
        _ request: Wire.ListNumbersRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.ListNumbersResponse {
        try await self.sendExpecting(.listNumbers(request), timeout: timeout) {
            if case .listNumbers(let response) = $0 { return response }
            return nil
        }
    }

    /// `get_number`.
    public func getNumber(
        _ request: Wire.GetNumberRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.NumberInfo {
        try await self.sendExpecting(.getNumber(request), timeout: timeout) {
            if case .getNumber(let response) = $0 { return response }
            return nil
        }
    }

    /// `update_number`.
    public func updateNumber(
        _ request: Wire.UpdateNumberRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.NumberInfo {
        try await self.sendExpecting(.updateNumber(request), timeout: timeout) {
            if case .updateNumber(let response) = $0 { return response }
            return nil
        }
    }

    /// `delete_numbers`.
    public func deleteNumbers(
        _ request: Wire.DeleteNumbersRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.DeleteNumbersResponse {
        try await self.sendExpecting(.deleteNumbers(request), timeout: timeout) {
            if case .deleteNumbers(let response) = $0 { return response }
            return nil
        }
    }

    /// `upsert_agent`.
    public func upsertAgent(
        _ request: Wire.UpsertAgentRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.AgentInfo {
        try await self.sendExpecting(.upsertAgent(request), timeout: timeout) {
            if case .upsertAgent(let response) = $0 { return response }
            return nil
        }
    }

    /// `list_agents`.
    public func listAgents(
        _ request: Wire.ListAgentsRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.ListAgentsResponse {
        try await self.sendExpecting(.listAgents(request), timeout: timeout) {
            if case .listAgents(let response) = $0 { return response }
            return nil
        }
    }

    /// `deactivate_agent`.
    public func deactivateAgent(
        _ request: Wire.DeactivateAgentRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.AgentInfo {
        try await self.sendExpecting(.deactivateAgent(request), timeout: timeout) {
            if case .deactivateAgent(let response) = $0 { return response }
            return nil
        }
    }

    /// `list_assignments`.
    public func listAssignments(
        _ request: Wire.ListAssignmentsRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.ListAssignmentsResponse {
        try await self.sendExpecting(.listAssignments(request), timeout: timeout) {
            if case .listAssignments(let response) = $0 { return response }
            return nil
        }
    }

    /// `update_assignment`.
    public func updateAssignment(
        _ request: Wire.UpdateAssignmentRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.AssignmentInfo {
        try await self.sendExpecting(.updateAssignment(request), timeout: timeout) {
            if case .updateAssignment(let response) = $0 { return response }
            return nil
        }
    }

    /// `reset_counters`.
    public func resetCounters(
        _ request: Wire.ResetCountersRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.ResetCountersResponse {
        try await self.sendExpecting(.resetCounters(request), timeout: timeout) {
            if case .resetCounters(let response) = $0 { return response }
            return nil
        }
    }

    /// `audit_log`.
    public func auditLog(
        _ request: Wire.AuditLogRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.AuditLogResponse {
        try await self.sendExpecting(.auditLog(request), timeout: timeout) {
            if case .auditLog(let response) = $0 { return response }
            return nil
        }
    }

    /// `number_timeline`.
    public func numberTimeline(
        _ request: Wire.NumberTimelineRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.NumberTimelineResponse {
        try await self.sendExpecting(.numberTimeline(request), timeout: timeout) {
            if case .numberTimeline(let response) = $0 { return response }
            return nil
        }
    }

    /// `sync_numbers`.
    public func syncNumbers(
        _ request: Wire.SyncNumbersRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.SyncNumbersResponse {
        try await self.sendExpecting(.syncNumbers(request), timeout: timeout) {
            if case .syncNumbers(let response) = $0 { return response }
            return nil
        }
    }

    /// `create_key`.
    public func createKey(
        _ request: Wire.CreateKeyRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.CreateKeyResponse {
        try await self.sendExpecting(.createKey(request), timeout: timeout) {
            if case .createKey(let response) = $0 { return response }
            return nil
        }
    }

    /// `list_keys`.
    public func listKeys(
        _ request: Wire.ListKeysRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.ListKeysResponse {
        try await self.sendExpecting(.listKeys(request), timeout: timeout) {
            if case .listKeys(let response) = $0 { return response }
            return nil
        }
    }

    /// `revoke_key`.
    public func revokeKey(
        _ request: Wire.RevokeKeyRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.KeyInfo {
        try await self.sendExpecting(.revokeKey(request), timeout: timeout) {
            if case .revokeKey(let response) = $0 { return response }
            return nil
        }
    }

    /// `stats`.
    public func stats(
        _ request: Wire.StatsRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.StatsResponse {
        try await self.sendExpecting(.stats(request), timeout: timeout) {
            if case .stats(let response) = $0 { return response }
            return nil
        }
    }
}
