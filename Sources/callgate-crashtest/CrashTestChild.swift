import CallgateCore
import CallgateStore
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The child process of the crash test (`Tests/CallgateStoreTests/CrashTests.swift`), and a load-time
/// probe for large databases.
///
/// ```
/// callgate-crashtest <db-path> <seed>                          the crash-test workload (runs until killed)
/// callgate-crashtest --build-db <db-path> <numbers> <agents>   creates a large database (if missing)
/// callgate-crashtest --load-test <db-path>                     times Store.open and reports memory
/// ```
///
/// The workload opens the store with `commit` durability, creates (or repairs) 20 agents holding 60
/// numbers, prints `READY`, then runs 4 tasks until the process is killed. Every line goes to stdout
/// in one `write(2)` the moment the change it reports is committed:
///
/// ```
/// A <e164 digits> <count>          an ALLOW whose counter change is committed
/// m <e164 digits> <agent>          a move of the number to <agent> is starting (intent, not acknowledged)
/// M <e164 digits> <agent>          the number is assigned to <agent>, committed
/// READY                            setup is committed; the tasks start
/// ```
@main
struct CrashTestChild {
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            switch arguments.first {
            case "--build-db" where arguments.count == 4:
                guard let numbers = Int(arguments[2]), let agents = Int(arguments[3]), numbers > 0, agents > 0 else {
                    usage()
                }
                try await LoadProbe.build(path: arguments[1], numbers: numbers, agents: agents)
            case "--load-test" where arguments.count == 2:
                try LoadProbe.measure(path: arguments[1])
            case let path? where arguments.count == 2 && !path.hasPrefix("-"):
                guard let seed = UInt64(arguments[1]) else { usage() }
                try await CrashWorkload.run(path: path, seed: seed)
            default:
                usage()
            }
        } catch {
            standardError("callgate-crashtest: \(error)")
            exit(1)
        }
    }

    static func usage() -> Never {
        standardError(
            """
            usage: callgate-crashtest <db-path> <seed>
                   callgate-crashtest --build-db <db-path> <numbers> <agents>
                   callgate-crashtest --load-test <db-path>
            """
        )
        exit(64)
    }
}

// MARK: - Output

/// Writes one line to stdout in a single `write(2)`: unbuffered, so it reaches the parent at once,
/// and never interleaved with another task's line (a pipe write under `PIPE_BUF` is atomic).
func emit(_ line: String) {
    var text = line + "\n"
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 && errno == EINTR { continue }
            // The parent is gone: nobody can hear acknowledgements any more.
            if written <= 0 { exit(2) }
            offset += written
        }
    }
}

func standardError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// SplitMix64: small, seeded, good enough to drive a workload reproducibly.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

// MARK: - The crash-test workload

enum CrashWorkload {
    /// A fixed instant, so the organization's day never rolls over between runs (2026-06-15 15:00 UTC).
    static let instant = Timestamp(seconds: 1_781_535_600)
    static let agentCount = 20
    static let numbersPerAgent = 3
    static let taskCount = 4
    static let dailyLimit: UInt32 = 1_000_000
    /// The child gives up on its own after this long, should its parent never kill it.
    static let maximumSeconds = 120

    static let actor = Actor("crashtest")
    static let agents = (0..<agentCount).map { "agent-\($0)" }
    /// `+1 202 555 0000` and up: 3 per agent.
    static let numbers = (0..<agentCount * numbersPerAgent).map { PhoneNumber(digits: 12_025_550_000 + UInt64($0))! }

    static func run(path: String, seed: UInt64) async throws {
        let store = try Store.open(
            StoreConfiguration(path: path, durability: .commit),
            clock: ManualClock(instant)
        )
        let org = try await self.setUp(store)
        emit("READY")

        let writer = store.writer
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<self.taskCount {
                group.addTask { try await self.work(task: task, seed: seed, org: org, writer: writer) }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(self.maximumSeconds))
                standardError("callgate-crashtest: not killed within \(self.maximumSeconds) s; exiting")
                exit(3)
            }
            try await group.waitForAll()
        }
    }

    /// Creates the organization, agents and numbers that are missing, and assigns every number that
    /// holds no assignment (first run, or a move cut short by the kill between its release and its
    /// assign) to its home agent. Prints `M` for each assignment made, once committed.
    static func setUp(_ store: Store) async throws -> Organization {
        let org =
            try store.engine.organization(OrganizationID(1))
            ?? store.engine.createOrganization(name: "Crash test", timeZone: "UTC", actor: actor)
        for agent in self.agents where org.agent(agent) == nil {
            try org.upsertAgent(AgentInput(id: agent), actor: self.actor)
        }
        var assigned: [(PhoneNumber, String)] = []
        for (index, number) in self.numbers.enumerated() {
            if org.number(number) == nil {
                try org.addNumber(NumberInput(number: number, provider: "crashtest"), actor: self.actor)
            }
            guard case .available? = org.number(number)?.state else { continue }
            let home = self.agents[index / self.numbersPerAgent]
            try org.assign(
                number,
                to: home,
                terms: AssignmentTerms(dailyLimit: self.dailyLimit),
                actor: self.actor
            )
            assigned.append((number, home))
        }
        // The agents and numbers were recorded before the last assignment: one wait covers them all.
        try await store.writer.flush()
        for (number, agent) in assigned { emit("M \(number.digits) \(agent)") }
        return org
    }

    /// One task: ~90% AuthorizeCall for a random agent, ~10% moving one of this task's numbers to
    /// another agent. Task `t` moves only the numbers whose index is `t` modulo the task count, so no
    /// two tasks ever move the same number.
    static func work(task: Int, seed: UInt64, org: Organization, writer: ChangeWriter) async throws {
        var rng = SplitMix64(state: seed &* 0x1_0000_0001 &+ UInt64(task))
        let mine = self.numbers.indices.filter { $0 % self.taskCount == task }.map { self.numbers[$0] }
        let terms = AssignmentTerms(dailyLimit: self.dailyLimit)
        while true {
            if rng.next() % 10 == 0 {
                let number = mine[Int(rng.next() % UInt64(mine.count))]
                guard case .assigned(let holder)? = org.number(number)?.state else {
                    throw CallgateError(.internal, "number \(number.digits) is not assigned")
                }
                var target = holder
                while target == holder { target = self.agents[Int(rng.next() % UInt64(self.agents.count))] }
                emit("m \(number.digits) \(target)")
                try org.release(number, expectedAgent: holder, actor: self.actor)
                let (_, ticket) = try org.assign(number, to: target, terms: terms, actor: self.actor)
                try await writer.waitForCommit(ticket)
                emit("M \(number.digits) \(target)")
            } else {
                let agent = self.agents[Int(rng.next() % UInt64(self.agents.count))]
                let destination = PhoneNumber(digits: 12_125_550_100 + rng.next() % 100)!
                let decision = try org.authorizeCall(agent: agent, destination: destination)
                // A DENY (an agent whose numbers were all moved away) changes nothing.
                guard decision.isAllowed, let ticket = decision.ticket, let callerID = decision.callerID else {
                    await Task.yield()
                    continue
                }
                try await writer.waitForCommit(ticket)
                emit("A \(callerID.digits) \(decision.count)")
            }
        }
    }
}

