import CallgateWire
import Prometheus
import Synchronization

/// `callgate_request_duration_seconds{method}`: per method, one atomic count per bucket and the sum,
/// rendered in the Prometheus text format at each scrape.
///
/// swift-prometheus's histogram takes a lock and compares `Duration`s for every value recorded; at
/// 100,000 requests a second that was a tenth of an event loop's time. Here a rare method adds one
/// value with two atomic adds, and the hot path counts its requests in its connection's
/// ``RequestTally`` and adds the whole tally once per read burst.
final class RequestDurations: Sendable {
    /// Upper bounds of the buckets, in nanoseconds, ascending.
    let bounds: [UInt64]
    private let methodNames: [String]
    private let boundLabels: [String]
    /// Per method, `bounds.count + 2` slots: a count per bucket (not cumulative), the count above the
    /// last bound, and the sum in nanoseconds.
    private let slots: [Slot]
    private let name = "callgate_request_duration_seconds"
    private let help = "Time from a request's arrival to its response, by method."

    private final class Slot: Sendable {
        let value = Atomic<UInt64>(0)
    }

    init(bounds: [Duration], methodNames: [String]) {
        self.bounds = bounds.map {
            UInt64($0.components.seconds) * 1_000_000_000 + UInt64($0.components.attoseconds / 1_000_000_000)
        }
        precondition(zip(self.bounds, self.bounds.dropFirst()).allSatisfy { $0 < $1 }, "bounds ascend")
        self.boundLabels = bounds.map(\.bucketRepresentation)
        self.methodNames = methodNames
        self.slots = (0..<(methodNames.count * (bounds.count + 2))).map { _ in Slot() }
    }

    private var stride: Int { self.bounds.count + 2 }

    /// The bucket of a duration: the first bound it does not exceed, or `bounds.count` above them all.
    @inline(__always)
    static func bucket(of nanoseconds: UInt64, in bounds: [UInt64]) -> Int {
        var index = 0
        while index < bounds.count, nanoseconds > bounds[index] { index += 1 }
        return index
    }

    /// Records one request of the method at `methodIndex` (in range).
    func record(methodIndex: Int, nanoseconds: UInt64) {
        let base = methodIndex * self.stride
        self.slots[base + Self.bucket(of: nanoseconds, in: self.bounds)].value.add(1, ordering: .relaxed)
        self.slots[base + self.bounds.count + 1].value.wrappingAdd(nanoseconds, ordering: .relaxed)
    }

    /// Adds what a tally counted for the method at `methodIndex` (in range); the tally is left as is.
    func add(methodIndex: Int, buckets: borrowing [UInt64], sum: UInt64) {
        let base = methodIndex * self.stride
        for (index, count) in buckets.enumerated() where count > 0 {
            self.slots[base + index].value.add(count, ordering: .relaxed)
        }
        self.slots[base + self.bounds.count + 1].value.wrappingAdd(sum, ordering: .relaxed)
    }

    /// The family in the text format, listing only methods with at least one request (as the
    /// registry's lazily created series did).
    func render() -> String {
        var text = ""
        for (method, methodName) in self.methodNames.enumerated() {
            let base = method * self.stride
            let counts = (0...self.bounds.count).map { self.slots[base + $0].value.load(ordering: .relaxed) }
            let total = counts.reduce(0, &+)
            guard total > 0 else { continue }
            if text.isEmpty { text = "# HELP \(self.name) \(self.help)\n# TYPE \(self.name) histogram\n" }
            let labels = #"method="\#(methodName)""#
            var cumulative: UInt64 = 0
            for (index, label) in self.boundLabels.enumerated() {
                cumulative &+= counts[index]
                text += #"\#(self.name)_bucket{\#(labels),le="\#(label)"} \#(cumulative)"# + "\n"
            }
            text += #"\#(self.name)_bucket{\#(labels),le="+Inf"} \#(total)"# + "\n"
            let sum = self.slots[base + self.bounds.count + 1].value.load(ordering: .relaxed)
            text += "\(self.name)_sum{\(labels)} \(Duration.nanoseconds(Int64(clamping: sum)).bucketRepresentation)\n"
            text += "\(self.name)_count{\(labels)} \(total)\n"
        }
        return text
    }
}

/// The AuthorizeCall answers of one connection since they were last added to the server's metrics:
/// plain counters, touched only on the connection's event loop (``ServerMetrics/add(_:)``).
package struct RequestTally {
    /// ``RequestDurations/bounds``.
    fileprivate let bounds: [UInt64]
    fileprivate var buckets: [UInt64]
    fileprivate var sum: UInt64 = 0
    fileprivate var count = 0
    /// Index 0: ALLOW; else a deny reason's raw value.
    fileprivate var decisions: [UInt64]

    fileprivate init(bounds: [UInt64], decisionCount: Int) {
        self.bounds = bounds
        self.buckets = Array(repeating: 0, count: bounds.count + 1)
        self.decisions = Array(repeating: 0, count: decisionCount)
    }

    /// Counts one answered AuthorizeCall: its time and decision (`reason` 0 for ALLOW, else the deny
    /// reason's raw value; out of range is not counted as a decision).
    @inline(__always)
    package mutating func authorizeCall(nanoseconds: UInt64, reason: Int) {
        self.count += 1
        self.sum &+= nanoseconds
        self.buckets[RequestDurations.bucket(of: nanoseconds, in: self.bounds)] &+= 1
        if reason >= 0, reason < self.decisions.count { self.decisions[reason] &+= 1 }
    }

    package var isEmpty: Bool { self.count == 0 }

    fileprivate mutating func reset() {
        for index in self.buckets.indices { self.buckets[index] = 0 }
        for index in self.decisions.indices { self.decisions[index] = 0 }
        self.sum = 0
        self.count = 0
    }
}

extension ServerMetrics {
    /// An empty tally for one connection.
    package func makeTally() -> RequestTally {
        RequestTally(bounds: self.durations.bounds, decisionCount: self.decisionCount)
    }

    /// Adds a connection's tally (AuthorizeCall answers with status OK) to the metrics and empties it:
    /// a few atomic adds, whatever the number of requests counted.
    package func add(_ tally: inout RequestTally) {
        guard tally.count > 0 else { return }
        self.durations.add(methodIndex: Self.authorizeCallIndex, buckets: tally.buckets, sum: tally.sum)
        self.requestCounter(methodIndex: Self.authorizeCallIndex, code: .ok).increment(by: Int64(tally.count))
        for (index, count) in tally.decisions.enumerated() where count > 0 {
            self.decisionCounter(index)?.increment(by: Int64(count))
        }
        tally.reset()
    }
}
