import Foundation

/// The counter journal: an append-only file beside the database (`<database>-counters`) where an event
/// loop commits a few counted calls with one `write` instead of a SQLite transaction
/// (``ChangeWriter/commitIfIdle(through:)``).
///
/// Why: with `synchronous=normal` a SQLite commit is durable once its WAL frames are written to the
/// operating system (not synced): it survives the process, not the machine. A `write` to this file
/// gives the same guarantee for ~3 µs of CPU instead of ~30 (six `fcntl` locks, two `pwrite`s, the
/// B-tree and WAL work), which is most of what an allowed call cost more than a denied one at one
/// call at a time. The journal is only used in that mode (`commit` durability, `synchronous=normal`).
///
/// Each record holds one counter log row's entries (the format of `counter_log.entries`) under the
/// row id it takes (ids are handed out in order, under the writer's work lock, so a record's id is
/// larger than every row committed before it). The writer copies the records into `counter_log` at the
/// start of its next transaction, writes the largest id to `counter_journal.absorbed_through` in the
/// same transaction, and empties the file once that transaction is committed. Opening the store applies
/// the records above that mark (a crash left them), after the log's rows, and skips the others (a crash
/// between a commit and the truncation). A record is `[u32 entry bytes][u32 FNV-1a of the rest][i64 id]
/// [entries]`, little-endian; reading stops at the first record that is cut short or fails its check
/// (what a crash in the middle of an append leaves). The check starts from a salt the open draws anew
/// for each start and keeps in `counter_journal.salt`: a journal left beside another database (one
/// deleted and created again, a backup from an earlier start) or by an earlier start fails its first check and is
/// not applied.
///
/// Not thread-safe: used under the writer's work lock, and at open.
final class CounterJournal {
    let path: String
    private var descriptor: Int32
    /// Bytes in the file (where the next record starts).
    private var size: Int
    /// The records appended since the writer last absorbed them: the same bytes as in the file.
    private(set) var pending: [UInt8] = []
    /// False after an append or a truncation failed: the event loops commit through SQLite again.
    private(set) var isUsable = true
    /// This start's salt (`counter_journal.salt`), set by the open before any append.
    var salt: UInt64 = 0
    static let headerBytes = 16

    /// The journal's path for the database at `databasePath`; `nil` for a database that is not a plain
    /// file path.
    static func path(databasePath: String) -> String? {
        guard !databasePath.isEmpty, !databasePath.hasPrefix(":memory:"), !databasePath.hasPrefix("file:") else {
            return nil
        }
        return databasePath + "-counters"
    }

