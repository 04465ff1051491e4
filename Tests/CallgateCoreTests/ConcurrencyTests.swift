import Foundation
import Synchronization
import Testing

@testable import CallgateCore

/// Runs `body(thread)` on `count` OS threads at once and waits for all of them.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    let start = DispatchSemaphore(value: 0)
    for i in 0..<count {
        group.enter()
        let thread = Thread {
            start.wait()
            body(i)
            group.leave()
        }
        thread.start()
    }
    for _ in 0..<count { start.signal() }
    group.wait()
}

@Suite struct ConcurrencyTests {
    @Test func manyThreadsAtTheLimitGrantExactlyTheLimit() throws {
        let f = try Fixture()
        let numbers = try f.agent("hot", numbers: ["+1 202 555 0101", "+1 202 555 0102"], limit: 500)
        let allowed = Atomic<Int>(0)
        let denied = Atomic<Int>(0)
        let org = f.org
        let destination = num("+1 212 555 0199")
        onThreads(8) { _ in
            for _ in 0..<400 {
                guard let d = try? org.authorizeCall(agent: "hot", destination: destination) else { continue }
                if d.isAllowed {
                    allowed.add(1, ordering: .relaxed)
                } else {
                    #expect(d.denyReason == .dailyLimitReached)
                    denied.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(allowed.load(ordering: .relaxed) == 1000)
        #expect(denied.load(ordering: .relaxed) == 3200 - 1000)
        let usage = try f.org.assignments(of: "hot")
        #expect(usage.map(\.countToday) == [500, 500])
        // The last recorded count per number is the limit: the store would persist exactly that.
        var last: [PhoneNumber: UInt32] = [:]
        for record in f.log.records {
            if case .counter(let n, _, let c) = record.event { last[n] = c }
        }
        #expect(last == [numbers[0]: 500, numbers[1]: 500])
    }

    @Test func concurrentPickersNeverGetTheSameNumber() throws {
        let f = try Fixture()
        for i in 0..<200 {
            try f.org.addNumber(
                NumberInput(number: PhoneNumber(digits: 1_202_555_0000 + UInt64(i))!, provider: "x"),
                actor: admin
            )
        }
        let org = f.org
        let picked = Locked<[PhoneNumber]>([])
        let misses = Atomic<Int>(0)
        onThreads(8) { _ in
            for _ in 0..<40 {
                do throws(CallgateError) {
                    let r = try org.pickNumber(NumberCriteria(), mode: .reserve(seconds: 600), actor: admin)
                    picked.withLock { $0.append(r.number.number) }
                } catch {
                    #expect(error.code == .notFound)
                    misses.add(1, ordering: .relaxed)
                }
            }
        }
        let all = picked.withLock { $0 }
        #expect(all.count == 200)
        #expect(Set(all).count == 200)
        #expect(misses.load(ordering: .relaxed) == 120)
    }

    @Test func moveBetweenAgentsUnderLoadNeverOvergrants() throws {
        let f = try Fixture()
        let n = try f.agent("a1", numbers: ["+1 202 555 0101"], limit: 300)
        try f.org.upsertAgent(AgentInput(id: "a2"), actor: admin)
        let org = f.org
        let allowed = Atomic<Int>(0)
        let destination = num("+1 212 555 0199")
        onThreads(5) { thread in
            if thread == 0 {
                // Moves the number back and forth while the others authorize.
                for i in 0..<200 {
                    let (from, to) = i % 2 == 0 ? ("a1", "a2") : ("a2", "a1")
                    do {
                        try org.release(n[0], expectedAgent: from, actor: admin)
                        try org.assign(n[0], to: to, terms: AssignmentTerms(dailyLimit: 300), actor: admin)
                    } catch {
                        Issue.record("move failed: \(error)")
                    }
                }
            } else {
                for _ in 0..<400 {
                    let agent = thread % 2 == 0 ? "a1" : "a2"
                    if (try? org.authorizeCall(agent: agent, destination: destination))?.isAllowed == true {
                        allowed.add(1, ordering: .relaxed)
                    }
                }
            }
        }
        #expect(allowed.load(ordering: .relaxed) <= 300)
        #expect(f.org.number(n[0])?.counter.count == UInt32(allowed.load(ordering: .relaxed)))
    }

    @Test func directoryGrowsWhileReadersProbeWithoutLocks() throws {
        let f = try Fixture()
        let org = f.org
        let found = Atomic<Int>(0)
        onThreads(4) { thread in
            if thread == 0 {
                for i in 0..<3000 {
                    _ = try? org.upsertAgent(AgentInput(id: "agent-\(i)"), actor: admin)
                }
            } else {
                for round in 0..<3 {
                    for i in stride(from: thread + round, to: 3000, by: 7) {
                        // Either not there yet or exactly the right agent: never another one.
                        if let entry = org.directory.lookup("agent-\(i)") {
                            #expect(entry.id == "agent-\(i)")
                            found.add(1, ordering: .relaxed)
                        }
                    }
                }
            }
        }
        #expect(org.directory.count == 3000)
        for i in 0..<3000 { #expect(org.directory.lookup("agent-\(i)")?.id == "agent-\(i)") }
        #expect(org.directory.lookup("agent-3000") == nil)
        #expect(org.directory.lookup("") == nil)
    }
}
