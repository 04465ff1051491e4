import CallgateCore
import CallgateStore
import Dispatch
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Kills a writing process with SIGKILL, again and again, and checks after each kill that everything it
/// acknowledged is in the database.
///
/// The child (`callgate-crashtest <db> <seed>`, Sources/callgate-crashtest) runs 4 tasks in `commit`
/// mode: ALLOWs for random agents and moves of numbers between agents; it prints a line for each change
/// once it is committed (see its documentation for the protocol). Each cycle starts the child on the
/// same database, kills it 150–600 ms after `READY`, opens the store here and checks:
///
/// - every number's counter ≥ the highest count acknowledged for it, and each acknowledged count is
///   new (above the count found after the previous kill) and acknowledged once;
/// - the calls found beyond the acknowledged ones are at most the ALLOWs that can be in flight: each
///   task has at most one (decided and recorded, its line not yet written), and a task in the middle of
///   a move (an `m` line without its `M`) has none, so the bound is `4 − moves in flight`;
/// - every number is held by at most one agent; a number whose last line is an `M` is held by that
///   agent; a number with a move in flight by its previous holder, the move's target, or (killed
///   between the release and the assign) nobody, which the next child repairs (and prints `M` for).
@Suite struct CrashTests {
    static let cycles = 5
    static let taskCount = 4
    static let numberCount = 60
    static let agentCount = 20
    /// The child's clock (fixed, so the day never rolls over).
    static let instant = Timestamp(seconds: 1_781_535_600)

    /// The child executable, built next to the test bundle (`swift build --build-tests` and `swift test`
    /// build every product). `CALLGATE_CRASHTEST` overrides the location.
    static let executable: URL? = {
        let fileManager = FileManager.default
        if let path = ProcessInfo.processInfo.environment["CALLGATE_CRASHTEST"] {
            return fileManager.isExecutableFile(atPath: path) ? URL(fileURLWithPath: path) : nil
        }
        // On Linux the test runner is the `.xctest` executable itself; on macOS it is a bundle in the
        // build directory. Look in the directories around each.
        var places = [
            URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath(),
            Bundle.main.bundleURL,
        ]
        places += Bundle.allBundles.map(\.bundleURL).filter { $0.pathExtension == "xctest" }
        for place in places {
            var directory = place
            for _ in 0..<4 {
                let candidate = directory.appendingPathComponent("callgate-crashtest")
                if fileManager.isExecutableFile(atPath: candidate.path) { return candidate }
                directory = directory.deletingLastPathComponent()
            }
        }
        return nil
    }()