    /// Opens (creating it if needed) the journal of the database at `databasePath`.
    ///
    /// - Throws: ``StoreError/storage(_:)`` when it cannot be opened.
    init(databasePath: String) throws(StoreError) {
        guard let path = Self.path(databasePath: databasePath) else {
            throw StoreError.storage(
                CounterJournalError(path: databasePath, reason: "has no journal (not a file path)")
            )
        }
        self.path = path
        let descriptor = open(self.path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let code = errno
            throw StoreError.storage(CounterJournalError(path: path, reason: "cannot be opened (errno \(code))"))
        }
        // One store at a time: a second open would rotate the salt and empty the first one's journal.
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            Glibc.close(descriptor)
            throw StoreError.storage(
                CounterJournalError(
                    path: path,
                    reason: code == EWOULDBLOCK
                        ? "is in use by another store (another callgated on this data directory?)"
                        : "cannot be locked (errno \(code))"
                )
            )
        }
        self.descriptor = descriptor
        let end = lseek(descriptor, 0, SEEK_END)
        self.size = end > 0 ? Int(end) : 0
        self.pending.reserveCapacity(64 * 1024)
    }

    deinit { self.close() }

    /// Closes the file (and so releases the lock), at the writer's stop; nothing more is appended.
    func close() {
        guard self.descriptor >= 0 else { return }
        Glibc.close(self.descriptor)
        self.descriptor = -1
        self.isUsable = false
    }

    /// Everything in the file (at open, before any append).
    ///
    /// - Throws: ``StoreError/storage(_:)`` when the file cannot be read whole (the open must not go on
    ///   and empty it).
    func contents() throws(StoreError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: self.size)
        var done = 0
        while done < self.size {
            var code: Int32 = 0
            let read = bytes.withUnsafeMutableBytes {
                let read = pread(self.descriptor, $0.baseAddress! + done, self.size - done, off_t(done))
                code = errno
                return read
            }
            if read < 0 && code == EINTR { continue }
            guard read > 0 else {
                let reason = read == 0 ? "is shorter than it was when opened" : "cannot be read (errno \(code))"
                throw StoreError.storage(CounterJournalError(path: self.path, reason: reason))
            }
            done += read
        }
        return bytes
    }

    /// Appends a record with one `write`; `false` (and the file as it was, the journal no longer
    /// used) when the file cannot take it.
    func append(id: Int64, entries: [UInt8]) -> Bool {
        guard self.isUsable else { return false }
        let start = self.pending.count
        Self.appendRecord(id: id, entries: entries, salt: self.salt, to: &self.pending)
        let length = self.pending.count - start
        var written = -1
        var code: Int32 = 0
        repeat {
            written = self.pending.withUnsafeBytes {
                let written = write(self.descriptor, $0.baseAddress! + start, length)
                code = errno
                return written
            }
        } while written < 0 && code == EINTR
        guard written == length else {
            // Cut back what part of it may have been written (a later record must not follow a torn one).
            self.pending.removeSubrange(start...)
            _ = ftruncate(self.descriptor, off_t(self.size))
            self.isUsable = false
            return false
        }
        self.size += length
        return true
    }

    /// The pending records are committed to the counter log: empties the file.
    func absorbed() {
        self.pending.removeAll(keepingCapacity: true)
        if ftruncate(self.descriptor, 0) == 0 {
            self.size = 0
        } else {
            // The records stay in the file but are below the mark (skipped at open); stop appending.
            self.isUsable = false
        }
    }

    static func appendRecord(id: Int64, entries: [UInt8], salt: UInt64, to bytes: inout [UInt8]) {
        let start = bytes.count
        withUnsafeBytes(of: UInt32(entries.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [0, 0, 0, 0])
        withUnsafeBytes(of: id.littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: entries)
        let check = Self.checksum(bytes[(start + 8)...], salt: salt)
        withUnsafeBytes(of: check.littleEndian) { raw in
            for i in 0..<4 { bytes[start + 4 + i] = raw[i] }
        }
    }

    /// The records of `bytes` in order, up to the first one cut short or failing its check.
    static func forEachRecord(
        in bytes: [UInt8],
        salt: UInt64,
        _ body: (_ id: Int64, _ entries: ArraySlice<UInt8>) throws -> Void
    ) rethrows {
        var offset = 0
        func load(_ at: Int, _ size: Int) -> UInt64 {
            var value: UInt64 = 0
            for i in (0..<size).reversed() { value = value << 8 | UInt64(bytes[at + i]) }
            return value
        }
        while bytes.count - offset >= Self.headerBytes {
            let length = Int(load(offset, 4))
            guard length <= bytes.count - offset - Self.headerBytes else { return }
            let end = offset + Self.headerBytes + length
            guard UInt32(load(offset + 4, 4)) == Self.checksum(bytes[(offset + 8)..<end], salt: salt) else { return }
            try body(Int64(bitPattern: load(offset + 8, 8)), bytes[(offset + Self.headerBytes)..<end])
            offset = end
        }
    }

    /// FNV-1a, 32 bits, over the salt's eight bytes and then the record's: catches a torn or
    /// overwritten tail and a record of another start or database, which is all it is for.
    static func checksum(_ bytes: ArraySlice<UInt8>, salt: UInt64) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for shift in stride(from: 0, to: 64, by: 8) {
            hash = (hash ^ UInt32(truncatingIfNeeded: (salt >> UInt64(shift)) & 0xff)) &* 16_777_619
        }
        for byte in bytes { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return hash
    }
}

/// Why the counter journal cannot be used.
struct CounterJournalError: Error, CustomStringConvertible {
    let path: String
    let reason: String
    var description: String { "the counter journal \(self.path) \(self.reason)" }
}
