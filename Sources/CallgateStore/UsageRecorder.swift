import CSQLite
public import CallgateCore
import Dispatch
import Foundation
import Synchronization

/// Moves the engine's usage tallies into the store and keeps past days within the retention.
///
/// ```
///  engine (agent locks) ──takeUsage() every 15 s──▶ one change per ≤ 64 records ──▶ ChangeWriter
///                       ◀──usageStored(part)── after its commit (never before: nothing is lost)
///  every hour: delete ≤ 500 rows per table per change, days before today − (retention − 1)
/// ```
///
/// Tallies are written as deltas, so what a crash can lose is what the engine counted since the last
/// take and what the take in progress has not stored yet (allowed calls by hour and denials: at most
/// one interval and a third); the daily counters, written with every call, are not affected. One take
/// runs at a time, and one prune; a report takes first (``takeNow(foldingCounters:of:paced:)``), so
/// that it includes everything counted up to the moment it was asked. The periodic take is paced:
/// after each change it pauses three times as long as that change took to commit (at most 20 ms), for
/// at most a third of the interval, so that a tally of 50,000 rows is spread over a few seconds instead
/// of holding the writer for one (the calls committed meanwhile wait behind it, and the writer's core
/// is one of the event loops' too); a report or the stop waiting for it ends the pacing.
public final class UsageRecorder: Sendable {
    // Takes are serialized by `takes` (two at once would store the same tallies twice), prunes by `prunes`.
    private let engine: Engine
    private let writer: ChangeWriter
    /// Reports and retention checks, over a read-only connection of their own.
    public let reader: UsageReader
    /// Days kept, today included; 0 keeps everything.
    public let retentionDays: Int
    private let interval: Double
    private let pruneInterval: Double
    private let takes = DispatchSemaphore(value: 1)
    private let prunes = DispatchSemaphore(value: 1)
    private let stopRequested = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let state = Locked(State.idle)
    /// Takes waiting for `takes` that must not wait for a paced one (reports, stop).
    private let urgentTakes = Atomic<Int>(0)

    private enum State { case idle, running, stopped }

    /// Records per change at most: a change is applied inside one group commit, so this bounds how
    /// long it can delay the calls committed with it (~1 ms on a slow VM).
    static let recordsPerChange = 64
    /// Longest pause between two changes of a paced take.
    static let maximumPace = Duration.milliseconds(20)
    /// Rows deleted per table per retention change.
    public static let pruneRowsPerChange = 500

    init(engine: Engine, writer: ChangeWriter, reader: UsageReader, configuration: StoreConfiguration) {
        self.engine = engine
        self.writer = writer
        self.reader = reader
        self.retentionDays = max(0, configuration.usageRetentionDays)
        self.interval = max(0.01, configuration.usageSnapshotSeconds)
        self.pruneInterval = max(1, configuration.usagePruneSeconds)
    }

    /// Reserves every agent's tally capacity and starts the thread that takes tallies every interval
    /// and prunes every prune interval (the first prune one interval after the start).
    func start() {
        for org in self.engine.allOrganizations { org.reserveUsageCapacity() }
        self.state.withLock { $0 = .running }
        let thread = Thread { [self] in
            callgate_set_thread_name("callgate-usage")
            var nextPrune = DispatchTime.now() + self.interval
            while self.stopRequested.wait(timeout: .now() + self.interval) == .timedOut {
                // A failure (store failed, queue full) leaves the tallies counted: the next take retries.
                _ = try? self.takeNow(paced: true)
                if DispatchTime.now() >= nextPrune {
                    _ = try? self.pruneNow()
                    nextPrune = DispatchTime.now() + self.pruneInterval
                }
            }
            _ = try? self.takeNow()
            self.finished.signal()
        }
        thread.name = "callgate-usage"
        thread.start()
    }

    /// Takes the last tallies into the store and stops the thread (before the writer stops). Safe to
    /// call more than once.
    func stop() {
        let wasRunning = self.state.withLock { state -> Bool in
            defer { state = .stopped }
            return state == .running
        }
        guard wasRunning else { return }
        self.urgentTakes.add(1, ordering: .relaxed)
        self.stopRequested.signal()
        self.finished.wait()
    }

    private var isStopping: Bool { self.state.withLock { $0 == .stopped } }

    // MARK: - Taking the tallies

