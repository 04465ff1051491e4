/// A ``ChangeSink`` that keeps every change in memory: for tests, the demo, and engines without a store.
public final class InMemoryChangeLog: ChangeSink {
    private struct State {
        var records: [ChangeRecord] = []
        var sequence: UInt64 = 0
        var failure: CallgateError?
        var keepRecords: Bool
    }

    private let state: Locked<State>

    /// - Parameter keepRecords: `false` only counts (benchmarks); `true` keeps each record for inspection.
    public init(keepRecords: Bool = true) {
        self.state = Locked(State(keepRecords: keepRecords))
    }

    public func record(_ change: ChangeRecord) throws(CallgateError) -> ChangeTicket {
        let result: Result<ChangeTicket, CallgateError> = self.state.withLock { state in
            if let failure = state.failure { return .failure(failure) }
            if state.keepRecords { state.records.append(change) }
            state.sequence += 1
            return .success(ChangeTicket(sequence: state.sequence))
        }
        return try result.get()
    }

    /// Every change recorded so far, in order.
    public var records: [ChangeRecord] { self.state.withLock { $0.records } }

    /// From now on, every ``record(_:)`` fails with `error` (`nil` heals): simulates a failed store.
    public func failAll(with error: CallgateError?) { self.state.withLock { $0.failure = error } }
}
