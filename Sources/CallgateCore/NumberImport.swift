/// Bulk import of numbers: reading a CSV file into rows and checking each row on its own. Nothing here
/// needs the inventory; ``Organization/importNumbers(_:dryRun:actor:)`` compares the rows with it and
/// applies them.
///
/// ## Layouts
/// - **columns**: `number,provider,country[,location,tags,type,capabilities]`, by position, or in any
///   order under a header. Header names (case, blanks and camel case do not matter): `number` (or
///   `phone_number`, `phone`, `e164`), `provider`, `country` (`country_code`, `iso_country`),
///   `location` (`locality`, `region`, `city`), `tags`, `type` (`number_type`, `phone_number_type`),
///   `capabilities` (`features`), `status`. An unknown header name is an error (a typo must not drop a
///   column); several location columns are joined with `, `.
/// - **list**: one number per line (with or without a `number` header); every row takes the request's
///   default provider, which is then required.
/// - **telnyx**: Telnyx's number list export, recognised by a header with `phone_number` and one of
///   `connection_name`, `connection_id`, `messaging_profile_name`, `messaging_profile_id`,
///   `emergency_enabled`, `billing_group_id`, `customer_reference`. Provider `telnyx`; `tags` → tags;
///   `phone_number_type` → type (`local` → `did`, `toll_free` → `tollfree`, others as written);
///   `status`: `active` → active; `purchase-pending`, `port-pending`, `provision-pending`,
///   `requirement-info-*`, `emergency-only`, `port-out-pending` → inactive (held but not for outbound
///   calls yet / any more); `deleted`, `ported-out`, `purchase-failed`, `port-failed` → rejected (not a
///   number of the account); `features` keeps voice/sms/mms/fax and ignores Telnyx's other features.
///   Every other column (connection, messaging profile, ids, dates…) is ignored.
/// - **twilio**: Twilio's incoming phone number export, recognised by a header with `sid`,
///   `friendly_name`, `account_sid` or a `*_capable` column (`PhoneNumber,FriendlyName,Sid,…` is read as
///   `phone_number,friendly_name,sid,…`). Provider `twilio`; capabilities from `voice_capable`,
///   `sms_capable`, `mms_capable`, `fax_capable` (`true/false`, `yes/no`, `1/0`) or a `capabilities`
///   column (`voice,sms` or `{"voice": true, "sms": false, …}`); `status` `in-use`/`active` → active,
///   `inactive` → inactive; `locality`, `region` → location; `friendly_name` is ignored (Twilio
///   fills it with the formatted number unless someone renamed it), as are `sid` and every other column.
///
/// ## Values
/// A cell left empty (or a column the file does not have) keeps the number's current value; a new
/// number gets the default (capabilities `voice`, status `active`, type `did`, no location, no tags).
/// The country, when given, must be the number's own (an ISO code, or a calling code such as `+1`); a
/// number written without `+` is read in that country. Tags are separated by `;`, `|` or `,`.
public enum ImportFormat: String, Sendable, Hashable, CaseIterable {
    case columns
    case list
    case telnyx
    case twilio
}

/// The attributes one import row gives. `nil` keeps the current value of an existing number and
/// means the default for a new one.
public struct ImportValues: Sendable, Hashable {
    public var provider: String
    /// The number's country (derived from the number; a given country was checked against it).
    public var country: Country
    public var capabilities: Capabilities?
    public var status: NumberStatus?
    public var location: String?
    /// Sorted and unique.
    public var tags: [String]?
    public var numberType: String?

    public init(
        provider: String,
        country: Country,
        capabilities: Capabilities? = nil,
        status: NumberStatus? = nil,
        location: String? = nil,
        tags: [String]? = nil,
        numberType: String? = nil
    ) {
        self.provider = provider
        self.country = country
        self.capabilities = capabilities
        self.status = status
        self.location = location
        self.tags = tags
        self.numberType = numberType
    }
}

