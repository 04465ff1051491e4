import CSQLite
public import CallgateCore
import Dispatch
import Foundation
import Synchronization

/// The write-through half of the store: a ``ChangeSink`` that hands every engine change to one
/// writer thread, which commits them in groups (many changes per transaction) and then completes
/// their tickets.
///
/// ```
///  engine threads ──record()──▶ ChangeQueue (lock-free, bounded) ──▶ writer thread
///                  ◀─ticket──                                         BEGIN; apply N; COMMIT
///  server ──whenCommitted(ticket)──────────────────────────────────▶ callbacks after COMMIT
/// ```
///
/// At low load, an event loop that holds replies for a commit may commit the few counted calls queued
/// itself while the writer sleeps (``commitIfIdle(through:)``): the writer's state is guarded by one
/// work lock, which the writer holds for each group and the event loop only takes if it is free. With
/// `synchronous=normal` the event loop appends them to the counter journal (``CounterJournal``, one
/// `write`, the same durability as that commit) and the writer copies the journal into the counter log
/// at the start of its next transaction (within 5 ms while idle); the open applies what a crash left in
/// the journal after the log.
///
/// Counter changes are absolute values, so consecutive ones for the same number coalesce into one
/// entry per group. A group does not update the `counters` rows of the numbers it counted (one random
/// B-tree write each: the writer's main cost under load); it appends them as one `counter_log` row (a
/// packed blob, 24 bytes per number) in the same transaction, so they are exactly as durable. Every
/// `counterFoldSeconds` (5 s) the numbers logged since the last fold, once each with their latest
/// count, are written to `counters` a slice per group (or while idle), and the log rows they cover are
/// deleted with the last slice. Opening the store folds whatever a crash left in the log. Changes that
/// write `counters` rows themselves (a reset, a deletion) first fold everything in their transaction;
/// retention drops what it is about to delete. ``ChangeEvent/countersVisible`` (before a usage report or
/// a retention pass) starts a round at once instead, and ``whenCountersFolded(_:_:)`` calls back once
/// every counter logged before it is in `counters`: a report waits a round or two, the calls committed
/// meanwhile never wait for one large fold. Other rounds are paced, spread over half the interval
/// (`dueRows`), and each is sorted by the writer thread outside the work lock (`prepareRounds`).
///
/// If a commit fails (disk full, I/O error), nothing that was not stored is acknowledged: the waiting
/// tickets fail, and every later ``record(_:)`` throws `UNAVAILABLE`, so the engine refuses changes and
/// keeps serving reads.
public final class ChangeWriter: ChangeSink, @unchecked Sendable {
    // @unchecked: `database`, `statements`, `usage`, `zones`, `dayNames`, the batch and the counter log's and calls'
    // state are touched only under the `work` lock (after `start`), the rounds being prepared only by the writer
    // thread; everything else shared is atomic or in a Locked.
    private let queue: ChangeQueue
    private let configuration: StoreConfiguration
    private let database: SQLiteDatabase
    private var statements: WriterStatements!
    /// Usage tallies and retention (UsageStore.swift), on the same connection and transactions.
    private let usage: UsageWriter
    private var zones: [OrganizationID: OrganizationDay] = [:]
    private var dayNames: [Int64: String] = [:]
    /// Calls counted per held number but not yet added to `assignments.calls`. Adding one to the
    /// assignment row with every call would write a random B-tree page per call, so these deltas are
    /// written every `counterFoldSeconds` (and at stop) instead, with the counter folds: a crash may
    /// lose that much of this statistic. Daily counters (what limits are checked against) are always
    /// committed with the call (in the counter log).
    private var pendingCalls: [NumberKey: Int64] = [:]
    /// The deltas of the last interval in key order, being written a slice per group (a slice touches
    /// neighbouring rows: few pages), and how far that got; new ones wait in `pendingCalls`.
    private var callsRound: [(key: NumberKey, calls: Int64)] = []
    private var callsWritten = 0
    private var callsWrittenAt: UInt64 = 0

    // The counter log (see the type's documentation); under the work lock.
    /// The latest count of each counter logged since the current fold round started.
    private var unfolded: [CounterKey: UInt32] = [:]
    /// The round being folded, in key order, and how far it got.
    private var folding: [(key: CounterKey, count: UInt32)] = []
    private var foldedUpTo = 0
    /// The last log row the round covers (deleted with its last slice).
    private var foldingThrough: Int64 = 0
    private var lastLogID: Int64 = 0
    private var foldStartedAt: UInt64 = 0
    /// Nanoseconds between rounds (`counterFoldSeconds`).
    private let roundInterval: UInt64
    /// Queue positions applied so far (in committed transactions or the open one).
    private var appliedPosition = 0
    /// The positions whose counters the round in progress holds: every one applied when it started.
    private var roundCovers = 0
    /// A ``ChangeEvent/countersVisible`` waits: start the next round without waiting for the interval.
    private var foldSoon = false
    /// Whether the round in progress of each kind is paced (spread over half the interval, see
    /// `dueRows`) rather than written as fast as groups allow: not when a report or a retention pass
    /// waits for it, not when it started early because too many numbers waited, not at stop.
    private var foldPaced = false
    private var callsPaced = false
    /// A round taken from `unfolded` / `pendingCalls` (under the work lock) whose entries the writer
    /// thread is putting in key order outside the lock (`prepareRounds`, ~10 ms each for 50,000
    /// numbers, which inline commits would otherwise wait for); installed at the writer's next step.
    /// The flags are read by inline commits (under the lock); the snapshots and the sorted rounds are
    /// the writer thread's alone.
    private var foldPreparing = false
    private var callsPreparing = false
    private var foldSnapshot: [CounterKey: UInt32]?
    private var callsSnapshot: [NumberKey: Int64]?
    private var preparedFold: [(key: CounterKey, count: UInt32)]?
    private var preparedCalls: [(key: NumberKey, calls: Int64)]?
    /// Counters written in the open transaction, and the most in one so far (``WriterStatistics/largestFold``).
    private var foldedInTransaction = 0
    private var largestFold = 0
    private var logBytes: [UInt8] = []
    /// Rows of each round (counters, calls) written per group: as many as the group has changes,
    /// between 64 and 1,024, and 128 while idle. A row costs about as much as a change (~10 µs on a
    /// slow VM), so a round adds about as much time to a group as the group itself, never a long stall
    /// to a small group; a round over 50,000 numbers still ends well within its interval under load.
    static func rowsPerGroup(_ changes: Int) -> Int { changes == 0 ? 128 : min(1024, max(64, changes)) }
    /// A round starts early once this many counters wait.
    static let foldEarlyCount = 65_536
    /// Bytes per log entry: organization (4), e164 digits (8), day key (8), count (4), little-endian.
    static let logEntryBytes = 24

