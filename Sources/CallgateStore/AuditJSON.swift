import CallgateCore

/// Compact JSON for the before/after columns of the audit log, written by hand: the writer thread
/// encodes one or two of these per admin change, and `JSONSerialization` (bridging, dynamic casts,
/// locale-aware key sorting) was 70 % of its time.
enum AuditJSON {
    /// Builds one JSON object, keys in the order written.
    struct Object {
        private var text = "{"

        mutating func add(_ key: String, _ value: String) {
            self.key(key)
            AuditJSON.appendQuoted(value, to: &self.text)
        }

        mutating func add(_ key: String, _ value: Int) {
            self.key(key)
            self.text += String(value)
        }

        mutating func add(_ key: String, _ value: Bool) {
            self.key(key)
            self.text += value ? "true" : "false"
        }

        mutating func add(_ key: String, _ values: [String]) {
            self.key(key)
            self.text += "["
            for (i, value) in values.enumerated() {
                if i > 0 { self.text += "," }
                AuditJSON.appendQuoted(value, to: &self.text)
            }
            self.text += "]"
        }

        private mutating func key(_ key: String) {
            if self.text.utf8.count > 1 { self.text += "," }
            AuditJSON.appendQuoted(key, to: &self.text)
            self.text += ":"
        }

        var json: String { self.text + "}" }
    }

    /// Appends `value` as a JSON string literal (RFC 8259 escaping).
    static func appendQuoted(_ value: String, to text: inout String) {
        text += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case let c where c.value < 0x20:
                let hex = String(c.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }

    static func organization(_ o: OrganizationRecord) -> String {
        var object = Object()
        object.add("id", Int(o.id.rawValue))
        object.add("name", o.name)
        object.add("timeZone", o.timeZone)
        return object.json
    }

    static func number(_ n: NumberRecord) -> String {
        let a = n.attributes
        var object = Object()
        object.add("number", n.number.e164)
        object.add("provider", a.provider)
        object.add("country", a.country.code)
        object.add("capabilities", a.capabilities.description)
        object.add("status", a.status.rawValue)
        object.add("location", a.location)
        object.add("tags", a.tags)
        object.add("type", a.numberType)
        object.add("state", n.state.name)
        return object.json
    }

    static func agent(_ a: AgentRecord) -> String {
        var object = Object()
        object.add("id", a.id)
        object.add("displayName", a.displayName)
        object.add("principal", a.principal)
        object.add("active", a.active)
        return object.json
    }

    static func assignment(_ a: AssignmentRecord) -> String {
        var object = Object()
        object.add("number", a.number.e164)
        object.add("agent", a.agent)
        object.add("dailyLimit", Int(a.dailyLimit))
        object.add("allowedCountries", a.allowedCountries.codes)
        object.add("calls", Int(a.callsSinceAssigned))
        return object.json
    }

    static func reservation(_ r: Reservation) -> String {
        var object = Object()
        object.add("expiresAt", r.expiresAt.iso8601)
        if let agent = r.agent { object.add("agent", agent) }
        return object.json
    }

    static func numbersImported(added: Int, updated: Int) -> String {
        var object = Object()
        object.add("added", added)
        object.add("updated", updated)
        return object.json
    }

    /// The summary entry of a bulk change or sync: its counts, then its notes.
    static func bulk(_ b: BulkChange) -> String {
        var object = Object()
        for (key, value) in b.summary { object.add(key, value) }
        for (key, value) in b.notes { object.add(key, value) }
        return object.json
    }

    static func poolThreshold(_ pool: String, _ threshold: UInt32) -> String {
        var object = Object()
        object.add("pool", pool)
        object.add("threshold", Int(threshold))
        return object.json
    }

    static func countersReset(numbers: Int, day: String) -> String {
        var object = Object()
        object.add("numbers", numbers)
        object.add("day", day)
        return object.json
    }
}
