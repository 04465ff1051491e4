import Synchronization
import Testing

@testable import CallgateCore

/// Usage tallies taken while decisions are being counted: nothing lost, nothing counted twice. (The
/// name ends in `ConcurrencyTests`, so CI's thread-sanitizer pass runs it too.)
@Suite struct UsageConcurrencyTests {
    @Test func takingWhileCountingLosesNothing() throws {
        let f = try Fixture()
        try f.agent("a1", numbers: ["+1 202 555 0101", "+1 202 555 0102"], limit: 1_000_000)
        try f.agent("a2", numbers: ["+1 202 555 0201"], limit: 1_000_000)
        let org = f.org
        let destination = num("+1 212 555 0199")
        let done = Atomic<Int>(0)
        let stored = Locked<(allowed: UInt64, denied: UInt64)>((0, 0))  // not Mutex: TSan cannot see its futex
        onThreads(5) { thread in
            if thread == 4 {
                // The store: takes and confirms (every third take is refused and taken again later).
                var round = 0
                while done.load(ordering: .acquiring) < 4 {
                    for part in org.takeUsage().parts {
                        round += 1
                        guard round % 3 != 0 else {
                            org.usageNotStored(part)
                            continue
                        }
                        let allowed = part.records.reduce(0) { $0 + $1.allowed }
                        let denied = part.records.reduce(0) { $0 + $1.denied.reduce(0) { $0 + UInt64($1) } }
                        stored.withLock {
                            $0.allowed += allowed
                            $0.denied += denied
                        }
                        org.usageStored(part)
                    }
                    org.reserveUsageCapacity()
                }
                return
            }
            for i in 0..<2000 {
                let agent = ["a1", "a2", "ghost"][(thread + i) % 3]
                _ = try? org.authorizeCall(agent: agent, destination: destination)
            }
            done.add(1, ordering: .releasing)
        }
        for part in org.takeUsage().parts {
            let allowed = part.records.reduce(0) { $0 + $1.allowed }
            let denied = part.records.reduce(0) { $0 + $1.denied.reduce(0) { $0 + UInt64($1) } }
            stored.withLock {
                $0.allowed += allowed
                $0.denied += denied
            }
            org.usageStored(part)
        }
        // 4 threads × 2,000 decisions: a third of them for the unknown agent.
        let total = stored.withLock { $0 }
        let ghost = (0..<4).reduce(0) { sum, thread in sum + (0..<2000).filter { (thread + $0) % 3 == 2 }.count }
        #expect(total.allowed == UInt64(8000 - ghost))
        #expect(total.denied == UInt64(ghost))
        #expect(org.takeUsage().parts.isEmpty)
    }
}
