import CallgateWire
import Foundation
import Histogram

/// The result of a load run: throughput, latency percentiles (HDR histogram), decisions, errors.
///
/// Latency is measured from each request's intended send time: in a closed loop that is when it was sent;
/// in an open loop (``LoadConfiguration/rate``) it is its slot on the schedule, so time spent waiting for a
/// free pipeline slot counts (coordinated-omission correction).
public struct LoadReport: Codable, Sendable, Hashable {
    /// Percentiles in microseconds.
    public struct Latency: Codable, Sendable, Hashable {
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var p999: Double
        public var max: Double
        public var mean: Double
    }

    /// `closed` or `open`.
    public var mode: String
    public var connections: Int
    public var depth: Int
    /// Requests per second asked for (open loop).
    public var targetRate: Double?
    public var warmupSeconds: Double
    /// The measured phase's length.
    public var seconds: Double
    public var agentCount: Int
    /// `uniform` or `zipf:S`.
    public var agentDistribution: String
    public var denyShare: Double
    public var mix: String
    /// Load-generator event-loop threads.
    public var threads: Int

    /// Answered measured requests (errors included).
    public var requests: UInt64
    /// `requests / seconds`.
    public var throughput: Double
    public var latencyMicroseconds: Latency
    /// AuthorizeCall answers: `ALLOW`, `DENY/COUNTRY_NOT_ALLOWED`, …
    public var decisions: [String: UInt64]
    /// Answered requests per method: `authorize_call`, `pick_number`, `assign`, `release`.
    public var operations: [String: UInt64]
    /// Errors by status code (`NOT_FOUND`) or local cause (`TIMEOUT`, `CONNECTION_CLOSED`, …).
    public var errors: [String: UInt64]
    public var errorCount: UInt64
    /// Open loop: requests of the measured phase's schedule that were never sent (the pipeline stayed full).
    public var unsent: UInt64
    public var seed: SeedReport?

    /// A human-readable summary.
    public func renderText() -> String {
        var lines: [String] = []
        if let seed = self.seed { lines.append(seed.summary) }
        var setup = "\(self.mode) loop, \(self.connections) connections × depth \(self.depth)"
        if let rate = self.targetRate { setup += ", target \(formatCount(rate))/s" }
        setup += ", \(self.agentCount) agents (\(self.agentDistribution))"
        if self.denyShare > 0 { setup += ", deny share \(formatPercent(self.denyShare))" }
        if self.mix != "authorize=100" { setup += ", mix \(self.mix)" }
        lines.append(setup)
        lines.append(
            "measured:    \(String(format: "%.2f", self.seconds)) s after \(String(format: "%g", self.warmupSeconds)) s warm-up"
        )
        lines.append("requests:    \(self.requests)")
        lines.append("throughput:  \(formatCount(self.throughput)) req/s")
        let l = self.latencyMicroseconds
        lines.append(
            "latency:     p50 \(formatMicros(l.p50))  p90 \(formatMicros(l.p90))  p99 \(formatMicros(l.p99))  "
                + "p99.9 \(formatMicros(l.p999))  max \(formatMicros(l.max))  (mean \(formatMicros(l.mean)))"
        )
        lines.append("decisions:" + Self.renderCounts(self.decisions))
        if self.operations.count > 1 { lines.append("operations:" + Self.renderCounts(self.operations)) }
        lines.append("errors:      \(self.errorCount)" + (self.errors.isEmpty ? "" : Self.renderCounts(self.errors)))
        if self.unsent > 0 { lines.append("unsent:      \(self.unsent) (the pipeline was full)") }
        return lines.joined(separator: "\n")
    }

    /// The report as pretty-printed JSON with sorted keys.
    public func renderJSON() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    private static func renderCounts(_ counts: [String: UInt64]) -> String {
        let total = counts.values.reduce(0, +)
        var text = ""
        for (name, count) in counts.sorted(by: { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }) {
            let share = total == 0 ? 0 : Double(count) / Double(total)
            text += "\n  \(name.padding(toLength: 32, withPad: " ", startingAt: 0)) \(count) (\(formatPercent(share)))"
        }
        return text
    }
}

/// One line of live progress, once a second.
public struct LoadProgress: Sendable, Hashable {
    public enum Phase: String, Sendable, Hashable {
        case warmup, measuring, draining
    }

