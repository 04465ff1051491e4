import CSQLite
import CallgateCore
import Dispatch
import Foundation

/// Copies the WAL back into the database file on its own thread and connection, so the writer never
/// pays for a checkpoint inside a group commit (a stall every few thousand pages that clients would see
/// as a latency spike).
///
/// Runs `PRAGMA wal_checkpoint(PASSIVE)` once per interval: it copies what no reader still needs and
/// never blocks the writer. The writer's own backstop checkpoint (`ChangeWriter`'s WAL hook, at
/// `walAutocheckpointPages`, on the writer thread only) stays far above what this thread leaves behind.
final class Checkpointer: @unchecked Sendable {
    // @unchecked: `database` is used only by the checkpointer thread, and by `stop` after that thread
    // has finished; the semaphores are thread-safe.
    private let database: SQLiteDatabase
    private let interval: DispatchTimeInterval
    private let stopRequested = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let running = Locked(true)

    init(path: String, interval: DispatchTimeInterval = .milliseconds(500)) throws(SQLiteError) {
        self.database = try SQLiteDatabase(path: path)
        try self.database.execute("PRAGMA busy_timeout = 1000")
        self.interval = interval
    }

    func start() {
        let thread = Thread { [self] in
            callgate_set_thread_name("callgate-ckpt")
            while self.stopRequested.wait(timeout: .now() + self.interval) == .timedOut {
                // A failure (busy, I/O) is retried at the next tick; the writer's backstop still holds.
                try? self.database.execute("PRAGMA wal_checkpoint(PASSIVE)")
            }
            self.finished.signal()
        }
        thread.name = "callgate-checkpoint"
        thread.start()
    }

    /// Stops the thread and waits for it. Safe to call more than once.
    func stop() {
        let wasRunning = self.running.withLock { running in
            defer { running = false }
            return running
        }
        guard wasRunning else { return }
        self.stopRequested.signal()
        self.finished.wait()
    }
}
