public import CallgateClient
import NIOCore

/// What ``runLoad(_:progress:)`` does: where, how many connections and requests in flight, at what
/// pace, for how long, against which agents, with which mix of methods.
public struct LoadConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// An admin or dialer key (the lifecycle methods of a ``LoadMix`` need admin, or dialer for reserve only).
    public var apiKey: String
    public var clientName = "callgate-load"
    /// TLS to the server (the same settings as ``CallgateClient``'s); `nil`: plain TCP.
    public var tls: CallgateClientConfiguration.TLS?

    /// TCP connections; each says `hello` first.
    public var connections = 50
    /// At most this many requests outstanding per connection.
    public var depth = 16
    /// Requests per second over all connections (open loop, with coordinated-omission correction); 0 runs
    /// closed loop: each connection keeps `depth` requests outstanding, as fast as the server answers.
    public var rate: Double = 0
    /// How long the measured phase lasts; `nil` runs until ``requests`` are answered.
    public var duration: Duration? = .seconds(10)
    /// How many measured requests to send over all connections (0: as many as ``duration`` allows).
    public var requests = 0
    /// Load before the measured phase, not recorded.
    public var warmup: Duration = .seconds(2)

    /// Agents `load-agent-0` … `load-agent-<agentCount - 1>` (as ``seedLoadData(_:configuration:concurrency:)``
    /// creates them).
    public var agentCount = 1000
    public var agents: AgentDistribution = .uniform
    /// The share (0 to 1) of AuthorizeCall requests meant to be denied: their destination is in a country the
    /// agents may not call (``denyDestination``).
    public var denyShare: Double = 0
    /// A destination outside the agents' allowed countries: Japan, which no seed allows unless told to
    /// (``validate()`` refuses a seed whose countries include ``denyCountry``). Constants, so that the
    /// number and its country cannot disagree.
    public static let denyDestination = "+81312345678"
    /// The ISO country of ``denyDestination``.
    public static let denyCountry = "JP"
    public var mix = LoadMix()

    /// Numbers per agent of the seed: the spare numbers of the lifecycle methods follow the agents' numbers.
    public var numbersPerAgent = 1
    /// Unassigned numbers that PickNumber, Assign and Release cycle through (``LoadSeed/spare``).
    public var spareNumbers = 0
    /// The daily limit and allowed countries Assign gives a spare number.
    public var assignLimit: UInt32 = 1_000_000
    public var assignCountries: [String] = []

    /// Seeds agents and numbers before the run when set (``seedLoadData(_:configuration:concurrency:)``).
    public var seed: LoadSeed?
    /// Event-loop threads of the load generator.
    public var threads = System.coreCount
    /// How long to wait for outstanding responses after the last request before counting them as timed out.
    public var drainTimeout: Duration = .seconds(5)
    /// The seed of the random choices (agents, deny share, mix); `nil` for a random one.
    public var randomSeed: UInt64?

    public init(host: String = "127.0.0.1", port: Int = 7420, apiKey: String) {
        self.host = host
        self.port = port
        self.apiKey = apiKey
    }

    /// Applies a seed's layout (agents, numbers per agent, spares, terms) and asks to seed it.
    public mutating func use(seed: LoadSeed) {
        self.seed = seed
        self.agentCount = seed.agents
        self.numbersPerAgent = seed.numbersPerAgent
        self.spareNumbers = seed.spare
        self.assignLimit = seed.dailyLimit
        self.assignCountries = seed.countries
    }

    /// Checks the values; throws ``LoadError/invalidConfiguration(_:)`` with a sentence for a user.
    public func validate() throws(LoadError) {
        func fail(_ message: String) throws(LoadError) { throw LoadError.invalidConfiguration(message) }
        if self.connections < 1 || self.connections > 10_000 { try fail("connections must be 1 to 10000") }
        if self.depth < 1 || self.depth > 65_536 { try fail("depth must be 1 to 65536") }
        if !(self.rate >= 0) || !self.rate.isFinite { try fail("rate must be 0 (closed loop) or a positive number") }
        if self.requests < 0 { try fail("requests must not be negative") }
        if self.duration == nil && self.requests == 0 { try fail("give a duration or a request count") }
        if let duration = self.duration, duration <= .zero { try fail("duration must be positive") }
        if self.warmup < .zero { try fail("warmup must not be negative") }
        if self.agentCount < 1 { try fail("there must be at least one agent") }
        if !(self.denyShare >= 0 && self.denyShare <= 1) { try fail("deny share must be 0 to 1") }
        if self.denyShare > 0, self.assignCountries.contains(where: { $0.uppercased() == Self.denyCountry }) {
            try fail(
                "the deny share calls \(Self.denyCountry) (\(Self.denyDestination)), which the seed's countries allow; leave \(Self.denyCountry) out of countries="
            )
        }
        if self.mix.total == 0 { try fail("the mix has no weight") }
        if self.mix.usesLifecycle && self.spareNumbers == 0 {
            try fail("a mix with pick, assign or release needs spare numbers: --seed …,spare=N")
        }
        if self.threads < 1 { try fail("threads must be at least 1") }
        if case .zipf(let s) = self.agents, !(s > 0 && s.isFinite) { try fail("the Zipf exponent must be positive") }
    }
}

