public import CallgateWire

/// Typed calls of the usage report.
extension CallgateClient {
    /// `usage_report`: one page.
    public func usageReport(
        _ request: Wire.UsageReportRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.UsageReportResponse {
        try await self.sendExpecting(.usageReport(request), timeout: timeout) {
            if case .usageReport(let response) = $0 { return response }
            return nil
        }
    }

    /// `usage_report`: every page, rows in order. The unknown agents' row and the time zone are those
    /// of the first page.
    public func usageReportAllPages(
        _ request: Wire.UsageReportRequest,
        timeout: Duration? = nil
    ) async throws(CallgateClientError) -> Wire.UsageReportResponse {
        var request = request
        var all = try await self.usageReport(request, timeout: timeout)
        var next = all.nextCursor
        while !next.isEmpty {
            request.cursor = next
            let page = try await self.usageReport(request, timeout: timeout)
            all.rows += page.rows
            // A cursor that does not move would never end.
            next = page.nextCursor == next ? "" : page.nextCursor
        }
        all.nextCursor = ""
        return all
    }
}