/// One data row of an import file, checked on its own.
public struct ImportRow: Sendable, Hashable {
    /// The line of the file the row starts on (1-based; the header is line 1 when there is one).
    public var line: Int
    /// The number as written (for the report when it does not parse).
    public var text: String
    public var number: PhoneNumber?
    /// What the row gives, or why it is rejected.
    public var values: Result<ImportValues, CallgateError>
    /// The agent the row assigns the number to (sync files with an `assigned_to` column only).
    public var assignment: SyncAssignment?

    public init(
        line: Int,
        text: String,
        number: PhoneNumber?,
        values: Result<ImportValues, CallgateError>,
        assignment: SyncAssignment? = nil
    ) {
        self.line = line
        self.text = text
        self.number = number
        self.values = values
        self.assignment = assignment
    }
}

/// What a sync file's `assigned_to` cell says.
public enum SyncAssignment: Sendable, Hashable {
    /// Assigned to this agent.
    case agent(String)
    /// `-` (or `none`): explicitly not assigned; a number assigned locally is released.
    case unassigned
}

/// An import file read into rows.
public struct ImportFile: Sendable, Hashable {
    public var format: ImportFormat
    public var rows: [ImportRow]

    /// The most data rows in one import.
    public static let maximumRows = 200_000

    public init(format: ImportFormat, rows: [ImportRow]) {
        self.format = format
        self.rows = rows
    }

    /// Reads a CSV file (RFC 4180 quoting; `,` or, when the first line has no comma, tab separated;
    /// `\n`, `\r\n` or `\r` line ends; a UTF-8 byte order mark is skipped) and checks every row.
    ///
    /// - Parameter defaultProvider: the provider of rows that give none; required when the file has
    ///   no provider column at all (a plain list). Telnyx and Twilio exports are `telnyx` / `twilio`.
    /// - Throws: `invalidArgument` for a problem of the whole file: a header without a number column or
    ///   with an unknown or repeated column, no provider anywhere, too many rows. A bad row is not an
    ///   error: it is rejected with its reason and the others go on.
    ///   - assignments: read an `assigned_to` column (aliases `agent_id`, `agent`) as the agent each
    ///     number is assigned to (``ImportRow/assignment``): a sync file. An import refuses the column.
    public static func parse(
        _ csv: String,
        defaultProvider: String? = nil,
        assignments: Bool = false
    ) throws(CallgateError) -> ImportFile {
        let defaultProvider = defaultProvider?.trimmingSpaces.nilIfEmpty
        if let defaultProvider { try Organization.validateText(defaultProvider, field: "default provider") }
        let records = CSVReader.records(csv)
        guard let first = records.first else { return ImportFile(format: .columns, rows: []) }
        let layout = try Layout(first: first.fields, defaultProvider: defaultProvider, assignments: assignments)
        let body = layout.hasHeader ? records.dropFirst() : records[...]
        guard body.count <= Self.maximumRows else {
            throw CallgateError(
                .invalidArgument,
                "at most \(Self.maximumRows) rows per import, got \(body.count): split the file"
            )
        }
        var format = layout.format
        if !layout.hasHeader, body.allSatisfy({ $0.fields.count == 1 }) {
            format = .list
            guard defaultProvider != nil else {
                throw CallgateError(
                    .invalidArgument,
                    "the file is a plain list of numbers: set default_provider to give their provider"
                )
            }
        }
        var rows: [ImportRow] = []
        rows.reserveCapacity(body.count)
        var seen: [PhoneNumber: Int] = [:]
        seen.reserveCapacity(body.count)
        for record in body {
            var row = layout.row(record, format: format, defaultProvider: defaultProvider)
            if let number = row.number, case .success = row.values {
                if let first = seen[number] {
                    row.values = .failure(CallgateError(.invalidArgument, "duplicate of line \(first)"))
                } else {
                    seen[number] = row.line
                }
            }
            rows.append(row)
        }
        return ImportFile(format: format, rows: rows)
    }
}

