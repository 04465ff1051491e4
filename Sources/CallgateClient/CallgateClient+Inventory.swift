public import CallgateWire

/// Typed calls of the inventory methods: pools and bulk operations (`sync_numbers` is with the others).
extension CallgateClient {
    /// `pool_capacity`.
    public func poolCapacity(
        _ request: Wire.PoolCapacityRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.PoolCapacityResponse {
        try await self.sendExpecting(.poolCapacity(request), timeout: timeout) {
            if case .poolCapacity(let response) = $0 { return response }
            return nil
        }
    }

    /// `set_pool_threshold`.
    public func setPoolThreshold(
        _ request: Wire.SetPoolThresholdRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.PoolInfo {
        try await self.sendExpecting(.setPoolThreshold(request), timeout: timeout) {
            if case .setPoolThreshold(let response) = $0 { return response }
            return nil
        }
    }

    /// `bulk_assign`.
    public func bulkAssign(
        _ request: Wire.BulkAssignRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.BulkAssignResponse {
        try await self.sendExpecting(.bulkAssign(request), timeout: timeout) {
            if case .bulkAssign(let response) = $0 { return response }
            return nil
        }
    }

    /// `bulk_release`.
    public func bulkRelease(
        _ request: Wire.BulkReleaseRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.BulkResponse {
        try await self.sendExpecting(.bulkRelease(request), timeout: timeout) {
            if case .bulkRelease(let response) = $0 { return response }
            return nil
        }
    }

    /// `bulk_update_status`.
    public func bulkUpdateStatus(
        _ request: Wire.BulkUpdateStatusRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.BulkResponse {
        try await self.sendExpecting(.bulkUpdateStatus(request), timeout: timeout) {
            if case .bulkUpdateStatus(let response) = $0 { return response }
            return nil
        }
    }

    /// `bulk_delete`.
    public func bulkDelete(
        _ request: Wire.BulkDeleteRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.BulkResponse {
        try await self.sendExpecting(.bulkDelete(request), timeout: timeout) {
            if case .bulkDelete(let response) = $0 { return response }
            return nil
        }
    }
}