    private let committedPosition = Atomic<Int>(0)
    /// Every counter of the changes below this position is in the `counters` table (committed).
    private let foldedPosition = Atomic<Int>(0)
    private let sleeping = Atomic<Bool>(false)
    /// `async`: the writer lets changes gather after a group; a waiter for a commit wakes it.
    private let gathering = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let failed = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)
    private let shared = Locked(Shared())
    /// Held by whoever works on the database and the writer's state: the writer thread for each step,
    /// or a thread committing a small group itself (``commitIfIdle(through:)``). Its value: the queue
    /// positions handled so far (committed or failed); `stop` waits until every claimed one is.
    private let work = Locked(0)
    /// The group being committed (reused).
    private var batch: [(Int, ChangeRecord)] = []
    /// ``StoreConfiguration/inlineCommitChanges``, 0 when commits never run on a caller's thread.
    private let inlineCommitChanges: Int
    /// Frames in the WAL after the last commit (`walHook`), and the backstop checkpoint's threshold
    /// (``StoreConfiguration/walAutocheckpointPages``).
    private let walFramesAtomic = Atomic<Int>(0)
    private var walFrames: Int { self.walFramesAtomic.load(ordering: .relaxed) }
    private let walCheckpointFrames: Int
    /// Where event loops commit counted calls (``CounterJournal``), when they commit inline at all and
    /// the database is a file; under the work lock.
    private let journal: CounterJournal?
    /// Whether the open transaction copies the journal's pending records into the counter log.
    private var absorbingJournal = false
    /// An inline commit is in progress (under the work lock): `walHook` leaves the checkpoint alone.
    private var committingInline = false

    private struct Shared {
        var waiters = WaiterHeap()
        /// ``whenCountersFolded(_:_:)`` callbacks, by position.
        var foldWaiters = WaiterHeap()
        var failure: CallgateError?
        var stats = WriterStatistics()
        var batchObserver: (@Sendable (_ size: Int, _ nanoseconds: UInt64, _ inline: Bool) -> Void)?
    }

    init(database: SQLiteDatabase, configuration: StoreConfiguration) throws(SQLiteError) {
        self.database = database
        self.configuration = configuration
        self.queue = ChangeQueue(capacity: configuration.queueCapacity)
        self.roundInterval = UInt64(max(0, configuration.counterFoldSeconds) * 1e9)
        // Only where a commit does not wait for the disk (no fsync per commit), and only when replies
        // wait for commits.
        self.inlineCommitChanges =
            configuration.durability == .commit && configuration.synchronous == .normal
            ? max(0, configuration.inlineCommitChanges) : 0
        // Without one (the database is not a plain file, or the file cannot be created), inline
        // commits run SQLite transactions; an existing journal that cannot be opened (read-write,
        // locked), even an empty one, refuses the open (`foldLogAtOpen`).
        self.journal =
            self.inlineCommitChanges > 0 && configuration.counterJournal
            ? try? CounterJournal(databasePath: configuration.path) : nil
        self.statements = try WriterStatements(database)
        self.usage = try UsageWriter(database)
        self.walCheckpointFrames = max(configuration.walAutocheckpointPages, 100)
        // Replaces SQLite's automatic checkpoint (`PRAGMA wal_autocheckpoint`), which would run inside
        // whichever commit crosses the threshold, an event loop's too.
        sqlite3_wal_hook(database.handle, Self.walHook, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit { sqlite3_wal_hook(self.database.handle, nil, nil) }

    /// After each commit on the writer's connection: notes the WAL's size and, past the threshold and on
    /// the writer thread, runs the backstop checkpoint as SQLite's automatic one would (the
    /// checkpointer thread normally keeps the WAL far below it).
    private static let walHook:
        @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<CChar>?, Int32)
            -> Int32 = { context, db, name, frames in
                guard let context else { return SQLITE_OK }
                let writer = Unmanaged<ChangeWriter>.fromOpaque(context).takeUnretainedValue()
                writer.walFramesAtomic.store(Int(frames), ordering: .relaxed)
                if Int(frames) >= writer.walCheckpointFrames, !writer.committingInline {
                    sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
                }
                return SQLITE_OK
            }

    /// Lets the writer name the local days of an organization loaded from the store.
    func register(_ organization: OrganizationID, timeZone: String) {
        if let day = try? OrganizationDay(timeZoneIdentifier: timeZone) { self.zones[organization] = day }
    }

    /// Runs `body` while the writer holds off (no group, no slice, no inline commit): for a test that
    /// copies the files as a crash would leave them.
    func whileHeld<T>(_ body: () throws -> T) rethrows -> T {
        try self.work.withLock { _ in try body() }
    }

    /// Starts the writer thread.
    func start() {
        let thread = Thread { [self] in self.run() }
        thread.name = "callgate-writer"
        thread.start()
    }

    // MARK: - ChangeSink

    public func record(_ change: ChangeRecord) throws(CallgateError) -> ChangeTicket {
        if self.failed.load(ordering: .acquiring) { throw self.currentFailure() }
        if self.stopping.load(ordering: .acquiring) {
            throw CallgateError(.unavailable, "the store is closed; changes are refused")
        }
        // A counted call whose reply waits for its commit, while few wait: its event loop commits it
        // itself (`commitIfIdle`) or wakes the writer when it registers to wait (`whenCommitted`).
        // Once more wait than an event loop would commit, the writer is woken at once as usual.
        let mayWakeLater = self.inlineCommitChanges > 0 && change.event.isCounter
        var position = self.queue.push(change)
        var spins = 0
        while position == nil {
            // Full: the disk is far behind. Give the writer a moment, then refuse.
            spins += 1
            if spins > 200 {
                throw CallgateError(.resourceExhausted, "the store writer is behind; retry shortly")
            }
            if self.failed.load(ordering: .acquiring) { throw self.currentFailure() }
            sched_yield()
            position = self.queue.push(change)
        }
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if !mayWakeLater
            || position! - self.committedPosition.load(ordering: .relaxed) >= self.inlineCommitChanges
        {
            self.wakeIfSleeping()
        }
        return ChangeTicket(sequence: UInt64(position!))
    }

    private func wakeIfSleeping() {
        if self.sleeping.load(ordering: .sequentiallyConsistent),
            self.sleeping.compareExchange(expected: true, desired: false, ordering: .sequentiallyConsistent).exchanged
        {
            self.wake.signal()
        }
    }

    // MARK: - Waiting for commits

    /// Whether the change with this ticket is committed.
    public func isCommitted(_ ticket: ChangeTicket) -> Bool {
        Int(ticket.sequence) < self.committedPosition.load(ordering: .acquiring)
    }

    /// Calls `callback` once the ticket's change is committed (`nil`) or can never be (the error).
    /// Runs at once when that is already known; otherwise on the thread that commits it (the writer's,
    /// or one in ``commitIfIdle(through:)``): keep it short.
    public func whenCommitted(_ ticket: ChangeTicket, _ callback: @escaping @Sendable (CallgateError?) -> Void) {
        guard self.register(ticket, reached: self.committedPosition, in: \.waiters, callback) else { return }
        // Someone now waits: a writer gathering `async` changes commits at once, and a sleeping one
        // wakes (`record` leaves counted calls to their event loops: see `commitIfIdle`).
        if self.gathering.load(ordering: .relaxed),
            self.gathering.compareExchange(expected: true, desired: false, ordering: .relaxed).exchanged
        {
            self.wake.signal()
        } else if self.inlineCommitChanges > 0 {
            atomicMemoryFence(ordering: .sequentiallyConsistent)
            self.wakeIfSleeping()
        }
    }

    /// Calls `callback` once every counter logged by the changes up to this ticket is in the `counters`
    /// table (`nil`), or can never be (the error). Record a ``ChangeEvent/countersVisible`` change and
    /// pass its ticket: the writer then folds the counter log at once, in slices between groups.
    /// Runs at once when that is already known; otherwise on the thread that folds it: keep it short.
    public func whenCountersFolded(_ ticket: ChangeTicket, _ callback: @escaping @Sendable (CallgateError?) -> Void) {
        self.register(ticket, reached: self.foldedPosition, in: \.foldWaiters, callback)
    }

    /// Calls `callback` at once when the position `reached` is past the ticket (`nil`) or the writer has
    /// failed (the error); else adds it to `heap` and returns `true`.
    @discardableResult
    private func register(
        _ ticket: ChangeTicket,
        reached: borrowing Atomic<Int>,
        in heap: WritableKeyPath<Shared, WaiterHeap>,
        _ callback: @escaping @Sendable (CallgateError?) -> Void
    ) -> Bool {
        let position = Int(ticket.sequence)
        let immediate: CallgateError?? = self.shared.withLock { shared in
            if position < reached.load(ordering: .acquiring) { return .some(nil) }
            if let failure = shared.failure { return .some(failure) }
            shared[keyPath: heap].insert(position, callback)
            return .none
        }
        guard let immediate else { return true }
        callback(immediate)
        return false
    }

    /// Waits until the ticket's change is committed.
    public func waitForCommit(_ ticket: ChangeTicket) async throws(CallgateError) {
        let error: CallgateError? = await withCheckedContinuation { continuation in
            self.whenCommitted(ticket) { continuation.resume(returning: $0) }
        }
        if let error { throw error }
    }

    /// The ticket of the last change recorded so far (by any thread), or `nil` when none was.
    ///
    /// A caller that just made changes through the engine waits for this ticket to know that its own
    /// changes are committed (it may also wait for a few concurrent ones: never for less).
    public var lastTicket: ChangeTicket? {
        let claimed = self.queue.claimed
        return claimed > 0 ? ChangeTicket(sequence: UInt64(claimed - 1)) : nil
    }

    /// Whether more than a sixteenth of the queue (16k changes by default) waits for the writer. In `async` durability the server then
    /// holds replies until their commit, which slows clients down instead of filling the queue and
    /// refusing changes.
    public var isBehind: Bool {
        self.queue.claimed - self.committedPosition.load(ordering: .relaxed) > self.configuration.queueCapacity / 16
    }

    /// Whether the writer is working (it has not failed and refuses nothing).
    public var isHealthy: Bool { self.shared.withLock { $0.failure == nil } }

    /// Waits until every change recorded so far is committed.
    public func flush() async throws(CallgateError) {
        let claimed = self.queue.claimed
        guard claimed > 0 else { return }
        try await self.waitForCommit(ChangeTicket(sequence: UInt64(claimed - 1)))
    }

    /// Commits what is queued and stops the writer thread.
    func stop() {
        if !self.stopping.exchange(true, ordering: .sequentiallyConsistent) { self.wake.signal() }
        // Every caller waits for the writer thread to finish; each passes the signal on to the next.
        self.stopped.wait()
        self.stopped.signal()
    }

    /// Sets (or with `nil` removes) a function called on the committing thread after each committed
    /// transaction with the number of changes in it, the time the transaction took, and whether an
    /// event loop committed it itself (``commitIfIdle(through:)``). It runs before
    /// the batch's tickets are completed (so an acknowledged change is already counted): keep it short
    /// (count, record into a histogram) and never block.
    public func setBatchObserver(
        _ observer: (@Sendable (_ size: Int, _ nanoseconds: UInt64, _ inline: Bool) -> Void)?
    ) {
        self.shared.withLock { $0.batchObserver = observer }
    }

    /// Counters of the writer's work so far.
    public var statistics: WriterStatistics { self.shared.withLock { $0.stats } }

    private func currentFailure() -> CallgateError {
        self.shared.withLock { $0.failure } ?? CallgateError(.unavailable, "the store has failed")
    }

    // MARK: - The writer thread

    /// What the writer thread does after a step.
    private enum Step {
        case again
        case sleep
        case gather(groupSize: Int)
        /// Sort the rounds just taken, outside the work lock.
        case prepareRounds
        case stopped
    }

    private func run() {
        callgate_set_thread_name("callgate-writer")
        self.work.withLock { _ in
            // The first fold round one interval after the start.
            self.foldStartedAt = DispatchTime.now().uptimeNanoseconds
            self.callsWrittenAt = self.foldStartedAt
            self.batch.reserveCapacity(self.configuration.maximumBatch)
        }
        loop: while true {
            // The work lock is held for each step and released between them: an event loop may commit
            // a small group itself while the writer sleeps (``commitIfIdle(through:)``).
            switch self.work.withLock({ processed in self.step(&processed) }) {
            case .again:
                continue
            case .sleep:
                // The timeout bounds a wake-up lost to a race (and lets `stop` finish).
                _ = self.wake.wait(timeout: .now() + .milliseconds(5))
                self.sleeping.store(false, ordering: .relaxed)
            case .gather(let groupSize):
                self.gatherIfAsync(after: groupSize)
            case .prepareRounds:
                self.prepareRounds()
            case .stopped:
                break loop
            }
        }
        self.refuseAfterStop()
        // The journal is empty after a clean stop (or holds what a failed writer could not copy, for
        // the next open): let the next store on this database take it.
        self.work.withLock { _ in self.journal?.close() }
        self.stopped.signal()
    }

    /// After the stop: a change that passed `record`'s check just before `stop` set `stopping`, and
    /// was queued after the writer's last look at the queue, is never committed. Its waiters, and any
    /// that register later, hear so instead of waiting forever.
    private func refuseAfterStop() {
        var ready: [WaiterHeap.Callback] = []
        let error = self.shared.withLock { shared in
            let error = shared.failure ?? CallgateError(.unavailable, "the store is closed; the change was not stored")
            shared.failure = error
            shared.waiters.popAll(into: &ready)
            shared.foldWaiters.popAll(into: &ready)
            return error
        }
        for callback in ready { callback(error) }
    }

    /// One group, one idle round slice, the stop, taking the next rounds (sorted outside the lock,
    /// then installed at the next step), or the decision to sleep. Holds the work lock.
    private func step(_ processed: inout Int) -> Step {
        self.installPreparedRounds()
        while self.batch.count < self.configuration.maximumBatch, let item = self.queue.pop() {
            self.batch.append(item)
        }
        if self.batch.isEmpty {
            if self.stopping.load(ordering: .sequentiallyConsistent) && self.queue.claimed == processed {
                self.finishAtStop(processed: processed)
                return .stopped
            }
            // Idle: write a slice of the calls-since-assigned and counter rounds once their pace has
            // made a whole one due (or the rest of the round) before sleeping; the sleep's timeout
            // brings the writer back for the rest. Not a transaction per row that comes due.
            if self.startRoundsIfDue() { return .prepareRounds }
            let now = DispatchTime.now().uptimeNanoseconds
            if Self.idleSliceDue(self.dueCallsRows(now: now), left: self.callsRound.count - self.callsWritten)
                || Self.idleSliceDue(self.dueFoldRows(now: now), left: self.folding.count - self.foldedUpTo)
                || self.journal?.pending.isEmpty == false,
                !self.failed.load(ordering: .acquiring)
            {
                do {
                    try self.commit([], slices: true)
                } catch {
                    try? self.database.execute("ROLLBACK")
                    // Journaled calls that cannot be copied into the database (without the slices
                    // either): the store cannot write, as after a failed group (the records stay in
                    // the file for the next open).
                    if self.journal?.pending.isEmpty == false {
                        do {
                            try self.commit([], slices: false)
                        } catch {
                            try? self.database.execute("ROLLBACK")
                            self.fail(error)
                        }
                        return .again
                    }
                    // Not again at once: a slice that cannot be written (the disk is full) waits.
                    return .sleep
                }
                return .again
            }
            self.sleeping.store(true, ordering: .sequentiallyConsistent)
            atomicMemoryFence(ordering: .sequentiallyConsistent)
            guard let item = self.queue.pop() else { return .sleep }
            self.sleeping.store(false, ordering: .relaxed)
            // Committed in this step: the batch is empty whenever the work lock is free (an event loop
            // must never find a change it did not choose in it), except after a journal append failed
            // (`journalCalls`): then it holds those calls for this writer and inline commits wait.
            self.batch.append(item)
            while self.batch.count < self.configuration.maximumBatch, let item = self.queue.pop() {
                self.batch.append(item)
            }
        }
        let groupSize = self.batch.count
        self.processBatch(inline: false, &processed)
        if self.failed.load(ordering: .relaxed) { return .again }
        // After the group (a change in it may need the counters folded: `foldAll` never runs while a
        // round is being prepared).
        if self.startRoundsIfDue() { return .prepareRounds }
        return .gather(groupSize: groupSize)
    }

    /// Commits `batch` (or fails its tickets after a failure) and empties it: on the writer thread
    /// with the next slices of the rounds, or `inline` (``commitIfIdle(through:)``) without them.
    /// Holds the work lock.
    private func processBatch(inline: Bool, begun: Bool = false, _ processed: inout Int) {
        let end = self.batch.last!.0 + 1
        defer {
            processed = end
            self.batch.removeAll(keepingCapacity: true)
        }
        if self.failed.load(ordering: .acquiring) {
            // After a failure nothing more is written; queued changes fail.
            self.complete(upTo: end, failure: self.currentFailure())
            return
        }
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            try self.commit(self.batch, slices: !inline, begun: begun)
            let elapsed = DispatchTime.now().uptimeNanoseconds - started
            let observer = self.shared.withLock { shared in
                shared.stats.recordBatch(size: self.batch.count, nanoseconds: elapsed, inline: inline)
                return shared.batchObserver
            }
            observer?(self.batch.count, elapsed, inline)
            self.complete(upTo: end, failure: nil)
        } catch {
            try? self.database.execute("ROLLBACK")
            self.fail(error)
        }
    }

    /// The store cannot write: every waiting and later change fails, and nothing more is written.
    private func fail(_ error: any Error) {
        let failure = CallgateError(
            .unavailable,
            "the store cannot write (\(error)); changes are refused until it is restarted"
        )
        self.shared.withLock { $0.failure = failure }
        self.failed.store(true, ordering: .releasing)
        self.complete(upTo: 0, failure: failure)
    }

    /// At stop, once every claimed change is handled: the rounds in progress, then the rest of the
    /// counter log, so that a clean stop leaves the log empty. Holds the work lock.
    private func finishAtStop(processed: Int) {
        self.foldPaced = false
        self.callsPaced = false
        // Whatever waits, now: the round in progress first, then a round of the rest.
        while !self.failed.load(ordering: .acquiring) {
            if self.callsWritten == self.callsRound.count {
                guard !self.pendingCalls.isEmpty else { break }
                self.startCallsRound(now: DispatchTime.now().uptimeNanoseconds)
                self.callsPaced = false
                self.prepareRounds()
                self.installPreparedRounds()
            }
            do {
                try self.commit([], slices: true)
            } catch {
                try? self.database.execute("ROLLBACK")
                break
            }
        }
        // A clean stop leaves the log empty (the next start has nothing to fold).
        if !self.failed.load(ordering: .acquiring) {
            do {
                let s = self.statements!
                try s.begin.run()
                try self.absorbJournal(s)
                try self.foldAll(s)
                try s.commit.run()
                self.journalAbsorbed()
                self.publishFolded(through: processed)
            } catch {
                try? self.database.execute("ROLLBACK")
            }
        }
        // Whoever still waits for a fold (only after a failed one) hears why.
        var ready: [WaiterHeap.Callback] = []
        self.shared.withLock { $0.foldWaiters.popAll(into: &ready) }
        for callback in ready {
            callback(CallgateError(.unavailable, "the store stopped before the counters were folded"))
        }
    }

    // MARK: - Committing on the caller's thread

    /// Commits the changes waiting, up to and including the ticket's, on the calling thread, if the
    /// writer is idle and only a few wait (``StoreConfiguration/inlineCommitChanges``); returns whether
    /// the ticket's change is committed when it returns (`false` also when the commit failed: the
    /// caller then waits with ``whenCommitted(_:_:)``, which reports the failure).
    ///
    /// For a lightly loaded server: an event loop holding replies for a commit would otherwise wake the
    /// writer thread and be woken back by it, two thread hand-offs that cost more than the commit
    /// itself on a small machine. Under load the writer is busy (it holds the work lock while it
    /// commits) or many changes wait, and this returns `false` at once: the writer commits them in a
    /// group. No round slices are written here (the writer writes them while idle), so the call costs
    /// one `write` to the counter journal (``CounterJournal``) or, without it, one small transaction.
    /// Never waits for the lock.
    public func commitIfIdle(through ticket: ChangeTicket) -> Bool {
        let position = Int(ticket.sequence)
        let limit = self.inlineCommitChanges
        guard limit > 0, position - self.committedPosition.load(ordering: .acquiring) < limit,
            !self.stopping.load(ordering: .relaxed), !self.failed.load(ordering: .relaxed)
        else { return false }
        let settled: Bool? = self.work.withLockIfAvailable { processed in
            // Not past the WAL's checkpoint threshold: that checkpoint (fsyncs, copying pages) is the
            // writer's to run (`walHook`).
            guard !self.stopping.load(ordering: .acquiring), !self.failed.load(ordering: .acquiring),
                self.batch.isEmpty, self.walFrames < self.walCheckpointFrames
            else { return false }
            // Counted calls only (a counter log entry each): a large change (an import, a usage tally)
            // is the writer's to commit, never an event loop's.
            guard self.queue.headIs({ $0.event.isCounter }) else {
                return position < self.committedPosition.load(ordering: .acquiring)
            }
            if let journal = self.journal, journal.isUsable {
                return self.journalCalls(through: position, limit: limit, journal, &processed)
            }
            // Never wait for another connection's write lock (a key change) on an event loop: the
            // writer will wait for it instead. Nothing is taken from the queue before BEGIN succeeds.
            sqlite3_busy_timeout(self.database.handle, 0)
            let begun = (try? self.statements.begin.run()) != nil
            sqlite3_busy_timeout(self.database.handle, SQLiteDatabase.busyTimeoutMilliseconds)
            guard begun else { return false }
            while self.batch.count < limit, let item = self.queue.pop(if: { $0.event.isCounter }) {
                self.batch.append(item)
            }
            self.committingInline = true
            self.processBatch(inline: true, begun: true, &processed)
            self.committingInline = false
            // Not after a failure: the caller then registers and hears it (its replies must not go).
            return position < self.committedPosition.load(ordering: .acquiring)
        }
        return settled ?? false
    }

    /// ``commitIfIdle(through:)`` with the counter journal: the counted calls at the head of the queue
    /// (at most `limit`) as one record, committed with one `write`; the writer copies them into the
    /// counter log with its next transaction. If the file cannot take them they stay in the batch for
    /// the writer to commit (woken here), and later inline commits go through SQLite.
    private func journalCalls(
        through position: Int,
        limit: Int,
        _ journal: CounterJournal,
        _ processed: inout Int
    ) -> Bool {
        while self.batch.count < limit, let item = self.queue.pop(if: { $0.event.isCounter }) {
            self.batch.append(item)
        }
        guard let end = self.batch.last.map({ $0.0 + 1 }) else { return false }
        let started = DispatchTime.now().uptimeNanoseconds
        self.logBytes.removeAll(keepingCapacity: true)
        for (_, record) in self.batch {
            if case .counter(let number, let dayKey, let count) = record.event {
                let key = CounterKey(organization: record.organization, number: number, dayKey: dayKey)
                Self.appendLogEntry(key, count, to: &self.logBytes)
            }
        }
        guard journal.append(id: self.lastLogID + 1, entries: self.logBytes) else {
            self.wake.signal()
            return false
        }
        self.lastLogID += 1
        for (_, record) in self.batch {
            if case .counter(let number, let dayKey, let count) = record.event {
                self.noteLogged(record.organization, number, dayKey, count)
            }
        }
        self.appliedPosition = end
        processed = end
        let size = self.batch.count
        self.batch.removeAll(keepingCapacity: true)
        let elapsed = DispatchTime.now().uptimeNanoseconds - started
        let observer = self.shared.withLock { shared in
            shared.stats.recordBatch(size: size, nanoseconds: elapsed, inline: true)
            return shared.batchObserver
        }
        observer?(size, elapsed, true)
        self.complete(upTo: end, failure: nil)
        return position < self.committedPosition.load(ordering: .acquiring)
    }

    /// Copies the journal's pending records into the counter log (each as the row it named) and marks
    /// them absorbed, in the open transaction; ``journalAbsorbed()`` empties the file once it commits.
    private func absorbJournal(_ s: WriterStatements) throws {
        self.absorbingJournal = false
        guard let journal = self.journal, !journal.pending.isEmpty else { return }
        var through: Int64 = 0
        try CounterJournal.forEachRecord(in: journal.pending, salt: journal.salt) { id, entries in
            s.insertLog.bind(1, id)
            s.insertLog.bind(2, Array(entries))
            try s.insertLog.run()
            through = id
        }
        s.markJournal.bind(1, through)
        try s.markJournal.run()
        self.absorbingJournal = true
    }

    /// After the commit of a transaction that ran ``absorbJournal(_:)``.
    private func journalAbsorbed() {
        guard self.absorbingJournal else { return }
        self.absorbingJournal = false
        self.journal?.absorbed()
    }

    /// A logged counter (a counted call, or a reset to 0) in the writer's maps: the round to fold, and
    /// the calls to add to the assignment.
    private func noteLogged(_ organization: OrganizationID, _ number: PhoneNumber, _ dayKey: Int64, _ count: UInt32) {
        self.unfolded[CounterKey(organization: organization, number: number, dayKey: dayKey)] = count
        // A counted call raises the count; a reset (count 0) is not a call.
        if count > 0 {
            self.pendingCalls[NumberKey(organization: organization, number: number), default: 0] += 1
        }
    }

    /// `async` durability: after a group smaller than a quarter of the largest, lets the next changes
    /// gather for ``StoreConfiguration/asyncGatherMicroseconds`` (unless a caller waits for a commit:
    /// ``whenCommitted(_:_:)`` wakes the writer) instead of committing again at once, so that a busy
    /// server commits one group per interval, not one per change.
    private func gatherIfAsync(after groupSize: Int) {
        guard self.configuration.durability == .async, self.configuration.asyncGatherMicroseconds > 0,
            groupSize < self.configuration.maximumBatch / 4, !self.stopping.load(ordering: .relaxed)
        else { return }
        self.gathering.store(true, ordering: .sequentiallyConsistent)
        // A waiter that registered before the flag was set is not missed: check after setting it.
        let waited = self.shared.withLock { !$0.waiters.isEmpty }
        if !waited {
            _ = self.wake.wait(timeout: .now() + .microseconds(self.configuration.asyncGatherMicroseconds))
        }
        self.gathering.store(false, ordering: .relaxed)
    }

    /// Publishes the committed position (or the failure) and runs the callbacks it settles.
    private func complete(upTo position: Int, failure: CallgateError?) {
        var ready: [WaiterHeap.Callback] = []
        self.shared.withLock { shared in
            if let failure {
                shared.failure = failure
                shared.waiters.popAll(into: &ready)
                shared.foldWaiters.popAll(into: &ready)
            } else {
                self.committedPosition.store(position, ordering: .releasing)
                shared.waiters.popAll(below: position, into: &ready)
            }
        }
        for callback in ready { callback(failure) }
    }

    /// Applies one group in one transaction, with the next slices of the counter and calls rounds.
    private func commit(_ batch: [(Int, ChangeRecord)], slices: Bool, begun: Bool = false) throws {
        let s = self.statements!
        if !begun { try s.begin.run() }
        self.foldedInTransaction = 0
        // Calls an event loop journaled come before this group's changes.
        try self.absorbJournal(s)
        // The group's counters, as one log row (a number counted twice in the group is logged twice;
        // the later entry wins when the log is read back).
        self.logBytes.removeAll(keepingCapacity: true)
        func flushCounters() throws {
            guard !self.logBytes.isEmpty else { return }
            self.lastLogID += 1
            s.insertLog.bind(1, self.lastLogID)
            s.insertLog.bind(2, self.logBytes)
            try s.insertLog.run()
            self.logBytes.removeAll(keepingCapacity: true)
        }
        // Every counter of the changes below this position is folded once this transaction commits.
        var foldedThrough: Int?
        for (position, record) in batch {
            if case .counter(let number, let dayKey, let count) = record.event {
                let key = CounterKey(organization: record.organization, number: number, dayKey: dayKey)
                Self.appendLogEntry(key, count, to: &self.logBytes)
                self.noteLogged(record.organization, number, dayKey, count)
                continue
            }
            // Keep the order of everything else relative to counters.
            try flushCounters()
            // What writes counter rows itself comes after every logged counter.
            if Self.needsFoldedCounters(record.event) {
                try self.foldAll(s)
                foldedThrough = position + 1
            }
            // A report or a retention pass waits for the next round(s), which start at once.
            if case .countersVisible = record.event {
                self.foldSoon = true
                self.foldPaced = false
            }
            // Retention deletes these rows: a fold must not write them back afterwards.
            if case .retentionPruned(let prune) = record.event {
                self.dropCounters(of: record.organization, before: prune.beforeDay)
            }
            // An assignment row written or removed from an absolute value absorbs the deltas before it.
            switch record.event {
            case .assigned(let a), .released(let a, _):
                self.dropCalls(NumberKey(organization: record.organization, number: a.number))
            case .numbersDeleted(let numbers):
                for n in numbers { self.dropCalls(NumberKey(organization: record.organization, number: n.number)) }
            case .bulk(let b):
                for number in b.released.map(\.number) + b.assigned.map(\.number) + b.deleted.map(\.number) {
                    self.dropCalls(NumberKey(organization: record.organization, number: number))
                }
            default:
                break
            }
            try self.apply(record, s)
        }
        try flushCounters()
        if let last = batch.last { self.appliedPosition = last.0 + 1 }
        // At most a slice of each round per group, so that writing them never stalls a group for long,
        // and no more than their pace asks for.
        let rows = slices ? Self.rowsPerGroup(batch.count) : 0
        let now = rows > 0 ? DispatchTime.now().uptimeNanoseconds : 0
        let roundWasOpen = self.foldedUpTo < self.folding.count
        let foldEnd = try self.foldSlice(s, rows: min(rows, self.dueFoldRows(now: now)))
        let callsEnd = min(self.callsRound.count, self.callsWritten + min(rows, self.dueCallsRows(now: now)))
        for i in self.callsWritten..<callsEnd where self.callsRound[i].calls != 0 {
            s.addCalls.bind(1, self.callsRound[i].calls)
            s.addCalls.bind(2, Int64(self.callsRound[i].key.organization.rawValue))
            s.addCalls.bind(3, Int64(self.callsRound[i].key.number.digits))
            try s.addCalls.run()
        }
        try s.commit.run()
        self.journalAbsorbed()
        if self.foldedInTransaction > self.largestFold {
            self.largestFold = self.foldedInTransaction
            self.shared.withLock { $0.stats.largestFold = self.largestFold }
        }
        // Only once the transaction holding them is committed are the slices written.
        self.foldedUpTo = foldEnd
        self.callsWritten = callsEnd
        if self.foldedUpTo == self.folding.count, !self.foldPreparing {
            // Nothing waits to be folded: everything applied is. Else a round just ended: what it covers.
            if self.unfolded.isEmpty {
                foldedThrough = self.appliedPosition
                // Nothing is left to fold: a report that asked for a round has its answer.
                self.foldSoon = false
            } else if roundWasOpen {
                foldedThrough = max(foldedThrough ?? 0, self.roundCovers)
            }
        }
        if let foldedThrough { self.publishFolded(through: foldedThrough) }
    }

    /// Publishes that the counters of every change below `position` are in `counters` and calls the
    /// ``whenCountersFolded(_:_:)`` callbacks it settles.
    private func publishFolded(through position: Int) {
        guard position > self.foldedPosition.load(ordering: .relaxed) else { return }
        self.foldedPosition.store(position, ordering: .releasing)
        var ready: [WaiterHeap.Callback] = []
        self.shared.withLock { $0.foldWaiters.popAll(below: position, into: &ready) }
        for callback in ready { callback(nil) }
    }

    /// Forgets the logged counters of an organization's days before `day` (`2025-10-18`), which a
    /// retention pass is deleting. (Their log rows stay until a round covers them; after a crash the
    /// replay writes them back, and the next pass deletes them again.)
    private func dropCounters(of organization: OrganizationID, before day: String) {
        func isOld(_ key: CounterKey) -> Bool {
            key.organization == organization && self.dayName(organization, key.dayKey) < day
        }
        if self.unfolded.keys.contains(where: isOld) {
            self.unfolded = self.unfolded.filter { !isOld($0.key) }
        }
        if self.folding[self.foldedUpTo...].contains(where: { isOld($0.key) }) {
            self.folding =
                Array(self.folding[..<self.foldedUpTo]) + self.folding[self.foldedUpTo...].filter { !isOld($0.key) }
        }
    }

    /// Forgets the calls not yet written for a number whose assignment row is written (or removed)
    /// from an absolute value: that value includes them.
    private func dropCalls(_ key: NumberKey) {
        self.pendingCalls[key] = nil
        // The round is in key order: find the key by bisection among the entries not yet written.
        var low = self.callsWritten
        var high = self.callsRound.count
        while low < high {
            let middle = (low + high) / 2
            if self.callsRound[middle].key < key { low = middle + 1 } else { high = middle }
        }
        if low < self.callsRound.count, self.callsRound[low].key == key { self.callsRound[low].calls = 0 }
    }

    /// Every `counterFoldSeconds` (or once many wait), the counters logged and the calls-since-assigned
    /// deltas counted so far each become a round to write, once the previous round of its kind is
    /// written; what comes meanwhile waits for the next round, so a busy writer writes each number once
    /// per round instead of every group.
    ///
    /// - Returns: whether a round was taken, to be prepared outside the work lock (`prepareRounds`).
    private func startRoundsIfDue() -> Bool {
        let countersWait =
            !self.foldPreparing && self.foldedUpTo == self.folding.count && !self.unfolded.isEmpty
        let callsWait =
            !self.callsPreparing && self.callsWritten == self.callsRound.count && !self.pendingCalls.isEmpty
        guard countersWait || callsWait else { return false }
        let now = DispatchTime.now().uptimeNanoseconds
        if countersWait,
            self.foldSoon || now &- self.foldStartedAt >= self.roundInterval
                || self.unfolded.count >= Self.foldEarlyCount
        {
            self.startFoldRound(now: now)
        }
        if callsWait,
            now &- self.callsWrittenAt >= self.roundInterval || self.pendingCalls.count >= Self.foldEarlyCount
        {
            self.startCallsRound(now: now)
        }
        return self.foldSnapshot != nil || self.callsSnapshot != nil
    }

    /// Puts the rounds taken in key order (neighbouring rows share B-tree pages, so a slice touches
    /// fewer of them). On the writer thread, without the work lock.
    private func prepareRounds() {
        if let snapshot = self.foldSnapshot {
            var round: [(key: CounterKey, count: UInt32)] = []
            round.reserveCapacity(snapshot.count)
            for (key, count) in snapshot { round.append((key, count)) }
            round.sort { $0.key < $1.key }
            self.preparedFold = round
            self.foldSnapshot = nil
        }
        if let snapshot = self.callsSnapshot {
            var round: [(key: NumberKey, calls: Int64)] = []
            round.reserveCapacity(snapshot.count)
            for (key, calls) in snapshot { round.append((key, calls)) }
            round.sort { $0.key < $1.key }
            self.preparedCalls = round
            self.callsSnapshot = nil
        }
    }

    /// Makes the prepared rounds the ones written from now on. Holds the work lock.
    private func installPreparedRounds() {
        if let round = self.preparedFold {
            self.folding = round
            self.foldedUpTo = 0
            self.preparedFold = nil
            self.foldPreparing = false
        }
        if let round = self.preparedCalls {
            self.callsRound = round
            self.callsWritten = 0
            self.preparedCalls = nil
            self.callsPreparing = false
        }
    }

    /// Takes the calls counted so far as the next round (see `prepareRounds`). Holds the work lock.
    private func startCallsRound(now: UInt64) {
        self.callsPaced = self.pendingCalls.count < Self.foldEarlyCount
        self.callsSnapshot = self.pendingCalls
        self.pendingCalls = Dictionary(minimumCapacity: self.pendingCalls.count)
        self.callsPreparing = true
        self.callsWrittenAt = now
    }

    /// Rows of a round due: a paced round is spread evenly over `window` nanoseconds from its start
    /// (half the interval: a round over 50,000 numbers every 5 s is then 40,000 rows a second, not a
    /// burst of the writer at full speed that would delay the calls committed meanwhile and take a core
    /// from the event loops); past that, or unpaced, all of what is left.
    static func dueRows(total: Int, done: Int, elapsed: UInt64, window: UInt64, paced: Bool) -> Int {
        let left = total - done
        guard paced, left > 0, window > 0, elapsed < window else { return max(0, left) }
        let target = Int(UInt64(total).multipliedReportingOverflow(by: elapsed).partialValue / window)
        return max(0, target - done)
    }

    /// Whether an idle step should write: a whole idle slice is due, or all that is left of the round.
    static func idleSliceDue(_ due: Int, left: Int) -> Bool {
        due > 0 && due >= min(left, Self.rowsPerGroup(0))
    }

    /// `dueRows` of the fold round and of the calls round, whose window is half the interval.
    private func dueFoldRows(now: UInt64) -> Int {
        let elapsed = now &- self.foldStartedAt
        return Self.dueRows(
            total: self.folding.count,
            done: self.foldedUpTo,
            elapsed: elapsed,
            window: self.roundInterval / 2,
            paced: self.foldPaced
        )
    }

    private func dueCallsRows(now: UInt64) -> Int {
        let elapsed = now &- self.callsWrittenAt
        return Self.dueRows(
            total: self.callsRound.count,
            done: self.callsWritten,
            elapsed: elapsed,
            window: self.roundInterval / 2,
            paced: self.callsPaced
        )
    }

    // MARK: - The counter log

    /// Takes the counters logged so far as the next round (see `prepareRounds`): the log rows up to
    /// now and the changes applied so far are what it covers. Holds the work lock.
    private func startFoldRound(now: UInt64) {
        self.foldingThrough = self.lastLogID
        self.roundCovers = self.appliedPosition
        self.foldPaced = !self.foldSoon && self.unfolded.count < Self.foldEarlyCount
        self.foldSoon = false
        self.foldSnapshot = self.unfolded
        self.unfolded = Dictionary(minimumCapacity: self.unfolded.count)
        self.foldPreparing = true
        self.foldStartedAt = now
    }

    /// Writes the next slice of the round; with the last one, deletes the log rows the round covers.
    /// A counter logged after the round started may be overwritten here with its older count: it is
    /// in a later log row and the next round, which write the newer one.
    ///
    /// - Returns: where the round stands once this transaction commits.
    private func foldSlice(_ s: WriterStatements, rows: Int) throws -> Int {
        guard self.foldedUpTo < self.folding.count else { return self.foldedUpTo }
        let end = min(self.folding.count, self.foldedUpTo + rows)
        for i in self.foldedUpTo..<end { try self.writeCounter(self.folding[i].key, self.folding[i].count, s) }
        if end == self.folding.count {
            s.deleteLog.bind(1, self.foldingThrough)
            try s.deleteLog.run()
        }
        return end
    }

    /// Writes every logged counter to `counters` and empties the log, in the open transaction.
    private func foldAll(_ s: WriterStatements) throws {
        for i in self.foldedUpTo..<self.folding.count {
            // Newer counts of the same counters are written just after.
            guard self.unfolded[self.folding[i].key] == nil else { continue }
            try self.writeCounter(self.folding[i].key, self.folding[i].count, s)
        }
        for (key, count) in self.unfolded.sorted(by: { $0.key < $1.key }) { try self.writeCounter(key, count, s) }
        s.deleteLog.bind(1, self.lastLogID)
        try s.deleteLog.run()
        self.folding.removeAll(keepingCapacity: true)
        self.foldedUpTo = 0
        self.unfolded.removeAll(keepingCapacity: true)
    }

    private func writeCounter(_ key: CounterKey, _ count: UInt32, _ s: WriterStatements) throws {
        self.foldedInTransaction += 1
        s.upsertCounter.bind(1, Int64(key.organization.rawValue))
        s.upsertCounter.bind(2, Int64(key.number.digits))
        s.upsertCounter.bind(3, key.dayKey)
        s.upsertCounter.bind(4, self.dayName(key.organization, key.dayKey))
        s.upsertCounter.bind(5, Int64(count))
        try s.upsertCounter.run()
    }

    /// Changes that write or delete `counters` rows themselves, or need them current.
    private static func needsFoldedCounters(_ event: ChangeEvent) -> Bool {
        switch event {
        case .countersReset, .numbersDeleted: return true
        case .bulk(let b): return !b.deleted.isEmpty
        default: return false
        }
    }

    private static func appendLogEntry(_ key: CounterKey, _ count: UInt32, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: key.organization.rawValue.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: key.number.digits.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: key.dayKey.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: count.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// Folds what the log holds after a crash (a clean stop leaves it empty), before the engine loads
    /// the counters. Runs on the opening thread, before ``start()``, after every organization is
    /// registered.
    ///
    /// - Throws: ``StoreError/corrupt(_:)`` for a log row that is not whole entries or names an
    ///   impossible number; SQLite errors.
    func foldLogAtOpen() throws {
        let s = self.statements!
        let absorbed = try self.database.scalar("SELECT absorbed_through FROM counter_journal WHERE id = 1") ?? 0
        let salt = UInt64(bitPattern: try self.database.scalar("SELECT salt FROM counter_journal WHERE id = 1") ?? 0)
        let lastRow = try self.database.scalar("SELECT COALESCE(MAX(id), 0) FROM counter_log") ?? 0
        // Ids go on above every id in the log and the mark (and, below, the journal's records).
        self.lastLogID = max(lastRow, absorbed)
        let rows = try self.database.prepare("SELECT id, entries FROM counter_log ORDER BY id")
        defer { rows.reset() }
        while try rows.step() {
            try self.loadLogEntries(rows.blob(1)[...], of: "counter_log row \(rows.int64(0))")
        }
        // Then what the journal holds above the mark (calls journaled after the last transaction that
        // copied the journal into the log). The file is read even when this start does not journal.
        var journal = self.journal
        if journal == nil, let path = CounterJournal.path(databasePath: self.configuration.path),
            FileManager.default.fileExists(atPath: path)
        {
            // Calls acknowledged by an earlier start may be in it: not readable, no open.
            journal = try CounterJournal(databasePath: self.configuration.path)
        }
        var journaled: Int64 = 0
        if let journal {
            try CounterJournal.forEachRecord(in: journal.contents(), salt: salt) { id, entries in
                guard id > self.lastLogID else { return }
                try self.loadLogEntries(entries, of: "counter journal record \(id)")
                journaled = id
            }
        }
        self.lastLogID = max(self.lastLogID, journaled)
        // This start's records get a salt of their own: what an earlier start left is never read again.
        let newSalt = UInt64.random(in: 1...UInt64(Int64.max))
        // Synced (once per start): this start's records must never outlive the salt that reads them.
        try self.database.execute("PRAGMA synchronous = FULL")
        defer {
            try? self.database.execute(
                "PRAGMA synchronous = \(self.configuration.synchronous == .full ? "FULL" : "NORMAL")"
            )
        }
        try s.begin.run()
        do {
            if !self.unfolded.isEmpty { try self.foldAll(s) }
            try self.database.execute(
                "UPDATE counter_journal SET absorbed_through = \(self.lastLogID), salt = \(newSalt) WHERE id = 1"
            )
            try s.commit.run()
        } catch {
            try? self.database.execute("ROLLBACK")
            throw error
        }
        self.journal?.salt = newSalt
        journal?.absorbed()
    }

    /// Puts the entries of a log row or journal record in `unfolded` (the later of two wins).
    private func loadLogEntries(_ bytes: ArraySlice<UInt8>, of what: @autoclosure () -> String) throws {
        guard bytes.count % Self.logEntryBytes == 0 else {
            throw StoreError.corrupt("\(what()) has \(bytes.count) bytes, not whole entries")
        }
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            func load(_ at: Int, _ size: Int) -> UInt64 {
                var value: UInt64 = 0
                for i in (0..<size).reversed() { value = value << 8 | UInt64(bytes[offset + at + i]) }
                return value
            }
            guard let number = PhoneNumber(digits: load(4, 8)) else {
                throw StoreError.corrupt("\(what()) names an impossible number")
            }
            let key = CounterKey(
                organization: OrganizationID(UInt32(load(0, 4))),
                number: number,
                dayKey: Int64(bitPattern: load(12, 8))
            )
            self.unfolded[key] = UInt32(load(20, 4))
            offset += Self.logEntryBytes
        }
    }

    private struct NumberKey: Hashable, Comparable {
        var organization: OrganizationID
        var number: PhoneNumber

        // One word hashed instead of each field (the writer hashes a key or two per counted call).
        func hash(into hasher: inout Hasher) {
            hasher.combine(self.number.digits ^ UInt64(self.organization.rawValue) << 50)
        }

        static func < (a: NumberKey, b: NumberKey) -> Bool {
            (a.organization.rawValue, a.number.digits) < (b.organization.rawValue, b.number.digits)
        }
    }

    private struct CounterKey: Hashable, Comparable {
        var organization: OrganizationID
        var number: PhoneNumber
        var dayKey: Int64

        func hash(into hasher: inout Hasher) {
            hasher.combine(
                self.number.digits ^ UInt64(self.organization.rawValue) << 50 ^ UInt64(bitPattern: self.dayKey) << 17
            )
        }

        static func < (a: CounterKey, b: CounterKey) -> Bool {
            (a.organization.rawValue, a.number.digits, a.dayKey) < (b.organization.rawValue, b.number.digits, b.dayKey)
        }
    }

    private func dayName(_ organization: OrganizationID, _ dayKey: Int64) -> String {
        if let name = self.dayNames[dayKey &* 65_537 &+ Int64(organization.rawValue)] { return name }
        let name =
            self.zones[organization]?.localDate(endingAt: dayKey)
            ?? Timestamp(seconds: dayKey - 1).iso8601.prefix(10).description
        if self.dayNames.count > 10_000 { self.dayNames.removeAll() }
        self.dayNames[dayKey &* 65_537 &+ Int64(organization.rawValue)] = name
        return name
    }

    /// - Parameter actionOverride: the audit action of a part of a bulk change (the bulk's own).
    private func apply(_ record: ChangeRecord, _ s: WriterStatements, actionOverride: String? = nil) throws {
        let org = Int64(record.organization.rawValue)
        let at = record.at.milliseconds
        let actor = record.actor?.id ?? "system"
        func audit(_ action: String, number: PhoneNumber?, agent: String?, before: String?, after: String?) throws {
            s.insertAudit.bindAll([
                .int(org), .int(at), .text(actor), .text(action),
                number.map { .int(Int64($0.digits)) } ?? .null, agent.map { .text($0) } ?? .null,
                before.map { .text($0) } ?? .null, after.map { .text($0) } ?? .null,
            ])
            try s.insertAudit.run()
        }
        let action = actionOverride ?? record.event.action ?? "?"
        switch record.event {
        case .counter, .countersVisible:
            break
        case .usageTallied, .retentionPruned:
            try self.usage.apply(record)
        case .organizationCreated(let o):
            s.insertOrganization.bindAll([
                .int(Int64(o.id.rawValue)), .text(o.name), .text(o.timeZone), .int(o.createdAt.milliseconds),
            ])
            try s.insertOrganization.run()
            self.register(o.id, timeZone: o.timeZone)
            try audit(action, number: nil, agent: nil, before: nil, after: AuditJSON.organization(o))
        case .numberAdded(let n):
            try self.upsertNumber(org, n, s)
            try audit(action, number: n.number, agent: nil, before: nil, after: AuditJSON.number(n))
        case .numberUpdated(let before, let after):
            try self.upsertNumber(org, after, s)
            try audit(
                action,
                number: after.number,
                agent: nil,
                before: AuditJSON.number(before),
                after: AuditJSON.number(after)
            )
        case .numbersDeleted(let records):
            for n in records {
                for statement in [s.deleteNumber, s.deleteCounters, s.deleteReservation] {
                    statement.bindAll([.int(org), .int(Int64(n.number.digits))])
                    try statement.run()
                }
                try audit(action, number: n.number, agent: nil, before: AuditJSON.number(n), after: nil)
            }
        case .numbersImported(let added, let updated):
            // The whole import in this transaction: a row and an audit entry per number, and one entry
            // for the import itself.
            for n in added {
                try self.upsertNumber(org, n, s)
                try audit(action, number: n.number, agent: nil, before: nil, after: AuditJSON.number(n))
            }
            for (before, after) in updated {
                try self.upsertNumber(org, after, s)
                try audit(
                    action,
                    number: after.number,
                    agent: nil,
                    before: AuditJSON.number(before),
                    after: AuditJSON.number(after)
                )
            }
            try audit(
                action,
                number: nil,
                agent: nil,
                before: nil,
                after: AuditJSON.numbersImported(added: added.count, updated: updated.count)
            )
        case .agentUpserted(let before, let after):
            s.upsertAgent.bindAll([
                .int(org), .text(after.id), .text(after.displayName), .text(after.principal),
                .int(after.active ? 1 : 0),
                .int(after.createdAt.milliseconds), .int(after.modifiedAt.milliseconds),
            ])
            try s.upsertAgent.run()
            try audit(
                action,
                number: nil,
                agent: after.id,
                before: before.map(AuditJSON.agent),
                after: AuditJSON.agent(after)
            )
        case .reserved(let number, let r):
            s.upsertReservation.bindAll([
                .int(org), .int(Int64(number.digits)), .int(Int64(bitPattern: r.id)), .int(r.expiresAt.milliseconds),
                r.agent.map { .text($0) } ?? .null, .text(r.reservedBy.id),
            ])
            try s.upsertReservation.run()
            try audit(action, number: number, agent: r.agent, before: nil, after: AuditJSON.reservation(r))
        case .reservationCancelled(let number, let r):
            s.deleteReservation.bindAll([.int(org), .int(Int64(number.digits))])
            try s.deleteReservation.run()
            try audit(action, number: number, agent: r.agent, before: AuditJSON.reservation(r), after: nil)
        case .assigned(let a):
            s.deleteReservation.bindAll([.int(org), .int(Int64(a.number.digits))])
            try s.deleteReservation.run()
            s.upsertAssignment.bindAll([
                .int(org), .int(Int64(a.number.digits)), .text(a.agent), .int(Int64(a.dailyLimit)),
                .text(a.allowedCountries.codes.joined(separator: ",")), .int(a.assignedAt.milliseconds),
                .text(a.assignedBy.id),
                .int(Int64(a.callsSinceAssigned)),
            ])
            try s.upsertAssignment.run()
            try audit(action, number: a.number, agent: a.agent, before: nil, after: AuditJSON.assignment(a))
        case .assignmentUpdated(let before, let after):
            s.updateAssignment.bindAll([
                .int(Int64(after.dailyLimit)), .text(after.allowedCountries.codes.joined(separator: ",")),
                .int(org), .int(Int64(after.number.digits)),
            ])
            try s.updateAssignment.run()
            try audit(
                action,
                number: after.number,
                agent: after.agent,
                before: AuditJSON.assignment(before),
                after: AuditJSON.assignment(after)
            )
        case .released(let a, let releasedAt):
            s.deleteAssignment.bindAll([.int(org), .int(Int64(a.number.digits))])
            try s.deleteAssignment.run()
            s.insertHistory.bindAll([
                .int(org), .int(Int64(a.number.digits)), .text(a.agent), .int(a.assignedAt.milliseconds),
                .int(releasedAt.milliseconds), .int(Int64(a.callsSinceAssigned)),
            ])
            try s.insertHistory.run()
            s.setReleasedAt.bindAll([.int(releasedAt.milliseconds), .int(org), .int(Int64(a.number.digits))])
            try s.setReleasedAt.run()
            try audit(action, number: a.number, agent: a.agent, before: AuditJSON.assignment(a), after: nil)
        case .countersReset(let numbers, let dayKey):
            for number in numbers {
                s.upsertCounter.bindAll([
                    .int(org), .int(Int64(number.digits)), .int(dayKey),
                    .text(self.dayName(record.organization, dayKey)), .int(0),
                ])
                try s.upsertCounter.run()
            }
            try audit(
                action,
                number: numbers.count == 1 ? numbers[0] : nil,
                agent: nil,
                before: nil,
                after: AuditJSON.countersReset(numbers: numbers.count, day: self.dayName(record.organization, dayKey))
            )
        case .bulk(let b):
            // Each part as the single change it stands for (same rows, an audit entry per number under the
            // bulk's action), in the order that lets one change release and re-assign or delete a number.
            func part(_ event: ChangeEvent) throws {
                try self.apply(
                    ChangeRecord(organization: record.organization, at: record.at, actor: record.actor, event: event),
                    s,
                    actionOverride: action
                )
            }
            for a in b.released { try part(.released(a, releasedAt: record.at)) }
            for (before, after) in b.updated { try part(.numberUpdated(before: before, after: after)) }
            for n in b.added { try part(.numberAdded(n)) }
            if !b.deleted.isEmpty { try part(.numbersDeleted(b.deleted)) }
            for a in b.assigned { try part(.assigned(a)) }
            try audit(action, number: nil, agent: nil, before: nil, after: AuditJSON.bulk(b))
        case .poolThresholdSet(let pool, let before, let after):
            if let after {
                s.upsertThreshold.bindAll([.int(org), .text(pool), .int(Int64(after))])
                try s.upsertThreshold.run()
            } else {
                s.deleteThreshold.bindAll([.int(org), .text(pool)])
                try s.deleteThreshold.run()
            }
            try audit(
                action,
                number: nil,
                agent: nil,
                before: before.map { AuditJSON.poolThreshold(pool, $0) },
                after: after.map { AuditJSON.poolThreshold(pool, $0) }
            )
        }
    }

    private func upsertNumber(_ org: Int64, _ n: NumberRecord, _ s: WriterStatements) throws {
        let a = n.attributes
        s.upsertNumber.bindAll([
            .int(org), .int(Int64(n.number.digits)), .text(a.provider), .text(a.country.code),
            .int(Int64(a.capabilities.rawValue)),
            .text(a.status.rawValue), .text(a.location), .text(a.tags.joined(separator: "\u{1F}")), .text(a.numberType),
            .int(n.createdAt.milliseconds), .text(n.createdBy.id), .int(n.modifiedAt.milliseconds),
            .text(n.modifiedBy.id),
            n.releasedAt.map { .int($0.milliseconds) } ?? .null,
        ])
        try s.upsertNumber.run()
    }
}

