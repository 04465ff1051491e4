package import CallgateCore
package import CallgateWire
package import Prometheus
import Synchronization

/// The server's Prometheus metrics.
///
/// Every series is a metric object created once and kept in an array indexed by method, status code,
/// deny reason or reject reason, so recording is an array index and an atomic add (the writer's
/// histograms add a short lock of their own): no label arrays, strings or dictionary look-ups per
/// request. The `{method, code}` request series are created on their first use (408 of them would
/// mostly stay at zero) and cached in an atomic reference, so only that first use takes the
/// registry's lock. Request durations are atomic bucket counts of our own (``RequestDurations``), and
/// AuthorizeCall answers are counted per connection (``RequestTally``) and added once per read burst.
///
/// | metric | labels |
/// |---|---|
/// | `callgate_requests_total` | `method`, `code` |
/// | `callgate_request_duration_seconds` (histogram) | `method` |
/// | `callgate_decisions_total` | `result` (`ALLOW` or a deny reason) |
/// | `callgate_connections` (gauge), `callgate_connections_total` | |
/// | `callgate_connections_rejected_total` | `reason` (`limit`, `auth`, `frame`, `idle`, `slow_reader`, `tls`) |
/// | `callgate_writer_batch_size`, `callgate_writer_commit_seconds` (histograms), `callgate_writer_changes_total` | |
/// | `callgate_writer_inline_commits_total` (transactions an event loop committed while the writer was idle) | |
package final class ServerMetrics: Sendable {
    /// Why the server closed or refused a connection.
    package enum RejectReason: Int, CaseIterable, Sendable {
        /// Over the connection limit.
        case limit
        /// Failed or missing authentication.
        case auth
        /// An oversized or malformed frame.
        case frame
        /// Idle past the timeout.
        case idle
        /// Did not read its responses (outbound backpressure).
        case slowReader
        /// A failed TLS handshake, or none finished within the hello timeout.
        case tls

        /// The `reason` label.
        package var label: String {
            switch self {
            case .limit: return "limit"
            case .auth: return "auth"
            case .frame: return "frame"
            case .idle: return "idle"
            case .slowReader: return "slow_reader"
            case .tls: return "tls"
            }
        }
    }

    /// The registry holding every series; other parts of the server may add their own.
    package let registry: PrometheusCollectorRegistry

    /// `callgate_requests_total{method,code}` at `methodIndex * codeCount + code.rawValue`.
    private let requests: [LazyMetric<Counter>]
    /// `callgate_request_duration_seconds{method}`.
    let durations: RequestDurations
    /// `callgate_decisions_total{result}`: `ALLOW` at 0, a deny reason at its raw value.
    private let decisions: [Counter?]
    /// Entries of `decisions` (ALLOW and every deny reason's raw value).
    var decisionCount: Int { self.decisions.count }
    private let connectionsOpen: Gauge
    private let connectionsAccepted: Counter
    /// `callgate_connections_rejected_total{reason}` at the reason's raw value.
    private let rejections: [Counter]
    private let writerBatchSize: ValueHistogram
    private let writerCommit: DurationHistogram
    private let writerChanges: Counter
    private let writerInlineCommits: Counter
    /// Series computed when scraped (the pool gauges, `PoolMetrics`), appended to the registry's.
    private let scrapeSources = Locked<[@Sendable () -> String]>([])

    private static let methodCount = Wire.Request.Method.allNames.count
    /// Status codes are 0...16, dense.
    private static let codeCount = Int(Wire.StatusCode.allCases.map(\.rawValue).max()!) + 1

    /// 10 µs to 1 s.
    private static let requestBuckets: [Duration] = [
        .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
        .microseconds(500), .milliseconds(1), .microseconds(2_500), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1),
    ]

    package init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        self.requests = (0..<(Self.methodCount * Self.codeCount)).map { _ in LazyMetric() }
        self.durations = RequestDurations(bounds: Self.requestBuckets, methodNames: Wire.Request.Method.allNames)

        let decisionsName = Self.descriptor(
            "callgate_decisions_total",
            "AuthorizeCall decisions: ALLOW or the deny reason."
        )
        var decisions = [Counter?](repeating: nil, count: Int(DenyReason.allCases.map(\.rawValue).max()!) + 1)
        precondition(DenyReason(rawValue: 0) == nil, "index 0 is ALLOW")
        decisions[0] = registry.makeCounter(descriptor: decisionsName, labels: [("result", "ALLOW")])
        for reason in DenyReason.allCases {
            decisions[Int(reason.rawValue)] = registry.makeCounter(
                descriptor: decisionsName,
                labels: [("result", reason.description)]
            )
        }
        self.decisions = decisions

        self.connectionsOpen = registry.makeGauge(
            descriptor: Self.descriptor("callgate_connections", "Client connections open now.")
        )
        self.connectionsAccepted = registry.makeCounter(
            descriptor: Self.descriptor("callgate_connections_total", "Client connections accepted.")
        )
        let rejectedName = Self.descriptor(
            "callgate_connections_rejected_total",
            "Client connections refused or closed by the server, by reason."
        )
        self.rejections = RejectReason.allCases.map {
            registry.makeCounter(descriptor: rejectedName, labels: [("reason", $0.label)])
        }

        self.writerBatchSize = registry.makeValueHistogram(
            descriptor: Self.descriptor("callgate_writer_batch_size", "Changes per committed store transaction."),
            buckets: (0...14).map { Double(1 << $0) }
        )
        self.writerCommit = registry.makeDurationHistogram(
            descriptor: Self.descriptor("callgate_writer_commit_seconds", "Time to apply and commit one transaction."),
            buckets: [
                .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
                .microseconds(2_500), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2_500),
            ]
        )
        self.writerChanges = registry.makeCounter(
            descriptor: Self.descriptor("callgate_writer_changes_total", "Changes committed to the store.")
        )
        self.writerInlineCommits = registry.makeCounter(
            descriptor: Self.descriptor(
                "callgate_writer_inline_commits_total",
                "Store transactions an event loop committed itself while the writer was idle."
            )
        )
    }

    // MARK: - Recording

    /// Counts one answered request and records its duration. `methodIndex` is
    /// `Wire.Request.Method.index`; an index out of range is ignored.
    package func requestFinished(methodIndex: Int, code: Wire.StatusCode, nanoseconds: UInt64) {
        guard methodIndex >= 0, methodIndex < Self.methodCount else { return }
        self.requestCounter(methodIndex: methodIndex, code: code).increment()
        self.durations.record(methodIndex: methodIndex, nanoseconds: nanoseconds)
    }

    /// `callgate_requests_total{method,code}` (in range).
    func requestCounter(methodIndex: Int, code: Wire.StatusCode) -> Counter {
        self.requests[methodIndex * Self.codeCount + Int(code.rawValue)].get {
            self.makeRequestCounter(methodIndex: methodIndex, code: code)
        }
    }

    /// `callgate_decisions_total` at `index` (0: ALLOW, else a deny reason's raw value).
    func decisionCounter(_ index: Int) -> Counter? {
        index >= 0 && index < self.decisions.count ? self.decisions[index] : nil
    }

    static let authorizeCallIndex = Wire.Request.Method.authorizeCall(Wire.AuthorizeCallRequest()).index

    /// Counts one AuthorizeCall decision: `nil` is ALLOW.
    package func decision(_ reason: DenyReason?) {
        self.decisionCounter(Int(reason?.rawValue ?? 0))?.increment()
    }

    /// A client connection was accepted.
    package func connectionOpened() {
        self.connectionsAccepted.increment()
        self.connectionsOpen.increment()
    }

    /// An accepted client connection closed (for any reason).
    package func connectionClosed() {
        self.connectionsOpen.decrement()
    }

    /// The server refused or closed a connection.
    package func connectionRejected(_ reason: RejectReason) {
        self.rejections[reason.rawValue].increment()
    }

    /// The store committed a transaction of `size` changes in `nanoseconds` (`inline`: on an event
    /// loop); fits `ChangeWriter.setBatchObserver`.
    package func writerBatch(size: Int, nanoseconds: UInt64, inline: Bool) {
        self.writerBatchSize.record(Double(size))
        self.writerCommit.record(.nanoseconds(Int64(clamping: nanoseconds)))
        self.writerChanges.increment(by: Int64(size))
        if inline { self.writerInlineCommits.increment() }
    }

    /// Every series in the Prometheus text format (version 0.0.4).
    package func render() -> [UInt8] {
        var bytes = self.registry.emitToBuffer()
        bytes += Array(self.durations.render().utf8)
        for source in self.scrapeSources.withLock({ $0 }) { bytes += Array(source().utf8) }
        return bytes
    }

    /// Adds series computed at each scrape, in the Prometheus text format.
    package func addScrapeSource(_ source: @escaping @Sendable () -> String) {
        self.scrapeSources.withLock { $0.append(source) }
    }

    // MARK: - Creating series (once each)

    private func makeRequestCounter(methodIndex: Int, code: Wire.StatusCode) -> Counter {
        self.registry.makeCounter(
            descriptor: Self.descriptor(
                "callgate_requests_total",
                "Requests answered, by method and gRPC status code."
            ),
            labels: [("method", Wire.Request.Method.allNames[methodIndex]), ("code", Self.name(of: code))]
        )
    }

    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// The gRPC name of a status code (`PERMISSION_DENIED`).
    package static func name(of code: Wire.StatusCode) -> String {
        switch code {
        case .ok: return "OK"
        case .cancelled: return "CANCELLED"
        case .unknown: return "UNKNOWN"
        case .invalidArgument: return "INVALID_ARGUMENT"
        case .deadlineExceeded: return "DEADLINE_EXCEEDED"
        case .notFound: return "NOT_FOUND"
        case .alreadyExists: return "ALREADY_EXISTS"
        case .permissionDenied: return "PERMISSION_DENIED"
        case .resourceExhausted: return "RESOURCE_EXHAUSTED"
        case .failedPrecondition: return "FAILED_PRECONDITION"
        case .aborted: return "ABORTED"
        case .outOfRange: return "OUT_OF_RANGE"
        case .unimplemented: return "UNIMPLEMENTED"
        case .internal: return "INTERNAL"
        case .unavailable: return "UNAVAILABLE"
        case .dataLoss: return "DATA_LOSS"
        case .unauthenticated: return "UNAUTHENTICATED"
        }
    }
}

/// One metric object created on first use: later uses read an atomic reference, no lock.
private final class LazyMetric<Metric: AnyObject & Sendable>: Sendable {
    private let reference = AtomicLazyReference<Metric>()

    @inline(__always)
    func get(_ make: () -> Metric) -> Metric {
        if let metric = self.reference.load() { return metric }
        // The registry returns the same object for the same name and labels, so a race stores one.
        return self.reference.storeIfNil(make())
    }
}