// MARK: - Load probe

/// Builds a large database through the public API, and measures how long `Store.open` takes to load
/// it and how much memory the loaded engine holds. Building and measuring are separate processes, so
/// the building process's heap does not inflate the measured resident memory.
enum LoadProbe {
    static let actor = Actor("load-probe")

    /// Creates `numbers` numbers over `agents` agents (round robin), assigned with the maximum daily
    /// limit, and counts one call on each number (so every number has a counter row, as after a
    /// working day). Does nothing when the file exists.
    static func build(path: String, numbers: Int, agents: Int) async throws {
        guard !FileManager.default.fileExists(atPath: path) else {
            print("\(path) exists; not rebuilding")
            return
        }
        let started = Date()
        let store = try Store.open(StoreConfiguration(path: path, durability: .async), clock: SystemClock())
        let org = try store.engine.createOrganization(name: "Load probe", timeZone: "America/New_York", actor: actor)
        // The writer's queue holds 2^18 changes: wait for it now and then.
        var pending = 0
        func step() async throws {
            pending += 1
            if pending == 50_000 {
                pending = 0
                try await store.writer.flush()
            }
        }
        let ids = (0..<agents).map { "agent-\($0)" }
        for id in ids {
            try org.upsertAgent(AgentInput(id: id, displayName: "Agent \(id)"), actor: self.actor)
            try await step()
        }
        let terms = AssignmentTerms(dailyLimit: AssignmentTerms.maximumDailyLimit)
        let areaCodes: [UInt64] = [201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218]
        for index in 0..<numbers {
            let areaCode = areaCodes[index % areaCodes.count]
            let subscriber = 2_000_000 + UInt64(index / areaCodes.count)
            let number = PhoneNumber(digits: 10_000_000_000 + areaCode * 10_000_000 + subscriber)!
            try org.addNumber(
                NumberInput(number: number, provider: "telnyx", tags: ["pool-\(index % 8)"]),
                actor: actor
            )
            try await step()
            try org.assign(number, to: ids[index % agents], terms: terms, actor: self.actor)
            try await step()
        }
        // One call per number: number `i` is agent `i % agents`'s, and the most-remaining rule spreads
        // an agent's calls over its numbers.
        let destination = PhoneNumber(digits: 12_125_550_199)!
        for index in 0..<numbers {
            _ = try org.authorizeCall(agent: ids[index % agents], destination: destination)
            try await step()
        }
        try await store.writer.flush()
        store.close()
        let stats = store.writer.statistics
        print(
            "built \(path): \(numbers) numbers, \(agents) agents, \(stats.changes) changes in \(stats.batches) "
                + "transactions, \(String(format: "%.1f", Date().timeIntervalSince(started))) s"
        )
    }

    /// Opens the store, reports the load time and memory, and closes it.
    static func measure(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CallgateError(.notFound, "\(path) does not exist; build it with --build-db")
        }
        let before = self.memory()
        let started = DispatchTime.now().uptimeNanoseconds
        let store = try Store.open(StoreConfiguration(path: path), clock: SystemClock())
        let opened = DispatchTime.now().uptimeNanoseconds
        let report = store.loadReport
        let loaded = self.memory()
        store.close()
        let closed = DispatchTime.now().uptimeNanoseconds
        func seconds(_ ns: UInt64) -> String { String(format: "%.3f", Double(ns) / 1e9) }
        func mib(_ kib: Int) -> String { String(format: "%.1f", Double(kib) / 1024) }
        print(
            "open \(seconds(opened - started)) s (load \(String(format: "%.3f", report.seconds)) s), "
                + "close \(seconds(closed - opened)) s; \(report.numbers) numbers, \(report.agents) agents, "
                + "\(report.assignments) assignments; RSS before \(mib(before.rss)) MiB, after open "
                + "\(mib(loaded.rss)) MiB, peak (VmHWM) \(mib(loaded.hwm)) MiB"
        )
    }

    /// VmRSS and VmHWM of this process, in KiB (0 where /proc is not available).
    static func memory() -> (rss: Int, hwm: Int) {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return (field("VmRSS"), field("VmHWM"))
    }
}
