import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An instant: milliseconds since the Unix epoch (UTC).
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var milliseconds: Int64

    @inlinable
    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    @inlinable
    public init(seconds: Int64) { self.milliseconds = seconds &* 1000 }

    /// Whole seconds since the epoch (rounded down).
    @inlinable
    public var seconds: Int64 { self.milliseconds >= 0 ? self.milliseconds / 1000 : (self.milliseconds - 999) / 1000 }

    @inlinable
    public func adding(milliseconds: Int64) -> Timestamp { Timestamp(milliseconds: self.milliseconds &+ milliseconds) }

    @inlinable
    public func adding(seconds: Int64) -> Timestamp { self.adding(milliseconds: seconds &* 1000) }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.milliseconds < rhs.milliseconds }

    public var description: String { "\(self.milliseconds)ms" }
}

/// The engine's source of time. Injected so that tests can move time (day rollover, reservation
/// expiry) without sleeping.
public protocol EngineClock: Sendable {
    /// The current instant. Called once per decision: keep it cheap.
    func now() -> Timestamp
}

/// Wall-clock time from `CLOCK_REALTIME_COARSE`: a few nanoseconds a read (no vDSO clock math) at the
/// kernel tick's resolution (1–4 ms), plenty for daily counters and reservation expiry.
public struct SystemClock: EngineClock {
    public init() {}

    public func now() -> Timestamp {
        var ts = timespec()
        #if os(Linux)
        clock_gettime(CLOCK_REALTIME_COARSE, &ts)
        #else
        clock_gettime(CLOCK_REALTIME, &ts)
        #endif
        return Timestamp(milliseconds: Int64(ts.tv_sec) &* 1000 &+ Int64(ts.tv_nsec) / 1_000_000)
    }
}

/// A clock that only moves when told to: for tests, simulations and the demo.
public final class ManualClock: EngineClock {
    private let current: Atomic<Int64>

    public init(_ start: Timestamp) { self.current = Atomic(start.milliseconds) }

    public func now() -> Timestamp { Timestamp(milliseconds: self.current.load(ordering: .relaxed)) }

    /// Moves the clock to an instant (also backwards).
    public func set(_ instant: Timestamp) { self.current.store(instant.milliseconds, ordering: .relaxed) }

    /// Moves the clock forward.
    public func advance(seconds: Int64) { self.current.add(seconds * 1000, ordering: .relaxed) }

    /// Moves the clock forward.
    public func advance(milliseconds: Int64) { self.current.add(milliseconds, ordering: .relaxed) }
}

extension Timestamp {
    /// UTC in ISO 8601 (`2026-11-21T19:03:20Z`), for messages and reports.
    public var iso8601: String {
        let secs = self.seconds
        var days = secs >= 0 ? secs / 86_400 : (secs - 86_399) / 86_400
        let rem = secs - days * 86_400
        // Civil-from-days (Howard Hinnant's algorithm).
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(two(m))-\(two(d))T\(two(rem / 3600)):\(two(rem % 3600 / 60)):\(two(rem % 60))Z"
    }
}
