import Foundation
import Synchronization

// Usage tallies: what the report needs beyond the daily counters (denials by reason, allowed calls by
// hour, per agent), gathered on the hot path without slowing it down.
//
// - Each agent's tallies live in its state, under the lock AuthorizeCall already holds: a short array of
//   slots, one per (number, hour) touched since the store last took them. Counting a decision is a scan
//   of that array and an integer add; the hour is `(now - dayStart) / 1 h`, integer math on the day the
//   decision already computed. The array is reserved off the hot path (when numbers are assigned,
//   ``Organization/takeUsage()`` and ``Organization/reserveUsageCapacity()``), so counting does not allocate.
// - Denials that belong to no agent (an agent id the organization does not know) are counted per day
//   in two atomic words per reason (``DayTally``): no lock.
// - The store takes the tallies periodically (``Organization/takeUsage()``), converts hours to local
//   wall-clock hours and days to local dates (calendar math, off the hot path), writes them as deltas,
//   and only then removes what it took (``Organization/usageStored(_:)``). If the store refuses, the
//   tallies stay and are taken again next time.

/// Denials by reason, one counter per ``DenyReason``.
struct DenialCounts {
    var noAssignment: UInt32 = 0
    var numberNotAssignedToAgent: UInt32 = 0
    var dailyLimitReached: UInt32 = 0
    var countryNotAllowed: UInt32 = 0
    var numberInactive: UInt32 = 0
    var agentInactive: UInt32 = 0
    var unknownAgent: UInt32 = 0
    var invalidDestination: UInt32 = 0

    subscript(reason: DenyReason) -> UInt32 {
        get {
            switch reason {
            case .noAssignment: return self.noAssignment
            case .numberNotAssignedToAgent: return self.numberNotAssignedToAgent
            case .dailyLimitReached: return self.dailyLimitReached
            case .countryNotAllowed: return self.countryNotAllowed
            case .numberInactive: return self.numberInactive
            case .agentInactive: return self.agentInactive
            case .unknownAgent: return self.unknownAgent
            case .invalidDestination: return self.invalidDestination
            }
        }
        set {
            switch reason {
            case .noAssignment: self.noAssignment = newValue
            case .numberNotAssignedToAgent: self.numberNotAssignedToAgent = newValue
            case .dailyLimitReached: self.dailyLimitReached = newValue
            case .countryNotAllowed: self.countryNotAllowed = newValue
            case .numberInactive: self.numberInactive = newValue
            case .agentInactive: self.agentInactive = newValue
            case .unknownAgent: self.unknownAgent = newValue
            case .invalidDestination: self.invalidDestination = newValue
            }
        }
    }

    var isZero: Bool { DenyReason.allCases.allSatisfy { self[$0] == 0 } }
}

/// The decisions of one agent from one number (or none) in one hour of a local day, not yet taken by
/// the store. 48 bytes, machine words only.
struct UsageSlot {
    /// The caller-ID number's digits; 0 for denials tied to none of the agent's numbers.
    var number: UInt64
    /// The hour: its first minute, in minutes since the epoch (the day's start plus whole hours).
    var minute: UInt32
    var allowed: UInt32 = 0
    var denied = DenialCounts()

    init(number: UInt64, minute: UInt32) {
        self.number = number
        self.minute = minute
    }

    /// The hour of `now` in `day` (which contains it), as its first minute: integer math only.
    @inline(__always)
    static func minute(_ now: Timestamp, _ day: DayWindow) -> UInt32 {
        let start = day.start.milliseconds
        let hour = (now.milliseconds &- start) / 3_600_000
        return UInt32(truncatingIfNeeded: start / 60_000 &+ hour &* 60)
    }

    var isZero: Bool { self.allowed == 0 && self.denied.isZero }
}

/// An agent's usage tallies since the store last took them; guarded by the agent's lock.
struct AgentUsage {
    var slots: [UsageSlot] = []

    /// Counts one decision (not a dry run) made at `now` on `day`.
    @inline(__always)
    mutating func count(_ decision: CallDecision, now: Timestamp, day: DayWindow) {
        // A number the agent does not hold is not one of its numbers' usage.
        let number = decision.denyReason == .numberNotAssignedToAgent ? 0 : decision.callerID?.digits ?? 0
        self.count(number: number, minute: UsageSlot.minute(now, day), reason: decision.denyReason)
    }

