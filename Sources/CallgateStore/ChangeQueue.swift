import CallgateCore
import Synchronization

/// A bounded multi-producer, single-consumer queue of change records (Dmitry Vyukov's bounded queue):
/// producers claim a position with one compare-and-swap and never take a lock or allocate; the single
/// consumer (whoever holds the writer's work lock: the writer thread, or an event loop committing a
/// small group itself) takes records in position order.
///
/// Positions are contiguous, so a position is a ticket: "everything up to position N is committed" is
/// one number. A producer that claims its position while holding an engine lock (as the engine does)
/// gets positions in the order the changes happened for that number or agent.
///
/// ```
///  slot.sequence == position      free, a producer may claim `position`
///  slot.sequence == position + 1  filled, the consumer may take it
///  slot.sequence == position + N  taken, free again for position + N (N = capacity)
/// ```
final class ChangeQueue: @unchecked Sendable {
    // @unchecked: slots are handed between threads by the acquire/release protocol on `sequences`; `head`
    // is the consumer's, which holds the writer's work lock.
    private let capacity: Int
    private let mask: Int
    private let sequences: UnsafeMutablePointer<Atomic<Int>>
    private let records: UnsafeMutablePointer<ChangeRecord>
    private let tail = Atomic<Int>(0)
    /// Consumer-only: the next position to take.
    private var head = 0

    /// - Parameter capacity: rounded up to a power of two.
    init(capacity: Int) {
        var size = 1
        while size < capacity { size <<= 1 }
        self.capacity = size
        self.mask = size - 1
        self.sequences = .allocate(capacity: size)
        for i in 0..<size { (self.sequences + i).initialize(to: Atomic(i)) }
        self.records = .allocate(capacity: size)
    }

    deinit {
        // Drop records still queued.
        var position = self.head
        while self.sequences[position & self.mask].load(ordering: .acquiring) == position + 1 {
            (self.records + (position & self.mask)).deinitialize(count: 1)
            position += 1
        }
        self.sequences.deinitialize(count: self.capacity)
        self.sequences.deallocate()
        self.records.deallocate()
    }

    /// Appends a record; returns its position, or `nil` when the queue is full.
    func push(_ record: ChangeRecord) -> Int? {
        var position = self.tail.load(ordering: .relaxed)
        while true {
            let slot = position & self.mask
            let sequence = self.sequences[slot].load(ordering: .acquiring)
            if sequence == position {
                let (exchanged, current) = self.tail.weakCompareExchange(
                    expected: position,
                    desired: position + 1,
                    ordering: .relaxed
                )
                if exchanged {
                    (self.records + slot).initialize(to: record)
                    self.sequences[slot].store(position + 1, ordering: .releasing)
                    return position
                }
                position = current
            } else if sequence < position {
                return nil  // full: the slot still holds a record from one lap ago
            } else {
                position = self.tail.load(ordering: .relaxed)
            }
        }
    }

    /// Consumer only: takes the next record if it is ready.
    func pop() -> (position: Int, record: ChangeRecord)? {
        let position = self.head
        let slot = position & self.mask
        guard self.sequences[slot].load(ordering: .acquiring) == position + 1 else { return nil }
        let record = (self.records + slot).move()
        self.sequences[slot].store(position + self.capacity, ordering: .releasing)
        self.head = position + 1
        return (position, record)
    }

    /// Consumer only: takes the next record if it is ready and `accept` says yes.
    func pop(if accept: (ChangeRecord) -> Bool) -> (position: Int, record: ChangeRecord)? {
        self.headIs(accept) ? self.pop() : nil
    }

    /// Consumer only: whether the next record is ready and `accept` says yes (it stays queued).
    func headIs(_ accept: (ChangeRecord) -> Bool) -> Bool {
        let position = self.head
        let slot = position & self.mask
        return self.sequences[slot].load(ordering: .acquiring) == position + 1 && accept(self.records[slot])
    }

    /// Positions claimed so far (some may still be being filled).
    var claimed: Int { self.tail.load(ordering: .relaxed) }
}
