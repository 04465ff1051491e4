import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The hot-path state of one assigned number, guarded by its agent's lock.
///
/// Only machine words (no strings, no references), so an agent's holdings are a flat array that the
/// decision scans without retain/release traffic.
struct Holding {
    let number: PhoneNumber
    let country: Country
    /// NANP area code of the number, 0 outside NANP.
    let areaCode: UInt16
    var active: Bool
    var dailyLimit: UInt32
    var allowedCountries: CountrySet
    /// The number's counter: while the number is assigned, this is the only copy.
    var counter: DailyCounter
    var callsSinceAssigned: UInt64
}

/// An agent's mutable state, guarded by the agent's own lock.
struct AgentState {
    var record: AgentRecord
    var holdings: [Holding] = []
    /// Index of the holding picked last; ties rotate from the one after it.
    var lastPicked: Int = -1
    /// Decisions not yet taken by the store, for the usage report (Organization+Usage.swift).
    var usage = AgentUsage()

    func holdingIndex(of number: PhoneNumber) -> Int? {
        self.holdings.firstIndex { $0.number == number }
    }

    /// Adds holdings and reserves the usage tallies' room for them, so that the agent's next
    /// AuthorizeCall counts without allocating. Assign and bulk assign go through here; loading at start
    /// appends directly and reserves once for all agents (``Organization/reserveUsageCapacity()``).
    mutating func addHoldings(_ new: some Sequence<Holding>) {
        self.holdings.append(contentsOf: new)
        self.usage.reserve(holdings: self.holdings.count)
    }
}

/// The header of an agent's storage: its immutable id next to its locked state.
struct AgentHeader {
    /// Never changes after creation, so it may be read without the lock.
    let id: String
    var state: AgentState
}

/// One agent in one heap object: id, state and `pthread_mutex_t` side by side, so a decision touches
/// one allocation for all of it.
final class AgentStorage: ManagedBuffer<AgentHeader, pthread_mutex_t> {

    static func make(_ record: AgentRecord) -> AgentStorage {
        let buffer = Self.create(minimumCapacity: 1) { _ in
            var state = AgentState(record: record)
            // Room for the tallies of its first decisions (denials before any assignment), so that
            // counting them does not allocate on the hot path.
            state.usage.reserve(holdings: 0)
            return AgentHeader(id: record.id, state: state)
        }
        let storage = unsafeDowncast(buffer, to: AgentStorage.self)
        storage.withUnsafeMutablePointerToElements(PthreadMutex.initialize)
        return storage
    }

    deinit { self.withUnsafeMutablePointerToElements(PthreadMutex.destroy) }

    // The fields are addressed separately (`pointer(to:)`): an access through `header.pointee` would
    // cover the whole header, overlapping the lock-free reads of `id` with locked writes of `state`.

    /// The agent's id (immutable: no lock needed).
    var id: String {
        self.withUnsafeMutablePointerToHeader { header in header.pointer(to: \.id)!.pointee }
    }

    /// Whether the agent's id is `other`, without copying the id.
    @inline(__always)
    func hasID(_ other: String) -> Bool {
        self.withUnsafeMutablePointerToHeader { header in header.pointer(to: \.id)!.pointee == other }
    }

    @inline(__always)
    func withLock<Result, Failure: Error>(
        _ body: (inout AgentState) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try self.withUnsafeMutablePointers { (header, mutex) throws(Failure) -> Result in
            let state = header.pointer(to: \.state)!
            return try PthreadMutex.withLocked(mutex) { () throws(Failure) -> Result in try body(&state.pointee) }
        }
    }
}

/// One agent as the rest of the engine holds it.
struct AgentEntry: @unchecked Sendable {
    // @unchecked: AgentStorage (a ManagedBuffer, which cannot conform) touches `state` only under its
    // mutex, and `id` is immutable.
    let storage: AgentStorage

    init(record: AgentRecord) { self.storage = AgentStorage.make(record) }

    init(_ storage: AgentStorage) { self.storage = storage }

    var id: String { self.storage.id }

    /// The agent's lock and state.
    var state: AgentStorage { self.storage }

}

/// Agents of one organization by external id: an open-addressing hash table that readers probe
/// without any lock.
///
/// Each slot is two adjacent atomic words: the id's 64-bit hash (0 = empty) and the agent's storage pointer.
/// A writer (inserts are serialized by `writerLock`) stores the pointer, then the hash with release
/// ordering; a reader that loads a non-zero hash with acquire ordering therefore sees the pointer.
/// Agents are never removed, so a slot never changes once set. When the table is half full the writer
/// builds a table twice the size and publishes it; old tables are kept (never freed), so a reader still
/// probing one is safe. Their total size is below the current table's.
final class AgentDirectory: @unchecked Sendable {
    // @unchecked: tables are published through `current` (acquire/release) and slots are atomics;
    // `tables` and `everyAgent` are touched only under `writerLock`.

    final class Table: @unchecked Sendable {
        // @unchecked: slots are atomics; the table is immutable once published but for their stores.
        let mask: Int
        /// Slot i is words 2i (hash) and 2i+1 (agent pointer): one cache line holds both.
        let words: UnsafeMutablePointer<Atomic<UInt>>
        var count = 0  // writer only