    /// Seconds since the load started (warm-up included).
    public var elapsed: Double
    public var phase: Phase
    /// Answers in the last interval, per second.
    public var requestsPerSecond: Double
    /// Latency of the last interval's answers, microseconds.
    public var p50: Double
    public var p99: Double
    /// Errors in the last interval.
    public var errors: UInt64
    /// Errors since the start.
    public var totalErrors: UInt64

    /// `[  3.0s measuring]  52,314 req/s  p50 412µs  p99 1.93ms  errors 0`.
    public func renderLine() -> String {
        let time = String(format: "%5.1fs", self.elapsed)
        let phase = self.phase.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
        let rate = formatCount(self.requestsPerSecond)
        let padded = String(repeating: " ", count: max(0, 9 - rate.count)) + rate
        return "[\(time) \(phase)] \(padded) req/s  p50 \(formatMicros(self.p50))  p99 \(formatMicros(self.p99))  "
            + "errors \(self.errors)" + (self.totalErrors > self.errors ? " (total \(self.totalErrors))" : "")
    }
}

// MARK: - Counting on the event loops

/// Counters of one event loop's connections: a total for the measured phase and an interval for progress.
/// Only touched on its event loop.
final class LoopStats {
    /// Latency range: 1 ns to 10 minutes, 3 significant digits.
    static let highestTrackable: UInt64 = 600_000_000_000

    static func makeHistogram() -> Histogram<UInt64> {
        Histogram(
            lowestDiscernibleValue: 1,
            highestTrackableValue: highestTrackable,
            numberOfSignificantValueDigits: .three
        )
    }

    var total = StatsSnapshot()
    var interval = IntervalSnapshot()

    /// Records one answer. `decision` and `error` are indexes of ``StatsSnapshot`` (or −1).
    func record(latency: UInt64, measured: Bool, now: UInt64, operation: Int, decision: Int, error: Int) {
        let value = min(latency, Self.highestTrackable)
        self.interval.histogram.record(value)
        self.interval.responses &+= 1
        if error >= 0 { self.interval.errors &+= 1 }
        guard measured else { return }
        self.total.histogram.record(value)
        self.total.responses &+= 1
        self.total.lastCompletion = max(self.total.lastCompletion, now)
        self.total.operations[operation] &+= 1
        if decision >= 0 { self.total.decisions[decision] &+= 1 }
        if error >= 0 { self.total.errorCodes[error] &+= 1 }
    }

    /// Counts a failure that has no answer (timeout, connection closed, an unknown request id).
    func recordFailure(_ error: Int, measured: Bool) {
        self.interval.errors &+= 1
        if measured { self.total.errorCodes[error] &+= 1 }
    }

    func takeInterval() -> IntervalSnapshot {
        let snapshot = self.interval
        self.interval.histogram.reset()
        self.interval.responses = 0
        self.interval.errors = 0
        return snapshot
    }
}

struct IntervalSnapshot: Sendable {
    var histogram = LoopStats.makeHistogram()
    var responses: UInt64 = 0
    var errors: UInt64 = 0

    mutating func add(_ other: IntervalSnapshot) {
        self.histogram.add(other.histogram)
        self.responses += other.responses
        self.errors += other.errors
    }
}

/// The measured phase's counts.
struct StatsSnapshot: Sendable {
    /// Verdict × reason: `verdict * reasonSlots + reason`; out-of-range values use the last slot of each.
    static let verdictSlots = 4
    static let reasonSlots = 10
    /// Status codes 0…16, then other codes, then local causes.
    static let statusSlots = 18
    static let otherStatus = 17
    static let connectionClosed = 18
    static let timeout = 19
    static let malformed = 20
    static let unexpectedResult = 21
    static let unknownRequestID = 22
    static let errorSlots = 23
    static let operationNames = ["authorize_call", "pick_number", "assign", "release"]

    var histogram = LoopStats.makeHistogram()
    var responses: UInt64 = 0
    var lastCompletion: UInt64 = 0
    var unsent: UInt64 = 0
    var decisions = [UInt64](repeating: 0, count: verdictSlots * reasonSlots)
    var errorCodes = [UInt64](repeating: 0, count: errorSlots)
    var operations = [UInt64](repeating: 0, count: operationNames.count)

    static func decisionIndex(verdict: Int32, reason: Int32) -> Int {
        let v = verdict >= 0 && verdict < verdictSlots - 1 ? Int(verdict) : verdictSlots - 1
        let r = reason >= 0 && reason < reasonSlots - 1 ? Int(reason) : reasonSlots - 1
        return v * reasonSlots + r
    }

