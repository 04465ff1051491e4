import Benchmark
import BenchmarkSupport
import CallgateCore

// Inventory reads on the engine alone: one page of `listNumbers` over an organization of 1,000,000
// numbers, at a random cursor each iteration (precomputed, so the measured loop only lists).
//
// - `unfiltered`: the next 100 numbers after the cursor.
// - `prefix` / `area code`: the next 100 numbers of one area code (+1 212, ~17,900 numbers) after a
//   random cursor inside it: the prefix becomes a digit range of the sorted pool.
// - `pattern`: `+1212??????0`: the same range, each number tested against the pattern (1 in 10 match).
// - `rare tag (scan)`: a tag carried by 1 number in 10,000: filters that do not narrow the range test
//   the numbers after the cursor one by one, and a page stops after `Organization.listScanBudget`
//   (50,000) of them, with about 5 matches: the documented worst case per page.
//
// One iteration = one page; figures are per page.
//
// And bulk import on the engine (the store's transaction is not included; `callgate numbers import`
// against `callgated` measures the whole path): `import 100k rows` parses a 100,000-row CSV
// (`number,provider,country,location,tags,type,capabilities`) and adds every number to an empty
// organization as one change; `parse 100k rows` is the parsing and row checks alone.

/// A change sink that keeps nothing: this measures the engine.
final class DiscardingChangeSink: ChangeSink {
    func record(_ change: ChangeRecord) throws(CallgateError) -> ChangeTicket { ChangeTicket(sequence: 0) }
}

struct BenchmarkSetupError: Error, CustomStringConvertible {
    let message: String
    var description: String { self.message }
}

/// One organization with `count` US numbers over 56 area codes; every 10,000th carries the tag `rare`.
final class InventoryFixture: Sendable {
    let organization: Organization
    /// Every number, ascending.
    let numbers: [PhoneNumber]

    init(count: Int) throws {
        let engine = Engine(clock: SystemClock(), changes: DiscardingChangeSink())
        self.organization = try engine.createOrganization(name: "Bench", timeZone: "UTC", actor: .system)
        // Added in ascending order, as a load from the store does.
        self.numbers = (0..<count).map { usNumber($0, firstSubscriber: 2_000_000) }.sorted()
        for (i, number) in self.numbers.enumerated() {
            try self.organization.addNumber(
                NumberInput(number: number, provider: "telnyx", tags: i % 10_000 == 5_000 ? ["rare"] : []),
                actor: .system
            )
        }
    }
}

/// The fixture and the cursors the iterations start from.
struct PageState {
    let fixture: InventoryFixture
    let filter: NumberFilter
    let cursors: [String]
}

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        timeUnits: .microseconds,
        warmupIterations: 10,
        scalingFactor: .one,
        maxDuration: .seconds(3),
        maxIterations: 20_000
    )
    let size = 1_000_000
    let pageSize = 100

    let cases: [(String, NumberFilter, (PhoneNumber) -> Bool, Int)] = [
        ("Inventory page 100 of 1M, unfiltered", NumberFilter(), { _ in true }, pageSize),
        (
            "Inventory page 100 of 1M, prefix", NumberFilter(criteria: NumberCriteria(prefix: "1212")),
            { $0.nanpAreaCode == 212 }, pageSize
        ),
        (
            "Inventory page 100 of 1M, area code", NumberFilter(criteria: NumberCriteria(areaCode: "212")),
            { $0.nanpAreaCode == 212 }, pageSize
        ),
        (
            "Inventory page 100 of 1M, pattern", NumberFilter(criteria: NumberCriteria(pattern: "+1212??????0")),
            { $0.nanpAreaCode == 212 }, pageSize
        ),
        (
            "Inventory page 100 of 1M, rare tag (scan)", NumberFilter(criteria: NumberCriteria(tag: "rare")),
            { _ in true }, 0
        ),
    ]

    let importConfiguration = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal],
        timeUnits: .milliseconds,
        warmupIterations: 1,
        scalingFactor: .one,
        maxDuration: .seconds(10),
        maxIterations: 20
    )
    Benchmark("Inventory parse 100k rows", configuration: importConfiguration) { (benchmark, csv: String) throws in
        benchmark.startMeasurement()
        let file = try ImportFile.parse(csv)
        benchmark.stopMeasurement()
        if file.rows.count != 100_000 { benchmark.error("\(file.rows.count) rows") }
        blackHole(file)
    } setup: {
        importCSV(rows: 100_000)
    }
    Benchmark("Inventory import 100k rows", configuration: importConfiguration) { (benchmark, csv: String) throws in
        let engine = Engine(clock: SystemClock(), changes: DiscardingChangeSink())
        let organization = try engine.createOrganization(name: "Bench", timeZone: "UTC", actor: .system)
        benchmark.startMeasurement()
        let report = try organization.importNumbers(csv: csv, actor: .system)
        benchmark.stopMeasurement()
        if report.added != 100_000 { benchmark.error("\(report.added) added, \(report.rejected) rejected") }
    } setup: {
        importCSV(rows: 100_000)
    }

    for (name, filter, inRange, minimum) in cases {
        Benchmark(name, configuration: configuration) { (benchmark, state: PageState) throws in
            let organization = state.fixture.organization
            let cursors = state.cursors
            var i = 0
            var listed = 0
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                let page = try organization.listNumbers(state.filter, cursor: cursors[i], limit: pageSize)
                listed &+= page.items.count
                blackHole(page)
                i = i + 1 == cursors.count ? 0 : i + 1
            }
            benchmark.stopMeasurement()
            if listed < minimum * benchmark.scaledIterations.count {
                benchmark.error("pages came back short: \(listed) numbers in \(benchmark.scaledIterations.count) pages")
            }
        } setup: {
            let fixture = try InventoryFixture(count: size)
            // Random cursors among the numbers the filter ranges over, leaving room for a full page.
            let candidates = fixture.numbers.filter(inRange)
            guard candidates.count > 2 * pageSize else {
                throw BenchmarkSetupError(message: "only \(candidates.count) numbers in range")
            }
            var rng = SplitMix64(state: 7)
            let last = candidates.count - 10 * pageSize
            let cursors = (0..<4096).map { _ in String(candidates[Int(rng.next() % UInt64(last))].digits) }
            return PageState(fixture: fixture, filter: filter, cursors: cursors)
        }
    }
}

/// A CSV of `rows` distinct US numbers with every column.
func importCSV(rows: Int) -> String {
    var csv = "number,provider,country,location,tags,type,capabilities\n"
    csv.reserveCapacity(rows * 72)
    for i in 0..<rows {
        let number = usNumber(i, firstSubscriber: 2_000_000)
        csv += "\(number.e164),telnyx,US,Office \(i % 50),pool-\(i % 7);dept-\(i % 3),did,voice;sms\n"
    }
    return csv
}