        init(capacity: Int) {
            self.mask = capacity - 1
            self.words = .allocate(capacity: 2 * capacity)
            for i in 0..<(2 * capacity) { (self.words + i).initialize(to: Atomic(0)) }
        }

        deinit {
            self.words.deinitialize(count: 2 * (self.mask + 1))
            self.words.deallocate()
        }

        @inline(__always) func hash(_ slot: Int) -> UnsafeMutablePointer<Atomic<UInt>> { self.words + 2 &* slot }

        @inline(__always) func agent(_ slot: Int) -> UnsafeMutablePointer<Atomic<UInt>> {
            self.words + (2 &* slot &+ 1)
        }
    }

    private let current: Atomic<UnsafeRawPointer>
    private let writerLock = Locked(())
    /// Every table ever published (kept alive for readers) and every agent (kept alive for slots).
    /// Touched only under `writerLock`.
    private var tables: [Table] = []
    private var everyAgent: [AgentStorage] = []

    init() {
        let table = Table(capacity: 64)
        self.tables = [table]
        self.current = Atomic(UnsafeRawPointer(Unmanaged.passUnretained(table).toOpaque()))
    }

    @inline(__always)
    private static func slotHash(_ id: String) -> UInt {
        let h = UInt(truncatingIfNeeded: AgentKey.hash(id))
        return h == 0 ? 1 : h
    }

    /// The agent with this id, or `nil`. Lock-free.
    func lookup(_ id: String) -> AgentEntry? {
        self.lookupUnretained(id).map { AgentEntry($0.takeUnretainedValue()) }
    }

    /// The agent with this id, unretained: valid as long as the directory (agents are never removed),
    /// so the hot path pays no reference counting.
    func lookupUnretained(_ id: String) -> Unmanaged<AgentStorage>? {
        let hash = Self.slotHash(id)
        let table = Unmanaged<Table>.fromOpaque(self.current.load(ordering: .acquiring))
        return table._withUnsafeGuaranteedRef { table -> Unmanaged<AgentStorage>? in
            var i = Int(truncatingIfNeeded: hash) & table.mask
            while true {
                let h = table.hash(i).pointee.load(ordering: .acquiring)
                if h == 0 { return nil }
                if h == hash {
                    let bits = table.agent(i).pointee.load(ordering: .relaxed)
                    let storage = Unmanaged<AgentStorage>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!)
                    if storage._withUnsafeGuaranteedRef({ $0.hasID(id) }) { return storage }
                }
                i = (i + 1) & table.mask
            }
        }
    }

    /// Returns the existing entry, or inserts the one `make` builds.
    func lookupOrInsert(_ id: String, make: () -> AgentEntry) -> (entry: AgentEntry, inserted: Bool) {
        self.writerLock.withLock { _ in
            if let existing = self.lookup(id) { return (existing, false) }
            let entry = make()
            self.everyAgent.append(entry.storage)
            var table = self.tables.last!
            if (table.count + 1) * 2 > table.mask + 1 {
                let bigger = Table(capacity: (table.mask + 1) * 2)
                for storage in self.everyAgent.dropLast() { Self.insert(storage, into: bigger) }
                self.tables.append(bigger)
                self.current.store(UnsafeRawPointer(Unmanaged.passUnretained(bigger).toOpaque()), ordering: .releasing)
                table = bigger
            }
            Self.insert(entry.storage, into: table)
            return (entry, true)
        }
    }

    private static func insert(_ storage: AgentStorage, into table: Table) {
        let hash = self.slotHash(storage.id)
        var i = Int(truncatingIfNeeded: hash) & table.mask
        while table.hash(i).pointee.load(ordering: .relaxed) != 0 { i = (i + 1) & table.mask }
        table.agent(i).pointee.store(UInt(bitPattern: Unmanaged.passUnretained(storage).toOpaque()), ordering: .relaxed)
        table.hash(i).pointee.store(hash, ordering: .releasing)
        table.count += 1
    }

    /// Every agent, in no particular order.
    func all() -> [AgentEntry] { self.writerLock.withLock { _ in self.everyAgent.map(AgentEntry.init) } }

    var count: Int { self.writerLock.withLock { _ in self.everyAgent.count } }
}

/// Hashing of agent ids.
enum AgentKey {
    /// A fast 64-bit hash of the UTF-8 bytes, eight at a time.
    static func hash(_ id: String) -> UInt64 {
        if let hash = id.utf8.withContiguousStorageIfAvailable(Self.hash(bytes:)) { return hash }
        return Array(id.utf8).withUnsafeBufferPointer(Self.hash(bytes:))  // bridged strings only
    }

    @inline(__always)
    static func hash(bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(bytes.count)
        var i = 0
        let raw = UnsafeRawBufferPointer(bytes)
        while i + 8 <= bytes.count {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 31
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < bytes.count {
            tail |= UInt64(bytes[i]) << shift
            shift += 8
            i += 1
        }
        h = (h ^ tail) &* 0x94D0_49BB_1331_11EB
        return h ^ (h >> 29)
    }
}