    static func errorIndex(code: Int32) -> Int {
        code >= 0 && code < otherStatus ? Int(code) : otherStatus
    }

    mutating func add(_ other: StatsSnapshot) {
        self.histogram.add(other.histogram)
        self.responses += other.responses
        self.lastCompletion = max(self.lastCompletion, other.lastCompletion)
        self.unsent += other.unsent
        for i in self.decisions.indices { self.decisions[i] += other.decisions[i] }
        for i in self.errorCodes.indices { self.errorCodes[i] += other.errorCodes[i] }
        for i in self.operations.indices { self.operations[i] += other.operations[i] }
    }

    var errorCount: UInt64 { self.errorCodes.reduce(0, +) }

    /// `ALLOW`, `DENY/COUNTRY_NOT_ALLOWED`, …
    var decisionCounts: [String: UInt64] {
        var counts: [String: UInt64] = [:]
        for (index, count) in self.decisions.enumerated() where count > 0 {
            let verdict = index / Self.reasonSlots
            let reason = index % Self.reasonSlots
            var name =
                verdict < Self.verdictSlots - 1
                ? constantName(Wire.Verdict(rawValue: Int32(verdict)) ?? .unspecified) : "VERDICT_OTHER"
            if reason != 0 {
                name +=
                    "/"
                    + (reason < Self.reasonSlots - 1
                        ? constantName(Wire.DenyReason(rawValue: Int32(reason)) ?? .unspecified) : "REASON_OTHER")
            }
            counts[name] = count
        }
        return counts
    }

    var errorCounts: [String: UInt64] {
        var counts: [String: UInt64] = [:]
        for (index, count) in self.errorCodes.enumerated() where count > 0 {
            let name: String
            switch index {
            case Self.otherStatus: name = "OTHER_STATUS"
            case Self.connectionClosed: name = "CONNECTION_CLOSED"
            case Self.timeout: name = "TIMEOUT"
            case Self.malformed: name = "MALFORMED_RESPONSE"
            case Self.unexpectedResult: name = "UNEXPECTED_RESULT"
            case Self.unknownRequestID: name = "UNKNOWN_REQUEST_ID"
            default: name = constantName(Wire.StatusCode(rawValue: Int32(index)) ?? .unknown)
            }
            counts[name] = count
        }
        return counts
    }

    var operationCounts: [String: UInt64] {
        var counts: [String: UInt64] = [:]
        for (index, count) in self.operations.enumerated() where count > 0 {
            counts[Self.operationNames[index]] = count
        }
        return counts
    }

    /// Percentiles in microseconds.
    var latency: LoadReport.Latency {
        let h = self.histogram
        func micros(_ nanoseconds: UInt64) -> Double { (Double(nanoseconds) / 1000 * 10).rounded() / 10 }
        guard h.totalCount > 0 else { return LoadReport.Latency(p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0) }
        return LoadReport.Latency(
            p50: micros(h.valueAtPercentile(50)),
            p90: micros(h.valueAtPercentile(90)),
            p99: micros(h.valueAtPercentile(99)),
            p999: micros(h.valueAtPercentile(99.9)),
            max: micros(h.max),
            mean: (h.mean / 1000 * 10).rounded() / 10
        )
    }
}

/// `countryNotAllowed` → `COUNTRY_NOT_ALLOWED` (the proto's constant without its enum prefix).
func constantName(_ value: some Any) -> String {
    var name = ""
    for character in String(describing: value) {
        if character.isUppercase { name.append("_") }
        name += character.uppercased()
    }
    return name
}

func formatCount(_ value: Double) -> String {
    let rounded = Int(value.rounded())
    var digits = String(rounded.magnitude)
    var groups: [String] = []
    while digits.count > 3 {
        groups.insert(String(digits.suffix(3)), at: 0)
        digits.removeLast(3)
    }
    groups.insert(digits, at: 0)
    return (rounded < 0 ? "-" : "") + groups.joined(separator: ",")
}

func formatPercent(_ share: Double) -> String {
    String(format: "%.1f%%", share * 100)
}

/// `412µs`, `1.93ms`, `2.41s`.
func formatMicros(_ micros: Double) -> String {
    if micros < 1000 { return String(format: micros < 10 ? "%.1fµs" : "%.0fµs", micros) }
    if micros < 1_000_000 { return String(format: micros < 10_000 ? "%.2fms" : "%.1fms", micros / 1000) }
    return String(format: "%.2fs", micros / 1_000_000)
}
