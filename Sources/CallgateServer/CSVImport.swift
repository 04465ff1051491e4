import CallgateCore
import CallgateWire

/// `import_numbers`: CSV rows `number,provider,country[,location,tags,type,capabilities]`, with or
/// without a header line; tags within their field are separated by `;` or `|`.
///
/// Every row gets a result: `added`, `unchanged` (already present; this version does not update
/// existing numbers), or `rejected` with the line and the reason. Good rows are added one by one;
/// a rejected row never stops the others.
enum CSVImport {
    static let columns = ["number", "provider", "country", "location", "tags", "type", "capabilities"]
    static let maximumRows = 100_000

    static func run(
        _ request: Wire.ImportNumbersRequest,
        _ org: Organization,
        actor: Actor
    ) throws(CallgateError) -> Wire.ImportNumbersResponse {
        var response = Wire.ImportNumbersResponse()
        var seen: [PhoneNumber: Int] = [:]
        var lines = request.csv.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        if lines.last?.isEmpty == true { lines.removeLast() }
        guard lines.count <= Self.maximumRows + 1 else {
            throw CallgateError(.invalidArgument, "at most \(Self.maximumRows) rows per import, got \(lines.count)")
        }
        for (index, line) in lines.enumerated() {
            let lineNumber = UInt32(index + 1)
            if line.allSatisfy(\.isWhitespace) { continue }
            let fields = Self.fields(of: String(line))
            if index == 0, fields.first?.lowercased().contains("number") == true { continue }
            var row = Wire.ImportRowResult(line: lineNumber, number: fields.first ?? "")
            do throws(CallgateError) {
                guard fields.count <= Self.columns.count else {
                    throw CallgateError(
                        .invalidArgument,
                        "\(fields.count) columns; expected at most \(Self.columns.count)"
                    )
                }
                let input = try Self.input(fields)
                row.number = input.number.e164
                if let first = seen[input.number] {
                    throw CallgateError(.invalidArgument, "duplicate of line \(first)")
                }
                seen[input.number] = Int(lineNumber)
                if org.number(input.number) != nil {
                    row.outcome = "unchanged"
                    row.reason = "already present"
                    response.unchanged += 1
                } else {
                    if !request.dryRun { _ = try org.addNumber(input, actor: actor) }
                    row.outcome = "added"
                    response.added += 1
                }
            } catch {
                row.outcome = "rejected"
                row.reason = error.message
                response.rejected += 1
            }
            response.rows.append(row)
        }
        return response
    }

    private static func input(_ fields: [String]) throws(CallgateError) -> NumberInput {
        func field(_ i: Int) -> String { i < fields.count ? fields[i].trimmingCharacters(in: " \t") : "" }
        var request = Wire.AddNumberRequest(number: field(0), provider: field(1), country: field(2), location: field(3))
        request.tags = field(4).split(whereSeparator: { $0 == ";" || $0 == "|" }).map {
            String($0).trimmingCharacters(in: " ")
        }
        request.numberType = field(5)
        request.capabilities = field(6).split(whereSeparator: { $0 == ";" || $0 == "|" || $0 == " " }).map(String.init)
        return try Dispatcher.numberInput(request)
    }

    /// Splits one CSV line (RFC 4180 quoting: `"a,b"`, `""` for a quote).
    static func fields(of line: String) -> [String] {
        var fields: [String] = []
        var current = ""
        var quoted = false
        var iterator = line.makeIterator()
        var pending: Character? = nil
        while let c = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    let next = iterator.next()
                    if next == "\"" {
                        current.append("\"")
                    } else {
                        quoted = false
                        pending = next
                    }
                } else {
                    current.append(c)
                }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                fields.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        fields.append(current)
        return fields
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }
}