// MARK: - Columns and the header

enum ImportColumn: Hashable {
    case number, provider, country, location, tags, type, capabilities, status
    case voiceCapable, smsCapable, mmsCapable, faxCapable
    /// The agent holding the number (sync files).
    case assignedTo
    case ignored
}

/// How the file's columns map to fields.
struct Layout {
    var format: ImportFormat
    var hasHeader: Bool
    /// Column of each field by position (`nil` when headerless: positional).
    var columns: [ImportColumn]?

    static let positional: [ImportColumn] = [.number, .provider, .country, .location, .tags, .type, .capabilities]

    static let names: [String: ImportColumn] = [
        "number": .number, "phone_number": .number, "phone": .number, "e164": .number,
        "provider": .provider,
        "country": .country, "country_code": .country, "iso_country": .country,
        "location": .location, "locality": .location, "region": .location, "city": .location,
        "tags": .tags,
        "type": .type, "number_type": .type, "phone_number_type": .type,
        "capabilities": .capabilities, "features": .capabilities,
        "status": .status,
    ]

    static let twilioNames: [String: ImportColumn] = [
        "voice_capable": .voiceCapable, "sms_capable": .smsCapable, "mms_capable": .mmsCapable,
        "fax_capable": .faxCapable,
    ]

    static let twilioMarkers: Set<String> = [
        "sid", "friendly_name", "account_sid", "voice_capable", "sms_capable", "mms_capable", "fax_capable",
    ]

    static let telnyxMarkers: Set<String> = [
        "connection_name", "connection_id", "messaging_profile_name", "messaging_profile_id",
        "emergency_enabled", "billing_group_id", "customer_reference",
    ]

    static let assignmentNames: [String: ImportColumn] = [
        "assigned_to": .assignedTo, "agent_id": .assignedTo, "agent": .assignedTo,
    ]

    init(first: [String], defaultProvider: String?, assignments: Bool = false) throws(CallgateError) {
        let keys = first.map(Self.key)
        let looksLikeNumber = first.contains { (try? PhoneNumber.parse($0)) != nil }
        let known = keys.contains { Self.names[$0] != nil || Self.twilioMarkers.contains($0) }
        guard known, !looksLikeNumber else {
            self.format = .columns
            self.hasHeader = false
            self.columns = nil
            return
        }
        self.hasHeader = true
        if keys.contains(where: Self.twilioMarkers.contains) {
            self.format = .twilio
        } else if keys.contains(where: Self.telnyxMarkers.contains) {
            self.format = .telnyx
        } else {
            self.format = .columns
        }
        var columns: [ImportColumn] = []
        var used: [ImportColumn: String] = [:]
        for (key, raw) in zip(keys, first) {
            var column =
                Self.names[key] ?? (self.format == .twilio ? Self.twilioNames[key] : nil)
                ?? (assignments ? Self.assignmentNames[key] : nil)
            if column == nil {
                guard self.format != .columns else {
                    throw CallgateError(
                        .invalidArgument,
                        "unknown column '\(raw)' in the header (known: number, provider, country, location, tags, "
                            + "type, capabilities, status, or a Telnyx or Twilio export)"
                    )
                }
                column = .ignored
            }
            let c = column!
            if c != .ignored, c != .location {
                if let earlier = used[c] {
                    throw CallgateError(.invalidArgument, "columns '\(earlier)' and '\(raw)' give the same field")
                }
                used[c] = raw
            }
            columns.append(c)
        }
        guard columns.contains(.number) else {
            throw CallgateError(.invalidArgument, "the header has no number column (number, phone_number, phone, e164)")
        }
        if self.format == .columns {
            if columns.allSatisfy({ $0 == .number }) { self.format = .list }
            if !columns.contains(.provider), defaultProvider == nil {
                throw CallgateError(
                    .invalidArgument,
                    "the file has no provider column: set default_provider to give the numbers' provider"
                )
            }
        }
        self.columns = columns
    }