    /// Adds one ALLOW (`reason == nil`) or one denial to the slot of (`number`, `minute`).
    @inline(__always)
    mutating func count(number: UInt64, minute: UInt32, reason: DenyReason?) {
        let n = self.slots.count
        var i = 0
        while i < n, self.slots[i].number != number || self.slots[i].minute != minute { i &+= 1 }
        // Within the capacity reserved off the hot path, appending does not allocate.
        if i == n { self.slots.append(UsageSlot(number: number, minute: minute)) }
        if let reason {
            self.slots[i].denied[reason] &+= 1
        } else {
            self.slots[i].allowed &+= 1
        }
    }

    /// Room for every (number, hour) an agent holding `holdings` numbers can touch between two takes
    /// that straddle an hour: two hours of each number, plus its denials tied to no number.
    mutating func reserve(holdings: Int) {
        let wanted = 2 * (holdings + 1)
        if self.slots.capacity < wanted { self.slots.reserveCapacity(wanted) }
    }

    /// Removes what the store stored (`taken`, a copy of earlier slots): counts only grew since.
    mutating func subtract(_ taken: [UsageSlot]) {
        for t in taken {
            guard let i = self.slots.firstIndex(where: { $0.number == t.number && $0.minute == t.minute }) else {
                continue
            }
            self.slots[i].allowed &-= t.allowed
            for reason in DenyReason.allCases { self.slots[i].denied[reason] &-= t.denied[reason] }
        }
        self.slots.removeAll { $0.isZero }
    }
}

/// Counts events per local day without a lock: the denials of an organization that belong to no agent.
///
/// One atomic word holds a day (its first minute since the epoch, modulo 2^26) and that day's count
/// (38 bits). The first event of a new day moves the previous day's count to a second word, where it
/// waits until the store takes it. Only if the store took nothing for a whole day (two days pending at
/// once) is the older count dropped.
final class DayTally: Sendable {
    private static let countBits: UInt64 = 38
    private static let countMask: UInt64 = (1 << countBits) - 1
    static let tagMask: UInt64 = (1 << 26) - 1
    private let current = Atomic<UInt64>(0)
    private let previous = Atomic<UInt64>(0)

    init() {}

    private static func tag(_ dayStartMinute: Int64) -> UInt64 { UInt64(truncatingIfNeeded: dayStartMinute) & tagMask }

    /// Counts one event of the day starting at `dayStartMinute`.
    func add(dayStartMinute: Int64, count: UInt64 = 1) {
        let tag = Self.tag(dayStartMinute)
        var value = self.current.load(ordering: .relaxed)
        while true {
            let sameDay = value >> Self.countBits == tag
            let desired = sameDay ? value &+ count : tag << Self.countBits | count
            let (exchanged, seen) = self.current.compareExchange(
                expected: value,
                desired: desired,
                ordering: .relaxed
            )
            if exchanged {
                if !sameDay, value & Self.countMask != 0 { self.keep(value) }
                return
            }
            value = seen
        }
    }

    /// Moves a whole word (another day's count) to `previous`, adding to it when it holds the same day.
    private func keep(_ word: UInt64) {
        var value = self.previous.load(ordering: .relaxed)
        while true {
            let desired =
                value & Self.countMask != 0 && value >> Self.countBits == word >> Self.countBits
                ? value &+ (word & Self.countMask) : word
            let (exchanged, seen) = self.previous.compareExchange(
                expected: value,
                desired: desired,
                ordering: .relaxed
            )
            if exchanged { return }
            value = seen
        }
    }

    /// Takes every pending count: (day tag, count) pairs.
    func take() -> [(tag: UInt64, count: UInt64)] {
        var taken: [(tag: UInt64, count: UInt64)] = []
        if let word = Self.take(self.previous) { taken.append(word) }
        if let word = Self.take(self.current) { taken.append(word) }
        return taken
    }

    /// Sets a word's count to zero (keeping its day) and returns what it held.
    private static func take(_ atomic: borrowing Atomic<UInt64>) -> (tag: UInt64, count: UInt64)? {
        var value = atomic.load(ordering: .relaxed)
        while value & Self.countMask != 0 {
            let (exchanged, seen) = atomic.compareExchange(
                expected: value,
                desired: value & ~Self.countMask,
                ordering: .relaxed
            )
            if exchanged { return (value >> Self.countBits, value & Self.countMask) }
            value = seen
        }
        return nil
    }

