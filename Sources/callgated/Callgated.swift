public import ArgumentParser
import CallgateServer
public import CallgateStore
public import Logging
import ServiceLifecycle
import UnixSignals

/// `callgated`: the Callgate server.
@main
struct Callgated: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "callgated",
        abstract: "The Callgate server: may this agent call this destination now, and from which number?",
        discussion: """
            On first start in an empty data directory it creates the database, one organization and its \
            first admin key, written to <data-dir>/admin.key (readable by you only).
            """
    )

    @Option(help: "Data directory (database and first admin key).")
    var dataDir = "callgate-data"

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Client port (0 picks a free one).")
    var port = 7420

    @Option(
        name: .customLong("tls-certificate"),
        help: ArgumentHelp(
            "PEM file of the server certificate (and intermediates): TLS on the client port. Needs --tls-private-key.",
            valueName: "path"
        )
    )
    var tlsCertificate: String?

    @Option(
        name: .customLong("tls-private-key"),
        help: ArgumentHelp("PEM file of the certificate's private key (unencrypted).", valueName: "path")
    )
    var tlsPrivateKey: String?

    @Option(
        name: .customLong("tls-client-ca"),
        help: ArgumentHelp(
            "PEM file of the CA that client certificates must chain to: clients must present one (mutual TLS).",
            valueName: "path"
        )
    )
    var tlsClientCA: String?

    @Option(help: "Prometheus metrics port; 'off' disables it.")
    var metricsPort = "9420"

    @Option(
        help:
            "commit: a reply leaves after its change is on disk; async: replies first (a crash may lose the last group)."
    )
    var durability = StoreConfiguration.Durability.commit

    @Option(name: .customLong("sync"), help: "SQLite synchronous mode: normal or full.")
    var synchronous = StoreConfiguration.Synchronous.normal

    @Option(help: "Name of the organization created on first start.")
    var organizationName = "Default"

    @Option(help: "IANA time zone of the organization created on first start.")
    var timeZone = "UTC"

    @Option(help: "Largest frame in bytes.")
    var maxFrameBytes = 1 << 20

    @Option(help: "Most open connections.")
    var maxConnections = 1024

    @Option(help: "Seconds a connection may stay silent before it is closed.")
    var idleTimeout = 300

    @Option(
        help: ArgumentHelp(
            "Local days of daily counters and usage tallies kept, today included (older ones are deleted hourly); 0 keeps all.",
            valueName: "days"
        )
    )
    var usageRetentionDays = 400

    @Option(
        help: ArgumentHelp(
            "Seconds between writes of the usage tallies (denials, calls by hour): what a crash can lose of them.",
            valueName: "seconds"
        )
    )
    var usageSnapshotSeconds = 15

    @Option(
        help: ArgumentHelp(
            "Seconds between writes of the counter log into the counters table, and of calls-since-assigned (what a crash can lose of that statistic); counted calls are committed with every call either way.",
            valueName: "seconds"
        )
    )
    var counterFoldSeconds = 5.0

    @Option(
        help: ArgumentHelp(
            "durability commit, sync normal: while the store writer is idle and fewer than this many counted calls wait, the event loop holding their replies commits them itself (saves two thread hand-offs per reply at low load); 0 leaves every commit to the writer.",
            valueName: "changes"
        )
    )
    var inlineCommitChanges = 16

    @Option(
        help: ArgumentHelp(
            "on: such an inline commit appends the calls to the counter journal (callgate.sqlite-counters, one write, the same durability as a sync-normal commit) and the writer copies them into the database with its next transaction; off: a SQLite transaction on the event loop.",
            valueName: "on|off"
        )
    )
    var counterJournal = "on"

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = Logger.Level.info

    mutating func run() async throws {
        let level = self.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "callgated")

        var configuration = ServerConfiguration()
        do {
            configuration.tls = try ServerTLSConfiguration.load(
                certificatePath: self.tlsCertificate,
                privateKeyPath: self.tlsPrivateKey,
                clientCAPath: self.tlsClientCA
            )
        } catch {
            throw ValidationError(error.message)
        }
        configuration.host = self.host
        configuration.port = self.port
        configuration.maximumFrameBytes = self.maxFrameBytes
        configuration.maximumConnections = self.maxConnections
        configuration.idleTimeout = .seconds(self.idleTimeout)
        if self.metricsPort == "off" {
            configuration.metricsPort = nil
        } else if let port = Int(self.metricsPort) {
            configuration.metricsPort = port
        } else {
            throw ValidationError("--metrics-port must be a port number or 'off'")
        }

        let directory = DataDirectory(path: self.dataDir)
        guard self.usageRetentionDays >= 0 else { throw ValidationError("--usage-retention-days must be 0 or more") }
        guard (1...3600).contains(self.usageSnapshotSeconds) else {
            throw ValidationError("--usage-snapshot-seconds must be 1 to 3600")
        }
        guard (0.01...3600).contains(self.counterFoldSeconds) else {
            throw ValidationError("--counter-fold-seconds must be 0.01 to 3600")
        }
        guard (0...4096).contains(self.inlineCommitChanges) else {
            throw ValidationError("--inline-commit-changes must be 0 to 4096")
        }
        guard ["on", "off"].contains(self.counterJournal) else {
            throw ValidationError("--counter-journal must be on or off")
        }
        let counterJournal = self.counterJournal == "on"
        let (store, firstStart) = try await directory.open(
            durability: self.durability,
            synchronous: self.synchronous,
            organizationName: self.organizationName,
            timeZone: self.timeZone
        ) { [usageRetentionDays, usageSnapshotSeconds, counterFoldSeconds, inlineCommitChanges] configuration in
            configuration.usageRetentionDays = usageRetentionDays
            configuration.inlineCommitChanges = inlineCommitChanges
            configuration.counterJournal = counterJournal
            configuration.usageSnapshotSeconds = Double(usageSnapshotSeconds)
            configuration.counterFoldSeconds = counterFoldSeconds
        }
        let report = store.loadReport
        logger.notice(
            "store opened",
            metadata: [
                "path": "\(directory.databasePath)",
                "organizations": "\(report.organizations)",
                "numbers": "\(report.numbers)",
                "agents": "\(report.agents)",
                "seconds": "\(report.seconds)",
            ]
        )
        if let firstStart {
            logger.notice(
                "first start: created organization '\(firstStart.organizationName)' (\(firstStart.timeZone)); its admin key is in \(firstStart.adminKeyPath) (mode 0600)"
            )
        }
        logger.notice(
            "usage tallies: written every \(self.usageSnapshotSeconds) s (a crash loses at most that much of denials and calls by hour; daily counters are exact); \(self.usageRetentionDays == 0 ? "all days kept" : "\(self.usageRetentionDays) days kept")"
        )
        if self.durability == .async {
            logger.warning(
                "durability async: replies leave before their changes are on disk; a crash may lose the last group of changes"
            )
        }
        let server = CallgateServer(store: store, configuration: configuration, logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        defer { store.close() }
        try await group.run()
    }
}

extension StoreConfiguration.Durability: ExpressibleByArgument {}
extension StoreConfiguration.Synchronous: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}