    /// A header name as a key: lower case, words joined by `_` (`PhoneNumber`, `Phone Number` and
    /// `phone-number` are all `phone_number`).
    static func key(_ raw: String) -> String {
        let scalars = Array(raw.trimmingSpaces.unicodeScalars.filter { $0 != "\u{FEFF}" && $0 != "\"" })
        var key = String.UnicodeScalarView()
        func underscore() { if let last = key.last, last != "_" { key.append("_") } }
        for (i, c) in scalars.enumerated() {
            let p = c.properties
            if p.isUppercase, i > 0 {
                let previous = scalars[i - 1].properties
                let nextIsLower = i + 1 < scalars.count && scalars[i + 1].properties.isLowercase
                if previous.isLowercase || previous.numericType != nil || (previous.isUppercase && nextIsLower) {
                    underscore()
                }
            }
            if " -./\t".unicodeScalars.contains(c) || c == "_" {
                underscore()
            } else {
                key.append(contentsOf: String(c).lowercased().unicodeScalars)
            }
        }
        while key.last == "_" { key.removeLast() }
        return String(key)
    }

    /// Reads and checks one data row.
    func row(_ record: CSVRecord, format: ImportFormat, defaultProvider: String?) -> ImportRow {
        var cells = Cells()
        let fields = record.fields
        if let columns = self.columns {
            for (i, column) in columns.enumerated() where i < fields.count && column != .ignored {
                cells.set(column, fields[i])
            }
        } else {
            for (i, field) in fields.enumerated() where i < Self.positional.count {
                cells.set(Self.positional[i], field)
            }
        }
        let text = String((cells.number ?? fields.first ?? "").prefix(64))
        var row = ImportRow(line: record.line, text: text, number: nil, values: .failure(CallgateError(.internal, "")))
        do throws(CallgateError) {
            if let columns = self.columns, fields.count > columns.count {
                throw CallgateError(
                    .invalidArgument,
                    "\(fields.count) fields but the header has \(columns.count) (quote a value that holds a comma)"
                )
            }
            if self.columns == nil, fields.count > Self.positional.count {
                throw CallgateError(
                    .invalidArgument,
                    "\(fields.count) columns; expected at most \(Self.positional.count) "
                        + "(number,provider,country,location,tags,type,capabilities)"
                )
            }
            let (number, values) = try cells.values(format: format, defaultProvider: defaultProvider)
            row.number = number
            row.text = number.e164
            row.assignment = try cells.assignment()
            row.values = .success(values)
        } catch {
            row.values = .failure(error)
            if let number = try? PhoneNumber.parse(text) {
                row.number = number
                row.text = number.e164
            }
        }
        return row
    }
}

/// The cells of one row by field; `nil` or empty means not given.
struct Cells {
    var number: String?
    var provider: String?
    var country: String?
    var location: String?
    var tags: String?
    var type: String?
    var capabilities: String?
    var status: String?
    var assignedTo: String?
    var flags: [(Capabilities, String, String)] = []

    mutating func set(_ column: ImportColumn, _ raw: String) {
        let value = raw.trimmingSpaces
        switch column {
        case .number: self.number = value
        case .provider: self.provider = value
        case .country: self.country = value
        case .location:
            // Several location columns (Twilio's locality and region) are joined.
            if let current = self.location, !current.isEmpty, !value.isEmpty {
                self.location = current + ", " + value
            } else if self.location?.isEmpty ?? true {
                self.location = value
            }
        case .tags: self.tags = value
        case .type: self.type = value
        case .capabilities: self.capabilities = value
        case .status: self.status = value
        case .assignedTo: self.assignedTo = value
        case .voiceCapable: self.flags.append((.voice, "voice_capable", value))
        case .smsCapable: self.flags.append((.sms, "sms_capable", value))
        case .mmsCapable: self.flags.append((.mms, "mms_capable", value))
        case .faxCapable: self.flags.append((.fax, "fax_capable", value))
        case .ignored: break
        }
    }