/// Which agent each AuthorizeCall names.
public enum AgentDistribution: Sendable, Hashable, CustomStringConvertible {
    /// Every agent equally often.
    case uniform
    /// Agent of rank k (1-based) with probability ∝ 1/k^s: a few hot agents.
    case zipf(exponent: Double)

    /// `uniform`, `zipf` (s = 1.1) or `zipf:S`.
    public init(parsing text: String) throws(LoadError) {
        let lower = text.lowercased()
        if lower == "uniform" {
            self = .uniform
        } else if lower == "zipf" {
            self = .zipf(exponent: 1.1)
        } else if lower.hasPrefix("zipf:"), let s = Double(lower.dropFirst(5)), s > 0, s.isFinite {
            self = .zipf(exponent: s)
        } else {
            throw LoadError.invalidConfiguration("agents must be uniform, zipf or zipf:S (S > 0), not '\(text)'")
        }
    }

    public var description: String {
        switch self {
        case .uniform: return "uniform"
        case .zipf(let s): return "zipf:\(s)"
        }
    }
}

/// Relative weights of the methods a run sends. Pick (reserve), Assign and Release cycle the spare numbers
/// of each connection (available → reserved → assigned → available); when no spare is in the state a
/// method needs, an AuthorizeCall goes instead.
public struct LoadMix: Sendable, Hashable, CustomStringConvertible {
    public var authorize = 100
    public var pick = 0
    public var assign = 0
    public var release = 0

    public init(authorize: Int = 100, pick: Int = 0, assign: Int = 0, release: Int = 0) {
        self.authorize = authorize
        self.pick = pick
        self.assign = assign
        self.release = release
    }

    /// `authorize=90,pick=4,assign=3,release=3` (missing names weigh 0).
    public init(parsing text: String) throws(LoadError) {
        self.init(authorize: 0)
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingSpaces() }
            guard parts.count == 2, let weight = Int(parts[1]), weight >= 0 else {
                throw LoadError.invalidConfiguration("mix items are NAME=WEIGHT, not '\(item)'")
            }
            switch parts[0].lowercased() {
            case "authorize", "authorize_call": self.authorize = weight
            case "pick", "pick_number": self.pick = weight
            case "assign": self.assign = weight
            case "release": self.release = weight
            default:
                throw LoadError.invalidConfiguration(
                    "unknown mix method '\(parts[0])' (authorize, pick, assign, release)"
                )
            }
        }
        guard self.total > 0 else { throw LoadError.invalidConfiguration("the mix '\(text)' has no weight") }
    }

    public var total: Int { self.authorize + self.pick + self.assign + self.release }
    public var usesLifecycle: Bool { self.pick + self.assign + self.release > 0 }

    public var description: String {
        var items: [String] = []
        for (name, weight) in self.weights where weight > 0 { items.append("\(name)=\(weight)") }
        return items.joined(separator: ",")
    }

    /// The weights by method name, in a fixed order.
    public var weights: [(String, Int)] {
        [("authorize", self.authorize), ("pick", self.pick), ("assign", self.assign), ("release", self.release)]
    }
}

/// Why a load run could not be done.
public enum LoadError: Error, Hashable, Sendable, CustomStringConvertible {
    case invalidConfiguration(String)
    /// Connecting or saying hello failed.
    case connectFailed(String)
    /// Seeding met an error other than "already there".
    case seedFailed(String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let message): return message
        case .connectFailed(let message): return message
        case .seedFailed(let message): return message
        }
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var text = self
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return String(text)
    }
}

extension Duration {
    /// Whole nanoseconds (saturating at `UInt64.max`, 0 for negative durations).
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = self.components
        guard seconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return .max }
        return whole &+ UInt64(attoseconds / 1_000_000_000)
    }

    var seconds: Double {
        let (seconds, attoseconds) = self.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