    /// Puts back what ``take()`` took when the store could not keep it.
    func giveBack(tag: UInt64, count: UInt64) {
        var value = self.current.load(ordering: .relaxed)
        while value >> Self.countBits == tag {
            let (exchanged, seen) = self.current.compareExchange(
                expected: value,
                desired: value &+ count,
                ordering: .relaxed
            )
            if exchanged { return }
            value = seen
        }
        self.keep(tag << Self.countBits | count)
    }
}

/// The usage tallies of an organization that belong to no agent.
final class OrganizationUsage: Sendable {
    /// `UNKNOWN_AGENT` denials.
    let unknownAgent = DayTally()
    /// `INVALID_DESTINATION` denials of agent ids the organization does not know.
    let invalidDestination = DayTally()

    init() {}

    func tally(_ reason: DenyReason) -> DayTally? {
        switch reason {
        case .unknownAgent: return self.unknownAgent
        case .invalidDestination: return self.invalidDestination
        default: return nil
        }
    }
}

/// What ``Organization/takeUsage()`` took: usage records for the store, in parts (one per agent, and
/// one for the denials of unknown agent ids) that are confirmed separately.
public struct UsageSnapshot: Sendable {
    public var parts: [Part]

    /// The tallies of one agent (or of the agent ids the organization does not know).
    public struct Part: Sendable {
        /// The deltas to add to the store, one per local day and number.
        public let records: [UsageRecord]
        let agent: AgentEntry?
        let slots: [UsageSlot]
        let unattributed: [(reason: DenyReason, tag: UInt64, count: UInt64)]
    }

    /// Every record of every part.
    public var records: [UsageRecord] { self.parts.flatMap(\.records) }
}

extension Organization {
    // MARK: - Counting (hot path helpers)

    /// A DENY for an agent id the organization does not know, counted for the usage report.
    @inline(__always)
    func denyUnknownAgent(_ reason: DenyReason, callerID: PhoneNumber? = nil, dryRun: Bool) -> CallDecision {
        let day = self.today
        if !dryRun { self.usage.tally(reason)?.add(dayStartMinute: day.start.seconds / 60) }
        return .deny(reason, resetsAt: day.end, callerID: callerID)
    }

    /// A DENY `INVALID_DESTINATION` for a known agent, counted under the agent's lock: for the number
    /// the dialer asked for (`from`) when the agent holds it.
    func denyInvalidDestination(
        _ agent: AgentStorage,
        from: PhoneNumber?,
        callerID: PhoneNumber? = nil,
        dryRun: Bool
    ) -> CallDecision {
        agent.withLock { state in
            let now = self.clock.now()
            let day = self.day.window(containing: now)
            if !dryRun {
                let held = from.flatMap { state.holdingIndex(of: $0) }.map { state.holdings[$0].number }
                state.usage.count(
                    number: held?.digits ?? 0,
                    minute: UsageSlot.minute(now, day),
                    reason: .invalidDestination
                )
            }
            return .deny(.invalidDestination, resetsAt: day.end, callerID: callerID)
        }
    }

    /// A DENY `INVALID_DESTINATION` for a destination that is not a phone number at all (the server
    /// answers it without parsing further), counted for the usage report like any other decision.
    public func denyUnparsableDestination(agent agentID: String, callerID: PhoneNumber?, dryRun: Bool) -> CallDecision {
        guard let agent = self.directory.lookupUnretained(agentID) else {
            return self.denyUnknownAgent(.invalidDestination, callerID: callerID, dryRun: dryRun)
        }
        return agent._withUnsafeGuaranteedRef {
            self.denyInvalidDestination($0, from: callerID, callerID: callerID, dryRun: dryRun)
        }
    }

    // MARK: - Taking the tallies (off the hot path)

