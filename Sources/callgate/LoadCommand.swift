import ArgumentParser
import CallgateLoad
import Foundation

/// `callgate load`: drives a running server with AuthorizeCall (optionally mixed with PickNumber, Assign
/// and Release) and reports throughput, latency percentiles, decisions and errors.
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load-test a server: AuthorizeCall (and a lifecycle mix) over many pipelined connections.",
        discussion: """
            Closed loop by default: every connection keeps --depth requests in flight. With --rate, an open \
            loop at that many requests per second over all connections; latency then counts from each \
            request's place on the schedule (coordinated-omission correction). --seed creates the agents \
            (load-agent-<i>) and numbers (+1415…) first; without it the agents must exist (--agent-count). \
            Progress goes to standard error once a second; the report to standard output (--json for JSON).
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "TCP connections.")
    var connections = 50

    @Option(help: "Requests in flight per connection, at most.")
    var depth = 16

    @Option(help: ArgumentHelp("Requests per second over all connections (open loop); 0 = closed loop."))
    var rate: Double = 0

    @Option(help: ArgumentHelp("Seconds to measure (default 10 unless --requests is given).", valueName: "seconds"))
    var duration: Double?

    @Option(help: "Measured requests to send over all connections (0: by --duration).")
    var requests = 0

    @Option(help: ArgumentHelp("Seconds of load before measuring, not recorded.", valueName: "seconds"))
    var warmup: Double = 2

    @Option(help: ArgumentHelp("Agent distribution: uniform, zipf or zipf:S (hot agents).", valueName: "dist"))
    var agents = "uniform"

    @Option(
        name: .customLong("agent-count"),
        help: ArgumentHelp("Agents load-agent-0… to use (default: the seed's, else 1000).", valueName: "n")
    )
    var agentCount: Int?

    @Option(
        name: .customLong("deny-share"),
        help: ArgumentHelp(
            "Share (0 to 1) of AuthorizeCalls to Japan (+81), which the seed does not allow.",
            valueName: "p"
        )
    )
    var denyShare: Double = 0

    @Option(
        help: ArgumentHelp(
            "Method weights: authorize=N[,pick=N][,assign=N][,release=N] (pick/assign/release need --seed …,spare=S).",
            valueName: "mix"
        )
    )
    var mix = "authorize=100"

    @Option(
        help: ArgumentHelp(
            "Create agents and numbers first: agents=N,numbers-per-agent=K[,limit=L][,countries=US][,spare=S].",
            valueName: "spec"
        )
    )
    var seed: String?

    @Option(help: ArgumentHelp("Load-generator threads (default: the number of cores).", valueName: "n"))
    var threads: Int?

    @Option(name: .customLong("random-seed"), help: ArgumentHelp("Seed of the random choices.", valueName: "n"))
    var randomSeed: UInt64?

    @Flag(help: "No progress lines on standard error.")
    var quiet = false

    func run() async throws {
        var configuration = LoadConfiguration(
            host: global.resolvedHost(),
            port: try global.resolvedPort(),
            apiKey: try global.resolvedKey()
        )
        configuration.clientName = "callgate-load"
        configuration.tls = try global.resolvedTLS()
        configuration.connections = connections
        configuration.depth = depth
        configuration.rate = rate
        configuration.requests = requests
        if let duration {
            guard duration > 0, duration.isFinite else { throw CLIError.usage("--duration must be positive") }
            configuration.duration = .milliseconds(Int64(duration * 1000))
        } else {
            configuration.duration = requests > 0 ? nil : .seconds(10)
        }
        guard warmup >= 0, warmup.isFinite else { throw CLIError.usage("--warmup must not be negative") }
        configuration.warmup = .milliseconds(Int64(warmup * 1000))
        configuration.denyShare = denyShare
        configuration.randomSeed = randomSeed ?? UInt64.random(in: 0...UInt64.max)
        if let threads { configuration.threads = threads }
        do {
            configuration.agents = try AgentDistribution(parsing: agents)
            configuration.mix = try LoadMix(parsing: mix)
            if let seed {
                configuration.use(seed: try LoadSeed(parsing: seed))
                configuration.seed = nil
            }
            if let agentCount { configuration.agentCount = agentCount }
            try configuration.validate()
        } catch {
            throw CLIError.usage("\(error)")
        }

        var seedReport: SeedReport?
        if let seed {
            let layout = try LoadSeed(parsing: seed)
            if !quiet {
                writeToStandardError(
                    "seeding \(layout.agents) agents and \(layout.totalNumbers) numbers on "
                        + "\(configuration.host):\(configuration.port)…\n"
                )
            }
            seedReport = try await run { try await seedLoadData(layout, configuration: configuration) }
            if !quiet, let seedReport { writeToStandardError(seedReport.summary + "\n") }
        }

        let quiet = self.quiet
        var report = try await run {
            try await runLoad(configuration) { progress in
                if !quiet { writeToStandardError(progress.renderLine() + "\n") }
            }
        }
        report.seed = seedReport
        print(global.json ? report.renderJSON() : report.renderText())
    }

    /// Turns the library's errors into the CLI's.
    private func run<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as LoadError {
            switch error {
            case .invalidConfiguration(let message): throw CLIError.usage(message)
            case .connectFailed(let message): throw CLIError(code: "CONNECT_FAILED", message: message)
            case .seedFailed(let message): throw CLIError(code: "SEED_FAILED", message: message)
            }
        }
    }
}