    func values(
        format: ImportFormat,
        defaultProvider: String?
    ) throws(CallgateError) -> (PhoneNumber, ImportValues) {
        guard let text = self.number?.nilIfEmpty else { throw CallgateError(.invalidArgument, "no number") }
        // The country first: a number written without `+` is read in it.
        var givenCountry: Country?
        var givenCallingCode: UInt16?
        if let code = self.country?.nilIfEmpty {
            let digits = code.hasPrefix("+") ? String(code.dropFirst()) : code
            if !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let cc = UInt16(digits) {
                givenCallingCode = cc
            } else if let country = Country(code: code.uppercased()) {
                givenCountry = country
            } else {
                throw CallgateError(
                    .invalidArgument,
                    "unknown country '\(code)' (expected an ISO 3166 code such as US)"
                )
            }
        }
        let number: PhoneNumber
        do {
            number = try PhoneNumber.parse(text, defaultRegion: givenCountry)
        } catch {
            throw CallgateError(.invalidArgument, "invalid number: \(error)")
        }
        guard let derived = CountryTable.country(of: number) else {
            throw CallgateError(.invalidArgument, "invalid number: it belongs to no country")
        }
        if let given = givenCountry, given != derived {
            throw CallgateError(.invalidArgument, "country mismatch: the number is in \(derived), not \(given)")
        }
        if let cc = givenCallingCode, cc != derived.callingCode {
            throw CallgateError(
                .invalidArgument,
                "country mismatch: the number's calling code is +\(derived.callingCode), not +\(cc)"
            )
        }

        let provider: String
        switch format {
        case .telnyx: provider = "telnyx"
        case .twilio: provider = "twilio"
        case .columns, .list:
            guard let p = self.provider?.nilIfEmpty ?? defaultProvider else {
                throw CallgateError(.invalidArgument, "no provider: the row has none and default_provider is not set")
            }
            provider = p
        }
        try Organization.validateText(provider, field: "provider")

        var values = ImportValues(provider: provider, country: derived)
        if let location = self.location?.nilIfEmpty {
            try Organization.validateText(location, field: "location")
            values.location = location
        }
        if let tags = self.tags?.nilIfEmpty { values.tags = try Self.tags(tags) }
        if let type = self.type?.nilIfEmpty {
            let t = format == .telnyx ? Self.telnyxType(type) : type
            try Organization.validateText(t, field: "number type")
            values.numberType = t
        }
        if let status = self.status?.nilIfEmpty { values.status = try Self.status(status, format: format) }
        if let names = self.capabilities?.nilIfEmpty {
            values.capabilities = try Self.capabilities(names, lenient: format == .telnyx)
        }
        if self.flags.contains(where: { !$0.2.isEmpty }) {
            var capabilities: Capabilities = values.capabilities ?? []
            for (capability, column, value) in self.flags {
                switch value.lowercased() {
                case "true", "yes", "y", "1", "t", "x": capabilities.insert(capability)
                case "false", "no", "n", "0", "f", "": capabilities.remove(capability)
                default:
                    throw CallgateError(.invalidArgument, "\(column) must be true or false, got '\(value)'")
                }
            }
            values.capabilities = capabilities
        }
        return (number, values)
    }

    /// The `assigned_to` cell: empty (or no column) says nothing, `-` or `none` says not assigned.
    func assignment() throws(CallgateError) -> SyncAssignment? {
        guard let text = self.assignedTo?.nilIfEmpty else { return nil }
        if text == "-" || text.lowercased() == "none" { return .unassigned }
        do {
            try Organization.validateAgentID(text)
        } catch {
            throw CallgateError(.invalidArgument, "assigned_to: \(error.message)")
        }
        return .agent(text)
    }