    /// Writes every tally counted so far and waits until it is committed.
    ///
    /// - Parameters:
    ///   - foldingCounters: also make every daily counter counted so far visible in the `counters`
    ///     table (``ChangeEvent/countersVisible``), as a report covering today needs.
    ///   - organization: only this organization's tallies (a report); `nil` for all.
    ///   - paced: pause after each change (the periodic take), unless an urgent take waits.
    /// - Returns: how many records were written.
    /// - Throws: ``CallgateError`` from the writer (`unavailable`, `resourceExhausted`): what was not
    ///   committed stays counted in the engine.
    @discardableResult
    public func takeNow(
        foldingCounters: Bool = false,
        of organization: OrganizationID? = nil,
        paced: Bool = false
    ) throws(CallgateError) -> Int {
        if !paced { self.urgentTakes.add(1, ordering: .relaxed) }
        self.takes.wait()
        if !paced { self.urgentTakes.subtract(1, ordering: .relaxed) }
        defer { self.takes.signal() }
        var written = 0
        let pacedUntil = ContinuousClock.now + .seconds(self.interval / 3)
        if foldingCounters { try self.makeCountersVisible() }
        for org in self.engine.allOrganizations where organization == nil || org.id == organization {
            let parts = org.takeUsage().parts
            var start = 0
            while start < parts.count {
                var end = start
                var count = 0
                while end < parts.count, count == 0 || count + parts[end].records.count <= Self.recordsPerChange {
                    count += parts[end].records.count
                    end += 1
                }
                let batch = parts[start..<end]
                let started = ContinuousClock.now
                do throws(CallgateError) {
                    try self.commit(org.id, .usageTallied(batch.flatMap(\.records)), actor: nil)
                } catch {
                    for part in parts[start...] { org.usageNotStored(part) }
                    throw error
                }
                for part in batch { org.usageStored(part) }
                written += count
                start = end
                if paced, start < parts.count, self.urgentTakes.load(ordering: .relaxed) == 0,
                    ContinuousClock.now < pacedUntil
                {
                    let pause = min((ContinuousClock.now - started) * 3, Self.maximumPace).components
                    Thread.sleep(forTimeInterval: Double(pause.seconds) + Double(pause.attoseconds) * 1e-18)
                }
            }
        }
        return written
    }

    // MARK: - Retention

    /// Deletes the counters and tallies of days older than the retention, a slice per change, and
    /// audits each organization's pass (actor `system`).
    ///
    /// - Parameter rowsPerChange: rows deleted per table per change.
    /// - Returns: what was deleted, per organization that had anything to delete.
    @discardableResult
    public func pruneNow(
        rowsPerChange: Int = UsageRecorder.pruneRowsPerChange
    ) throws(CallgateError) -> [OrganizationID: RetentionPrune.Summary] {
        guard self.retentionDays > 0 else { return [:] }
        self.prunes.wait()
        defer { self.prunes.signal() }
        var done: [OrganizationID: RetentionPrune.Summary] = [:]
        // Counted below from the `counters` table: every counter logged so far in it first.
        try self.makeCountersVisible()
        for org in self.engine.allOrganizations {
            guard let today = LocalDate(org.day.localDate(of: org.today)) else { continue }
            let before = today.adding(days: -(self.retentionDays - 1)).description
            let (counters, usage) = try self.reader.countBefore(org.id, day: before)
            guard counters + usage > 0 else { continue }
            let summary = RetentionPrune.Summary(counters: counters, usage: usage, retentionDays: self.retentionDays)
            // Enough slices for what was counted, and a few more for rows of those days written since.
            let slices = max(counters, usage) / max(1, rowsPerChange) + 3
            for slice in 0..<slices {
                try self.commit(
                    org.id,
                    .retentionPruned(
                        RetentionPrune(
                            beforeDay: before,
                            limit: max(1, rowsPerChange),
                            summary: slice == 0 ? summary : nil
                        )
                    ),
                    actor: .system
                )
                guard try self.reader.hasRowsBefore(org.id, day: before), !self.isStopping else { break }
                // Let the writer's groups of calls through between slices.
                Thread.sleep(forTimeInterval: 0.005)
            }
            done[org.id] = summary
        }
        return done
    }

    // MARK: - Helpers

    /// Waits until every counter logged so far is in the `counters` table, which reports and retention
    /// read (``ChangeEvent/countersVisible``; the record's organization does not matter). The writer
    /// folds the log at once, in slices between its groups: this takes a round or two of those.
    private func makeCountersVisible() throws(CallgateError) {
        guard let any = self.engine.allOrganizations.first else { return }
        try self.commit(any.id, .countersVisible, actor: nil, untilFolded: true)
    }

    /// Records one change and waits for its commit (or, `untilFolded`, until the counters logged before
    /// it are folded: ``ChangeWriter/whenCountersFolded(_:_:)``).
    private func commit(
        _ organization: OrganizationID,
        _ event: ChangeEvent,
        actor: Actor?,
        untilFolded: Bool = false
    ) throws(CallgateError) {
        let ticket = try self.writer.record(
            ChangeRecord(organization: organization, at: self.engine.clock.now(), actor: actor, event: event)
        )
        let committed = DispatchSemaphore(value: 0)
        let outcome = Locked<CallgateError?>(nil)
        let wait = untilFolded ? self.writer.whenCountersFolded : self.writer.whenCommitted
        wait(ticket) { error in
            outcome.withLock { $0 = error }
            committed.signal()
        }
        committed.wait()
        if let error = outcome.withLock({ $0 }) { throw error }
    }

    /// One page of a usage report (see ``UsageReader/report(_:_:cursor:limit:)``).
    public func report(
        _ organization: OrganizationID,
        _ query: UsageQuery,
        cursor: String? = nil,
        limit: Int = 100
    ) throws(CallgateError) -> UsageReport {
        try self.reader.report(organization, query, cursor: cursor, limit: limit)
    }
}