    /// Copies every tally not yet stored, as records per agent, local day and number, and reserves each
    /// agent's tally capacity for its numbers (so that counting never allocates).
    ///
    /// Agents' tallies stay counted until ``usageStored(_:)`` removes what was stored; the tallies of
    /// unknown agent ids are taken now and given back by ``usageNotStored(_:)``. The calendar work
    /// (local dates, DST-correct wall-clock hours) happens here, once per distinct hour.
    public func takeUsage() -> UsageSnapshot {
        var hours: [UInt32: (day: String, hour: Int)] = [:]
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = self.day.timeZone
        func local(_ minute: UInt32) -> (day: String, hour: Int) {
            if let known = hours[minute] { return known }
            // 30 s into the hour's first minute: inside the hour even for odd historical offsets.
            let date = Date(timeIntervalSince1970: Double(minute) * 60 + 30)
            let c = calendar.dateComponents([.year, .month, .day, .hour], from: date)
            let day = LocalDate(year: c.year ?? 1970, month: c.month ?? 1, day: c.day ?? 1).description
            let result = (day, min(max(c.hour ?? 0, 0), 23))
            hours[minute] = result
            return result
        }

        var parts: [UsageSnapshot.Part] = []
        for agent in self.directory.all() {
            let slots = agent.state.withLock { state -> [UsageSlot] in
                state.usage.reserve(holdings: state.holdings.count)
                guard !state.usage.slots.isEmpty else { return [] }
                // A copy in a buffer of its own: sharing the agent's would make its next count copy it.
                var copy: [UsageSlot] = []
                copy.reserveCapacity(state.usage.slots.count)
                copy.append(contentsOf: state.usage.slots)
                return copy
            }
            guard !slots.isEmpty else { continue }
            var byKey: [String: UsageRecord] = [:]
            for slot in slots where !slot.isZero {
                let (day, hour) = local(slot.minute)
                let key = "\(day)/\(slot.number)"
                var record =
                    byKey[key] ?? UsageRecord(day: day, agent: agent.id, number: PhoneNumber(digits: slot.number))
                record.allowedByHour[hour] &+= slot.allowed
                for reason in DenyReason.allCases { record.denied[Int(reason.rawValue) - 1] &+= slot.denied[reason] }
                byKey[key] = record
            }
            let records = byKey.values.sorted { ($0.day, $0.number?.digits ?? 0) < ($1.day, $1.number?.digits ?? 0) }
            parts.append(UsageSnapshot.Part(records: records, agent: agent, slots: slots, unattributed: []))
        }

        // Unknown agent ids: per day, taken now.
        var unattributed: [(reason: DenyReason, tag: UInt64, count: UInt64)] = []
        for reason in [DenyReason.unknownAgent, .invalidDestination] {
            for (tag, count) in self.usage.tally(reason)?.take() ?? [] { unattributed.append((reason, tag, count)) }
        }
        if !unattributed.isEmpty {
            let nowMinute = UInt64(max(0, self.clock.now().seconds / 60))
            var byDay: [String: UsageRecord] = [:]
            for (reason, tag, count) in unattributed {
                // The latest day start (in minutes) with this tag that is not in the future.
                var minute = (nowMinute & ~DayTally.tagMask) | tag
                if minute > nowMinute + 1440, minute > DayTally.tagMask { minute -= DayTally.tagMask + 1 }
                let (day, _) = local(UInt32(truncatingIfNeeded: minute))
                var record = byDay[day] ?? UsageRecord(day: day, agent: "", number: nil)
                record.denied[Int(reason.rawValue) - 1] &+= UInt32(clamping: count)
                byDay[day] = record
            }
            parts.append(
                UsageSnapshot.Part(
                    records: byDay.values.sorted { $0.day < $1.day },
                    agent: nil,
                    slots: [],
                    unattributed: unattributed
                )
            )
        }
        return UsageSnapshot(parts: parts)
    }

    /// The store has kept `part`: its agent's tallies lose what was taken.
    public func usageStored(_ part: UsageSnapshot.Part) {
        guard let agent = part.agent else { return }
        agent.state.withLock { state in state.usage.subtract(part.slots) }
    }

    /// The store could not keep `part`: what was taken of the unknown agent ids' tallies goes back.
    public func usageNotStored(_ part: UsageSnapshot.Part) {
        for (reason, tag, count) in part.unattributed {
            self.usage.tally(reason)?.giveBack(tag: tag, count: count)
        }
    }

    /// Reserves every agent's tally capacity for its numbers, so that counting never allocates (the
    /// store does this on start and with every ``takeUsage()``; an engine without a store, such as a
    /// benchmark's, calls it once its agents hold their numbers).
    public func reserveUsageCapacity() {
        for agent in self.directory.all() {
            agent.state.withLock { state in state.usage.reserve(holdings: state.holdings.count) }
        }
    }
}