    static func tags(_ text: String) throws(CallgateError) -> [String] {
        var tags: [String] = []
        // Split on UTF-8 bytes: `;`, `|` and `,` are ASCII, and Character splitting is slow.
        for part in text.utf8.split(whereSeparator: { $0 == 0x3B || $0 == 0x7C || $0 == 0x2C }) {
            let tag = String(Substring(part)).trimmingSpaces
            guard !tag.isEmpty else { continue }
            try Organization.validateText(tag, field: "tag")
            if !tags.contains(tag) { tags.append(tag) }
        }
        guard tags.count <= Organization.maximumTags else {
            throw CallgateError(
                .invalidArgument,
                "at most \(Organization.maximumTags) tags per number, got \(tags.count)"
            )
        }
        return tags.sorted()
    }

    /// `voice,sms`, `voice;sms`, `Voice SMS` or `{"voice": true, "sms": false}`.
    static func capabilities(_ text: String, lenient: Bool) throws(CallgateError) -> Capabilities {
        var result: Capabilities = []
        // Items between `,`, `;` and `|`; an item is names (between blanks) or `name: true|false`.
        for item in text.utf8.split(whereSeparator: { $0 == 0x2C || $0 == 0x3B || $0 == 0x7C }) {
            var names = item[...]
            var on = true
            if let colon = item.firstIndex(where: { $0 == 0x3A || $0 == 0x3D }) {
                names = item[..<colon]
                let value = String(Substring(item[item.index(after: colon)...]))
                    .filter { !"{}\"'".contains($0) }.trimmingSpaces.lowercased()
                switch value {
                case "true", "yes", "1": on = true
                case "false", "no", "0", "null", "": on = false
                default:
                    throw CallgateError(
                        .invalidArgument,
                        "capability '\(String(Substring(item)).trimmingSpaces)' must be true or false"
                    )
                }
            }
            // Blanks, braces and quotes (of the JSON form) separate names.
            for word in names.split(whereSeparator: { [0x20, 0x09, 0x7B, 0x7D, 0x22, 0x27].contains($0) }) {
                guard let found = Self.capability(named: word) else {
                    if lenient { continue }
                    throw CallgateError(
                        .invalidArgument,
                        "unknown capability '\(String(Substring(word)))' (expected voice, sms, mms or fax)"
                    )
                }
                if on { result.insert(found) }
            }
        }
        return result
    }

    /// `voice`, `sms`, `mms` or `fax`, ignoring ASCII case.
    static func capability(named word: Substring.UTF8View) -> Capabilities? {
        for (name, capability) in Capabilities.names where name.utf8.count == word.count {
            if zip(name.utf8, word).allSatisfy({ $0 == ($1 >= 0x41 && $1 <= 0x5A ? $1 | 0x20 : $1) }) {
                return capability
            }
        }
        return nil
    }

    static func status(_ text: String, format: ImportFormat) throws(CallgateError) -> NumberStatus {
        let value = text.lowercased().replacingUnderscores
        switch format {
        case .columns, .list:
            if let status = NumberStatus(rawValue: value) { return status }
            throw CallgateError(.invalidArgument, "unknown status '\(text)' (expected active or inactive)")
        case .telnyx:
            switch value {
            case "active": return .active
            case "inactive", "purchase-pending", "port-pending", "provision-pending", "emergency-only",
                "port-out-pending", "requirement-info-pending", "requirement-info-under-review",
                "requirement-info-exception":
                return .inactive
            case "deleted", "ported-out", "purchase-failed", "port-failed":
                throw CallgateError(
                    .invalidArgument,
                    "Telnyx status '\(text)': the number is not in service on the account"
                )
            default:
                throw CallgateError(.invalidArgument, "unknown Telnyx status '\(text)'")
            }
        case .twilio:
            switch value {
            case "in-use", "active": return .active
            case "inactive": return .inactive
            default: throw CallgateError(.invalidArgument, "unknown Twilio status '\(text)' (expected in-use)")
            }
        }
    }

