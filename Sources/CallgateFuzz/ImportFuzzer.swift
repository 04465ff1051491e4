public import CallgateCore

/// Runs bytes through the CSV importer and the number parser, as `numbers import` and every request
/// carrying a number do. Invariants are checked with `precondition`, so a violation is a crash that
/// libFuzzer reports:
/// - the parser either refuses the file with a reason or gives one row per data line, with line numbers
///   inside the file, in order;
/// - the report has one result per row and its totals add up; a dry run changes nothing;
/// - after an import, every added or updated number is in the organization with the row's provider and
///   country, and a rejected row has a reason;
/// - a number that parses prints as E.164 that parses back to the same number, with at most 15 digits.
///
/// The first byte chooses the mode: even = dry run, odd = apply. The organization is replaced every
/// 512 inputs so that it stays small.
public final class ImportFuzzer {
    private var engine: Engine
    private var org: Organization
    private var runs = 0
    private static let actor = Actor("key:fuzz")

    public init() throws {
        (self.engine, self.org) = try Self.makeOrganization()
    }

    private static func makeOrganization() throws -> (Engine, Organization) {
        let engine = Engine(
            clock: ManualClock(Timestamp(seconds: 1_790_000_000)),
            changes: InMemoryChangeLog(keepRecords: false)
        )
        let org = try engine.createOrganization(name: "Fuzz", timeZone: "America/New_York", actor: .system)
        return (engine, org)
    }

    public func run(_ input: UnsafeRawBufferPointer) {
        guard let mode = input.first else { return }
        self.runs += 1
        if self.runs % 512 == 0, let fresh = try? Self.makeOrganization() {
            (self.engine, self.org) = fresh
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: input.dropFirst()), as: UTF8.self)
        Self.checkNumbers(in: text)

        let file: ImportFile
        do {
            file = try ImportFile.parse(text, defaultProvider: mode & 2 == 0 ? nil : "telnyx")
        } catch {
            precondition(!error.message.isEmpty, "a refused file without a reason")
            return
        }
        let lineCount = Self.lineCount(text)
        var previous = 0
        for row in file.rows {
            precondition(row.line > previous && row.line <= lineCount, "row line \(row.line) of \(lineCount)")
            previous = row.line
        }

        let dryRun = mode & 1 == 0
        let countBefore = self.org.inventoryCounts().numbers
        let report: ImportReport
        do {
            report = try self.org.importNumbers(file, dryRun: dryRun, actor: Self.actor)
        } catch {
            precondition(!error.message.isEmpty, "a refused import without a reason")
            return
        }
        precondition(report.rows.count == file.rows.count, "one result per row")
        precondition(report.added + report.unchanged + report.updated + report.rejected == report.rows.count)
        if dryRun {
            precondition(self.org.inventoryCounts().numbers == countBefore, "a dry run changed the inventory")
            return
        }
        precondition(self.org.inventoryCounts().numbers == countBefore + report.added, "added numbers missing")
        for (row, result) in zip(file.rows, report.rows) {
            switch result.outcome {
            case .rejected:
                precondition(!result.reason.isEmpty, "a rejected row without a reason")
            case .added, .updated, .unchanged:
                guard let number = row.number, case .success(let values) = row.values else {
                    preconditionFailure("a row without a number or values was applied")
                }
                guard let record = self.org.number(number) else {
                    preconditionFailure("an imported number is missing")
                }
                // A number repeated in the file is rejected, so the stored record is this row's.
                precondition(record.attributes.country == values.country, "country differs after import")
                precondition(record.attributes.provider == values.provider, "provider differs after import")
            }
        }
    }

    /// Lines as the importer counts them: `\n`, `\r\n` and a lone `\r` each end one.
    static func lineCount(_ text: String) -> Int {
        var lines = 1
        var previous: UInt8 = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: "\r") || (byte == UInt8(ascii: "\n") && previous != UInt8(ascii: "\r")) {
                lines += 1
            }
            previous = byte
        }
        return lines
    }

    /// Every field of the text, as a number: parsing never crashes and what parses round-trips.
    static func checkNumbers(in text: String) {
        var fields = 0
        for line in text.split(whereSeparator: \.isNewline) {
            for field in line.split(separator: ",", omittingEmptySubsequences: false) {
                fields += 1
                if fields > 64 { return }
                for region in [nil, Country(code: "US"), Country(code: "GB")] {
                    guard let number = try? PhoneNumber.parse(String(field), defaultRegion: region) else { continue }
                    precondition(number.digitCount <= PhoneNumber.maximumDigitCount, "too many digits")
                    let again = try? PhoneNumber.parse(number.e164)
                    precondition(again == number, "\(number.e164) does not parse back to itself")
                }
            }
        }
    }
}
