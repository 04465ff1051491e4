import Foundation
import Synchronization

/// One local calendar day of an organization: `[start, end)` in UTC instants.
///
/// Daily counters are keyed by the day's ``end`` instant (in seconds), which identifies a local day
/// uniquely without any calendar math on the hot path.
public struct DayWindow: Hashable, Sendable {
    /// First instant of the local day.
    public let start: Timestamp
    /// First instant of the next local day: when counters reset.
    public let end: Timestamp

    /// The identity of the day used by counters (the end instant in seconds).
    @inlinable
    public var key: Int64 { self.end.seconds }

    @inlinable
    public func contains(_ instant: Timestamp) -> Bool { instant >= self.start && instant < self.end }
}

/// The calendar day of an organization's time zone, cached so that deciding "which day is it" on the hot
/// path is one atomic load and two comparisons.
///
/// The cache is a single `UInt64`: the day's end in seconds (low 40 bits) and its length in seconds
/// (high 24 bits). A thread that finds `now` outside the cached window computes the right window with
/// Foundation's calendar (DST-correct: days of 23 and 25 hours) and publishes it. Racing writers are
/// harmless: every caller uses only a window that it checked contains its own `now`.
public final class OrganizationDay: Sendable {
    let timeZone: TimeZone
    private let cache: Atomic<UInt64>
    private static let endMask: UInt64 = (1 << 40) - 1

    /// The organization's IANA time zone name.
    public var timeZoneIdentifier: String { self.timeZone.identifier }

    /// - Throws: ``CallgateError`` `invalidArgument` for an unknown IANA name.
    public init(timeZoneIdentifier: String) throws(CallgateError) {
        guard let zone = TimeZone(identifier: timeZoneIdentifier) else {
            throw CallgateError(
                .invalidArgument,
                "unknown time zone '\(timeZoneIdentifier)' (expected an IANA name such as Europe/Paris)"
            )
        }
        self.timeZone = zone
        self.cache = Atomic(0)
    }

    /// The local day containing `now`.
    @inlinable
    public func window(containing now: Timestamp) -> DayWindow {
        if let window = self.cachedWindow(containing: now) { return window }
        return self.computeAndPublish(now)
    }

    @usableFromInline
    func cachedWindow(containing now: Timestamp) -> DayWindow? {
        let packed = self.cache.load(ordering: .relaxed)
        let end = Int64(packed & Self.endMask)
        let start = end - Int64(packed >> 40)
        let window = DayWindow(start: Timestamp(seconds: start), end: Timestamp(seconds: end))
        return packed != 0 && window.contains(now) ? window : nil
    }

    @usableFromInline
    func computeAndPublish(_ now: Timestamp) -> DayWindow {
        let window = Self.computeWindow(containing: now, in: self.timeZone)
        let length = UInt64(window.end.seconds - window.start.seconds)
        let end = UInt64(window.end.seconds)
        if end <= Self.endMask, length < (1 << 24) {
            self.cache.store(length << 40 | end, ordering: .relaxed)
        }
        return window
    }

    /// The local day containing `instant` in `zone` (calendar math: off the hot path).
    static func computeWindow(containing instant: Timestamp, in zone: TimeZone) -> DayWindow {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let date = Date(timeIntervalSince1970: Double(instant.milliseconds) / 1000)
        let start = calendar.startOfDay(for: date)
        // 36 h after a day's start always lies in the next day (days last 23–25 h), and startOfDay copes
        // with zones whose midnight is skipped by DST.
        let end = calendar.startOfDay(for: start.addingTimeInterval(36 * 3600))
        return DayWindow(
            start: Timestamp(seconds: Int64(start.timeIntervalSince1970.rounded(.down))),
            end: Timestamp(seconds: Int64(end.timeIntervalSince1970.rounded(.down)))
        )
    }

    /// The local calendar date (`2026-03-08`) of a day, for reports and storage.
    public func localDate(of window: DayWindow) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = self.timeZone
        let c = calendar.dateComponents(
            [.year, .month, .day],
            from: Date(timeIntervalSince1970: Double(window.start.seconds))
        )
        let y = c.year ?? 0
        let m = c.month ?? 0
        let d = c.day ?? 0
        return "\(y)-\(m < 10 ? "0" : "")\(m)-\(d < 10 ? "0" : "")\(d)"
    }
}

extension OrganizationDay {
    /// The local date of the day whose counters are keyed `dayKey` (its end instant in seconds).
    public func localDate(endingAt dayKey: Int64) -> String {
        let window = Self.computeWindow(containing: Timestamp(seconds: dayKey - 1), in: self.timeZone)
        return self.localDate(of: window)
    }
}