/// What the writer has done.
public struct WriterStatistics: Sendable {
    /// Transactions committed.
    public var batches: Int = 0
    /// Changes committed.
    public var changes: Int = 0
    /// The largest group.
    public var largestBatch: Int = 0
    /// Total time spent in transactions.
    public var commitNanoseconds: UInt64 = 0
    /// The most logged counters written to `counters` in one transaction (a round's slice, or a
    /// reset's or deletion's fold of everything).
    public var largestFold: Int = 0
    /// Transactions an event loop committed itself while the writer was idle
    /// (``ChangeWriter/commitIfIdle(through:)``); included in `batches`.
    public var inlineBatches: Int = 0

    mutating func recordBatch(size: Int, nanoseconds: UInt64, inline: Bool) {
        self.batches += 1
        if inline { self.inlineBatches += 1 }
        self.changes += size
        self.largestBatch = max(self.largestBatch, size)
        self.commitNanoseconds += nanoseconds
    }
}

/// The writer's statements, prepared once.
struct WriterStatements {
    let begin: SQLiteStatement
    let commit: SQLiteStatement
    let upsertCounter: SQLiteStatement
    let insertLog: SQLiteStatement
    let deleteLog: SQLiteStatement
    let markJournal: SQLiteStatement
    let addCalls: SQLiteStatement
    let insertOrganization: SQLiteStatement
    let upsertNumber: SQLiteStatement
    let deleteNumber: SQLiteStatement
    let deleteCounters: SQLiteStatement
    let upsertAgent: SQLiteStatement
    let upsertReservation: SQLiteStatement
    let deleteReservation: SQLiteStatement
    let upsertAssignment: SQLiteStatement
    let updateAssignment: SQLiteStatement
    let deleteAssignment: SQLiteStatement
    let insertHistory: SQLiteStatement
    let setReleasedAt: SQLiteStatement
    let insertAudit: SQLiteStatement
    let upsertThreshold: SQLiteStatement
    let deleteThreshold: SQLiteStatement

