import CallgateCore
import Foundation

/// Compact JSON for the before/after columns of the audit log.
enum AuditJSON {
    static func encode(_ object: [String: Any]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
            return "{}"
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func organization(_ o: OrganizationRecord) -> String {
        self.encode(["id": Int(o.id.rawValue), "name": o.name, "timeZone": o.timeZone])
    }

    static func number(_ n: NumberRecord) -> String {
        let a = n.attributes
        return self.encode([
            "number": n.number.e164, "provider": a.provider, "country": a.country.code,
            "capabilities": a.capabilities.description, "status": a.status.rawValue, "location": a.location,
            "tags": a.tags, "type": a.numberType, "state": n.state.name,
        ])
    }

    static func agent(_ a: AgentRecord) -> String {
        self.encode(["id": a.id, "displayName": a.displayName, "principal": a.principal, "active": a.active])
    }

    static func assignment(_ a: AssignmentRecord) -> String {
        self.encode([
            "number": a.number.e164, "agent": a.agent, "dailyLimit": Int(a.dailyLimit),
            "allowedCountries": a.allowedCountries.codes, "calls": Int(a.callsSinceAssigned),
        ])
    }

    static func reservation(_ r: Reservation) -> String {
        var object: [String: Any] = ["expiresAt": r.expiresAt.iso8601]
        if let agent = r.agent { object["agent"] = agent }
        return self.encode(object)
    }
}