    @Test(
        .enabled(
            // In CI (CI is set) it always runs, so a missing child fails instead of skipping.
            if: CrashTests.executable != nil || ProcessInfo.processInfo.environment["CI"] != nil,
            "callgate-crashtest is not built next to the test bundle (swift build --build-tests builds it)"
        ),
        .timeLimit(.minutes(1))
    )
    func acknowledgedChangesSurviveSIGKILL() async throws {
        let executable = try #require(Self.executable)
        let (path, cleanup) = temporaryDatabase()
        defer { cleanup() }
        var random = SystemRandomNumberGenerator()
        let runSeed = UInt64.random(in: 1...1_000_000, using: &random)

        var model = Model()
        var totalAllows = 0
        var totalMoves = 0
        var maxGap = 0
        var gaps: [Int] = []
        for cycle in 0..<Self.cycles {
            let seed = runSeed &* 31 &+ UInt64(cycle)
            let delay = Int.random(in: 150...600, using: &random)
            let run = try await Self.runChild(executable, path: path, seed: seed, killAfterMilliseconds: delay)
            let context = "cycle \(cycle), seed \(seed), killed \(delay) ms after READY"
            try #require(run.ready, "the child never printed READY (\(context)); stderr:\n\(run.stderr)")
            #expect(
                run.killedBySIGKILL,
                "the child was not alive when killed (\(context)); stderr:\n\(run.stderr)"
            )

            let store = try Store.open(StoreConfiguration(path: path), clock: ManualClock(Self.instant))
            defer { store.close() }
            let org = try #require(store.engine.organization(OrganizationID(1)))
            let found = try State(org)
            let cycleReport = try model.check(run.lines, against: found, context: context)
            totalAllows += cycleReport.allows
            totalMoves += cycleReport.moves
            maxGap = max(maxGap, cycleReport.gap)
            gaps.append(cycleReport.gap)
        }
        #expect(totalAllows > 0, "no ALLOW was acknowledged in \(Self.cycles) cycles")
        print(
            "crash test: \(Self.cycles) SIGKILLs, \(totalAllows) ALLOWs and \(totalMoves) assignments (setup, "
                + "moves, repairs) acknowledged, unacknowledged calls found per kill \(gaps) (max \(maxGap), "
                + "bound ≤ \(Self.taskCount)), seed \(runSeed)"
        )
    }

    // MARK: - The child

    struct ChildRun {
        var ready = false
        var killedBySIGKILL = false
        /// Complete lines (a line cut by the kill is dropped: it was never acknowledged).
        var lines: [Substring] = []
        var stderr = ""
    }

    /// Runs the child until `killAfterMilliseconds` after its READY, kills it with SIGKILL, and returns
    /// what it printed.
    static func runChild(
        _ executable: URL,
        path: String,
        seed: UInt64,
        killAfterMilliseconds delay: Int
    ) async throws -> ChildRun {
        let errorPath = path + ".stderr"
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        let errorHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
        defer { try? errorHandle.close() }
        let process = Process()
        process.executableURL = executable
        process.arguments = [path, String(seed)]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = errorHandle
        let reader = LineReader(pipe.fileHandleForReading.fileDescriptor)
        try process.run()
        defer {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        var run = ChildRun()
        // Setup of a debug build on a busy 2-core machine takes well under a second; allow plenty.
        // (Polling: the test does not block a thread of the cooperative pool while it waits.)
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline && process.isRunning {
            if reader.ready.wait(timeout: .now()) == .success {
                run.ready = true
                break
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        if !run.ready { run.ready = reader.ready.wait(timeout: .now()) == .success }
        if run.ready {
            try await Task.sleep(for: .milliseconds(delay))
            run.killedBySIGKILL = process.isRunning && kill(process.processIdentifier, SIGKILL) == 0
        } else {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        run.killedBySIGKILL =
            run.killedBySIGKILL && process.terminationReason == .uncaughtSignal
            && process.terminationStatus == SIGKILL
        run.lines = reader.finish()
        run.stderr = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        return run
    }

    /// Reads the child's stdout on a thread of its own (so the pipe never fills), splitting lines.
    final class LineReader: @unchecked Sendable {
        // @unchecked: `buffer` and `stop` are guarded by `lock`; `ready` and `done` are semaphores.
        private let fd: Int32
        private let lock = NSLock()
        private var buffer: [UInt8] = []
        private var stop = false
        let ready = DispatchSemaphore(value: 0)
        private let done = DispatchSemaphore(value: 0)

        init(_ fd: Int32) {
            self.fd = fd
            let thread = Thread { [self] in self.run() }
            thread.start()
        }

        private func run() {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            var sawReady = false
            while true {
                // Poll, so that a write end kept open elsewhere cannot block `finish` forever.
                var pfd = pollfd(fd: self.fd, events: Int16(POLLIN), revents: 0)
                let polled = poll(&pfd, 1, 50)
                if polled == 0 {
                    if self.lock.withLock({ self.stop }) { break }
                    continue
                }
                if polled < 0 {
                    if errno == EINTR { continue }
                    break
                }
                let count = chunk.withUnsafeMutableBytes { read(self.fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }  // EOF: the child is gone
                self.lock.withLock { self.buffer.append(contentsOf: chunk[0..<count]) }
                if !sawReady {
                    let text = self.lock.withLock { String(decoding: self.buffer, as: UTF8.self) }
                    if text.contains("READY\n") {
                        sawReady = true
                        self.ready.signal()
                    }
                }
            }
            self.done.signal()
        }

        /// After the child exited: the complete lines it printed.
        func finish() -> [Substring] {
            self.lock.withLock { self.stop = true }
            self.done.wait()
            let text = self.lock.withLock { String(decoding: self.buffer, as: UTF8.self) }
            // Only lines ended by a newline count; the last one may have been cut by the kill.
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            lines.removeLast()
            return lines
        }
    }

    // MARK: - What the store holds

    /// Each number's counter and holder, read from a freshly opened store.
    struct State {
        var counts: [UInt64: UInt32] = [:]
        var holders: [UInt64: String] = [:]

        init(_ org: Organization) throws {
            let numbers = Array((0..<CrashTests.numberCount).map { 12_025_550_000 + UInt64($0) })
            for digits in numbers {
                let record = try #require(org.number(PhoneNumber(digits: digits)!), "number \(digits) is missing")
                self.counts[digits] = record.counter.count
                if case .assigned(let agent) = record.state { self.holders[digits] = agent }
            }
            // The agents' side must agree with the pool's: each number held by exactly the agent the
            // pool names, and by no other.
            var heldBy: [UInt64: [String]] = [:]
            for a in 0..<CrashTests.agentCount {
                let agent = "agent-\(a)"
                #expect(org.agent(agent) != nil, "agent \(agent) is missing")
                for assignment in try org.assignments(of: agent) {
                    heldBy[assignment.number.digits, default: []].append(agent)
                }
            }
            for digits in numbers {
                let agents = heldBy[digits] ?? []
                #expect(agents.count <= 1, "number \(digits) is held by \(agents)")
                #expect(agents.first == self.holders[digits], "number \(digits): pool and agents disagree")
            }
        }
    }

    // MARK: - What the child acknowledged

    /// The acknowledged state, carried across cycles.
    struct Model {
        /// Each number's counter as found after the previous kill (0 before the first).
        var baseline: [UInt64: UInt32] = [:]
        /// Each number's holder as last acknowledged (or found after the previous kill).
        var holders: [UInt64: String] = [:]

        struct CycleReport {
            var allows = 0
            var moves = 0
            /// Calls found beyond the acknowledged ones.
            var gap = 0
        }

        mutating func check(_ lines: [Substring], against found: State, context: String) throws -> CycleReport {
            var report = CycleReport()
            var acknowledged: [UInt64: Set<UInt32>] = [:]
            /// Moves started (`m`) and not acknowledged (`M`): number → (previous holder, target).
            var inFlight: [UInt64: (from: String?, to: String)] = [:]
            for line in lines {
                let fields = line.split(separator: " ")
                switch (fields.first, fields.count) {
                case ("READY"?, 1):
                    continue
                case ("A"?, 3):
                    let digits = try #require(UInt64(fields[1]))
                    let count = try #require(UInt32(fields[2]))
                    let (inserted, _) = acknowledged[digits, default: []].insert(count)
                    #expect(inserted, "count \(count) of \(digits) acknowledged twice (\(context))")
                    #expect(
                        count > self.baseline[digits, default: 0],
                        "count \(count) of \(digits) acknowledged again after a restart (\(context))"
                    )
                    report.allows += 1
                case ("m"?, 3):
                    let digits = try #require(UInt64(fields[1]))
                    #expect(inFlight[digits] == nil, "two moves of \(digits) at once (\(context))")
                    inFlight[digits] = (self.holders[digits], String(fields[2]))
                case ("M"?, 3):
                    let digits = try #require(UInt64(fields[1]))
                    self.holders[digits] = String(fields[2])
                    inFlight[digits] = nil
                    report.moves += 1
                default:
                    Issue.record("unexpected line '\(line)' from the child (\(context))")
                }
            }

            // Counters: nothing acknowledged is lost; what was not acknowledged is what was in flight.
            let bound = CrashTests.taskCount - inFlight.count
            var added = 0
            for (digits, stored) in found.counts {
                let base = self.baseline[digits, default: 0]
                let highest = acknowledged[digits]?.max() ?? base
                #expect(
                    stored >= highest,
                    "number \(digits): counter \(stored) < acknowledged count \(highest) (\(context))"
                )
                guard stored >= highest else { continue }
                report.gap += Int(stored - highest)
                added += Int(stored - base)
            }
            #expect(
                report.gap <= bound,
                "\(report.gap) calls beyond the acknowledged ones, at most \(bound) can be in flight (\(context))"
            )
            // Every call found is an acknowledged ALLOW or one in flight, and no acknowledged one is missing.
            #expect(
                added >= report.allows && added - report.allows <= bound,
                "\(added) calls counted since the last kill, \(report.allows) acknowledged, bound \(bound) (\(context))"
            )

            // Assignments.
            for digits in found.counts.keys {
                let holder = found.holders[digits]
                if let move = inFlight[digits] {
                    let held = holder ?? "nobody"
                    #expect(
                        holder == nil || holder == move.from || holder == move.to,
                        "number \(digits) (moving \(move.from ?? "-") → \(move.to)) is held by \(held) (\(context))"
                    )
                } else {
                    let (held, expected) = (holder ?? "nobody", self.holders[digits] ?? "nobody")
                    #expect(
                        holder != nil && holder == self.holders[digits],
                        "number \(digits) is held by \(held), acknowledged \(expected) (\(context))"
                    )
                }
            }
            #expect(
                found.holders.count >= CrashTests.numberCount - inFlight.count,
                "\(found.holders.count) numbers assigned, \(inFlight.count) moves in flight (\(context))"
            )

            // What was found is the truth the next child starts from.
            self.baseline = found.counts
            self.holders = found.holders
            return report
        }
    }
}
