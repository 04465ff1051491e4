/// How the store writes.
public struct StoreConfiguration: Sendable {
    /// When a change counts as done.
    public enum Durability: String, Sendable, CaseIterable {
        /// A reply waits until its change is committed (group commit). The default.
        case commit
        /// Replies go out at once; a crash may lose what was answered but not yet committed: the
        /// writer gathers changes for up to ``StoreConfiguration/asyncGatherMicroseconds`` (1 ms) into
        /// one group instead of waking for every change.
        case async
    }

    /// SQLite's `synchronous` setting in WAL mode.
    ///
    /// - `normal`: a commit is in the WAL file when it returns; it survives a crash of the process,
    ///   and a power loss may take the last commits (not yet synced by a checkpoint) but never corrupts.
    /// - `full`: every commit is fsynced; it survives power loss too, at the cost of one fsync per group.
    public enum Synchronous: String, Sendable, CaseIterable {
        case normal
        case full
    }

    /// Path of the SQLite database file.
    public var path: String
    public var durability: Durability
    public var synchronous: Synchronous
    /// How many changes may wait for the writer; a full queue refuses changes (RESOURCE_EXHAUSTED).
    public var queueCapacity: Int
    /// The most changes committed in one transaction.
    public var maximumBatch: Int
    /// Caps the database size in pages (`PRAGMA max_page_count`); `nil` is SQLite's default. Tests use
    /// it to make the disk "full".
    public var maximumPageCount: Int?
    /// The writer's page cache in MiB (`PRAGMA cache_size`). SQLite's default, 2 MiB, is far smaller
    /// than the pages a busy day touches (every held number's counter and assignment rows), so pages
    /// would be re-read from the OS on every group.
    public var cacheMebibytes = 256
    /// WAL frames between automatic checkpoints (`PRAGMA wal_autocheckpoint`). A counter page updated in
    /// many groups is copied back to the database once per checkpoint, so fewer, larger checkpoints
    /// write less; the price is a WAL of up to this many 4 KiB pages (64 MiB) to replay after a crash.
    public var walAutocheckpointPages = 16_384
    /// Local days of daily counters and usage tallies kept, today included (`callgated
    /// --usage-retention-days`); older ones are deleted once an hour, a slice at a time. 0 keeps all.
    public var usageRetentionDays = 400
    /// How often the engine's usage tallies are written (seconds): what a crash can lose of them.
    public var usageSnapshotSeconds = 15.0
    /// How often retention runs (seconds).
    public var usagePruneSeconds = 3600.0
    /// How often the counters of the counter log are written to the `counters` table (seconds): they
    /// are durable either way; this is how much log a crash can leave to fold at the next start, and
    /// how many calls share one row write.
    public var counterFoldSeconds = 5.0
    /// `async` durability: how long the writer lets changes gather after a group before it commits the
    /// next one (unless someone waits for a commit, or many changes wait). Waking the writer and
    /// committing for every change would cost each one a transaction's CPU on a busy machine.
    public var asyncGatherMicroseconds = 1000
    /// `commit` durability with `synchronous` `normal`: when the writer is idle and fewer than this many
    /// changes wait, the server's event loop that holds replies commits them itself
    /// (``ChangeWriter/commitIfIdle(through:)``) instead of waking the writer thread and being woken
    /// back: at low load that hand-off costs more than the commit. 0: always the writer.
    public var inlineCommitChanges = 16
    /// Such an inline commit appends the calls to the counter journal (`<path>-counters`, one `write`,
    /// the same durability as a `synchronous=normal` commit: ``CounterJournal``) instead of running a
    /// SQLite transaction; the writer copies them into the database with its next transaction. `false`:
    /// a SQLite transaction on the event loop (what happens anyway if the journal cannot be written).
    public var counterJournal = true

    public init(
        path: String,
        durability: Durability = .commit,
        synchronous: Synchronous = .normal,
        queueCapacity: Int = 1 << 18,
        maximumBatch: Int = 16_384,
        maximumPageCount: Int? = nil
    ) {
        self.path = path
        self.durability = durability
        self.synchronous = synchronous
        self.queueCapacity = queueCapacity
        self.maximumBatch = maximumBatch
        self.maximumPageCount = maximumPageCount
    }
}