    static func telnyxType(_ text: String) -> String {
        switch text.lowercased().replacingUnderscores {
        case "local": return "did"
        case "toll-free", "tollfree": return "tollfree"
        default: return text.lowercased()
        }
    }
}

extension String {
    var nilIfEmpty: String? { self.isEmpty ? nil : self }

    fileprivate var replacingUnderscores: String { String(self.map { $0 == "_" ? "-" : $0 }) }
}

// MARK: - CSV

/// One CSV record: its fields and the line it starts on.
struct CSVRecord {
    var line: Int
    var fields: [String]
}

/// A CSV reader over UTF-8 bytes (RFC 4180: `"a,b"`, `""` for a quote, line ends inside quotes).
enum CSVReader {
    static func records(_ text: String) -> [CSVRecord] {
        var text = text
        return text.withUTF8 { bytes in Self.records(bytes) }
    }

    static func records(_ all: UnsafeBufferPointer<UInt8>) -> [CSVRecord] {
        var bytes = all[...]
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        let separator = Self.separator(bytes)
        var records: [CSVRecord] = []
        var fields: [String] = []
        var field: [UInt8] = []
        var quoted = false
        var line = 1
        var recordLine = 1
        var i = bytes.startIndex
        let end = bytes.endIndex
        var fieldStart = i
        // Unquoted fields are sliced straight from the buffer; a quoted one is copied into `field`.
        var copying = false

        func finishField(_ upTo: Int) {
            if copying {
                fields.append(String(decoding: field, as: UTF8.self))
                field.removeAll(keepingCapacity: true)
                copying = false
            } else {
                fields.append(String(decoding: UnsafeBufferPointer(rebasing: all[fieldStart..<upTo]), as: UTF8.self))
            }
        }
        func finishRecord() {
            let blank = fields.allSatisfy { $0.utf8.allSatisfy { $0 == 0x20 || $0 == 0x09 } }
            if !blank { records.append(CSVRecord(line: recordLine, fields: fields)) }
            fields.removeAll(keepingCapacity: true)
        }

        while i < end {
            let c = bytes[i]
            if quoted {
                if c == UInt8(ascii: "\"") {
                    if i + 1 < end, bytes[i + 1] == UInt8(ascii: "\"") {
                        field.append(c)
                        i += 2
                        continue
                    }
                    quoted = false
                } else {
                    if c == UInt8(ascii: "\n") || (c == UInt8(ascii: "\r") && (i + 1 >= end || bytes[i + 1] != 10)) {
                        line += 1
                    }
                    field.append(c)
                }
                i += 1
                continue
            }
            switch c {
            case UInt8(ascii: "\""):
                if !copying {
                    // Whatever came before the quote on this field (blanks, usually) is kept.
                    field.append(contentsOf: UnsafeBufferPointer(rebasing: all[fieldStart..<i]))
                    copying = true
                }
                quoted = true
            case separator:
                finishField(i)
                fieldStart = i + 1
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                finishField(i)
                finishRecord()
                if c == UInt8(ascii: "\r"), i + 1 < end, bytes[i + 1] == UInt8(ascii: "\n") { i += 1 }
                line += 1
                recordLine = line
                fieldStart = i + 1
            default:
                if copying { field.append(c) }
            }
            i += 1
        }
        if fieldStart < end || copying || !fields.isEmpty {
            finishField(end)
            finishRecord()
        }
        return records
    }

    /// `,`, or a tab when the first line has tabs and no comma.
    static func separator(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> UInt8 {
        var tabs = false
        for c in bytes {
            if c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r") { break }
            if c == UInt8(ascii: ",") { return c }
            if c == UInt8(ascii: "\t") { tabs = true }
        }
        return tabs ? UInt8(ascii: "\t") : UInt8(ascii: ",")
    }
}