    init(_ db: SQLiteDatabase) throws(SQLiteError) {
        self.begin = try db.prepare("BEGIN IMMEDIATE")
        self.commit = try db.prepare("COMMIT")
        self.upsertCounter = try db.prepare(
            """
            INSERT INTO counters (organization_id, e164, day_key, day, count) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (organization_id, e164, day_key) DO UPDATE SET count = excluded.count
            """
        )
        self.insertLog = try db.prepare("INSERT INTO counter_log (id, entries) VALUES (?, ?)")
        self.deleteLog = try db.prepare("DELETE FROM counter_log WHERE id <= ?")
        self.markJournal = try db.prepare("UPDATE counter_journal SET absorbed_through = ? WHERE id = 1")
        self.addCalls = try db.prepare(
            "UPDATE assignments SET calls = calls + ? WHERE organization_id = ? AND e164 = ?"
        )
        self.insertOrganization = try db.prepare(
            "INSERT INTO organizations (id, name, time_zone, created_at) VALUES (?, ?, ?, ?)"
        )
        self.upsertNumber = try db.prepare(
            """
            INSERT OR REPLACE INTO numbers (organization_id, e164, provider, country, capabilities, status, location,
                tags, number_type, created_at, created_by, modified_at, modified_by, released_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """
        )
        self.deleteNumber = try db.prepare("DELETE FROM numbers WHERE organization_id = ? AND e164 = ?")
        self.deleteCounters = try db.prepare("DELETE FROM counters WHERE organization_id = ? AND e164 = ?")
        self.upsertAgent = try db.prepare(
            """
            INSERT OR REPLACE INTO agents (organization_id, id, display_name, principal, active, created_at, modified_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """
        )
        self.upsertReservation = try db.prepare(
            """
            INSERT OR REPLACE INTO reservations (organization_id, e164, id, expires_at, agent_id, reserved_by)
            VALUES (?, ?, ?, ?, ?, ?)
            """
        )
        self.deleteReservation = try db.prepare("DELETE FROM reservations WHERE organization_id = ? AND e164 = ?")
        self.upsertAssignment = try db.prepare(
            """
            INSERT OR REPLACE INTO assignments (organization_id, e164, agent_id, daily_limit, allowed_countries,
                assigned_at, assigned_by, calls)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """
        )
        self.updateAssignment = try db.prepare(
            "UPDATE assignments SET daily_limit = ?, allowed_countries = ? WHERE organization_id = ? AND e164 = ?"
        )
        self.deleteAssignment = try db.prepare("DELETE FROM assignments WHERE organization_id = ? AND e164 = ?")
        self.insertHistory = try db.prepare(
            "INSERT INTO assignment_history (organization_id, e164, agent_id, from_at, to_at, calls) VALUES (?, ?, ?, ?, ?, ?)"
        )
        self.setReleasedAt = try db.prepare("UPDATE numbers SET released_at = ? WHERE organization_id = ? AND e164 = ?")
        self.insertAudit = try db.prepare(
            """
            INSERT INTO audit_log (organization_id, at, actor, action, e164, agent_id, before, after)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """
        )
        self.upsertThreshold = try db.prepare(
            "INSERT OR REPLACE INTO pool_thresholds (organization_id, pool, threshold) VALUES (?, ?, ?)"
        )
        self.deleteThreshold = try db.prepare("DELETE FROM pool_thresholds WHERE organization_id = ? AND pool = ?")
    }
}

extension ChangeEvent {
    /// A counted call (the only change an event loop may commit itself).
    fileprivate var isCounter: Bool {
        if case .counter = self { return true }
        return false
    }
}
