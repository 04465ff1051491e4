import ArgumentParser
import CallgateClient
import CallgateWire

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage API keys.",
        subcommands: [CreateKey.self, ListKeys.self, RevokeKey.self]
    )
}

enum RoleArgument: String, ExpressibleByArgument, CaseIterable {
    case admin
    case manager
    case dialer
    case agent

    var wire: Wire.Role {
        switch self {
        case .admin: .admin
        case .manager: .manager
        case .dialer: .dialer
        case .agent: .agent
        }
    }
}

struct CreateKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create an API key; its secret is shown once."
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "admin, manager (read only), dialer or agent.")
    var role: RoleArgument

    @Option(help: ArgumentHelp("For --role agent: the agent the key is bound to.", valueName: "id"))
    var agent: String?

    @Option(help: "A label (who or what uses the key).")
    var label: String?

    func validate() throws {
        if role == .agent && (agent ?? "").isEmpty { throw ValidationError("--role agent needs --agent ID.") }
        if role != .agent && agent != nil { throw ValidationError("--agent goes with --role agent only.") }
    }

    func run() async throws {
        let request = Wire.CreateKeyRequest(role: role.wire, agentID: agent ?? "", label: label ?? "")
        let created = try await global.withClient { client in
            try await client.call(.createKey(request)) { if case .createKey(let value) = $0 { value } else { nil } }
        }
        let key = created.key ?? Wire.KeyInfo()
        var json = key.json
        if case .object(let members) = json { json = .object(members + [("secret", .string(created.secret))]) }
        global.emit(json, renderFields(key.fields.filter { $0.0 != "revoked" } + [("secret", created.secret)]))
        writeToStandardError(
            "warning: the secret is shown only now; store it safely (the server keeps only its hash)\n"
        )
    }
}

struct ListKeys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List API keys (never secrets).")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Include revoked keys.")
    var includeRevoked = false

    func run() async throws {
        let response = try await global.withClient { client in
            try await client.call(.listKeys(Wire.ListKeysRequest(includeRevoked: includeRevoked))) {
                if case .listKeys(let value) = $0 { value } else { nil }
            }
        }
        var table = Table(["ID", "ROLE", "AGENT", "LABEL", "CREATED", "BY", "REVOKED"])
        for key in response.keys {
            table.append([
                key.id, lowerName(key.role), dash(key.agentID), dash(key.label), Times.local(key.createdAtMs),
                dash(key.createdBy), Times.local(key.revokedAtMs),
            ])
        }
        global.emit(
            .object([("keys", .array(response.keys.map(\.json)))]),
            response.keys.isEmpty ? "(no keys)" : table.rendered()
        )
    }
}

struct RevokeKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke an API key; open connections using it are refused from then on."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The key's id (from `keys list`).")
    var id: String

    func run() async throws {
        let key = try await global.withClient { client in
            try await client.call(.revokeKey(Wire.RevokeKeyRequest(id: id))) {
                if case .revokeKey(let value) = $0 { value } else { nil }
            }
        }
        global.emit(key.json, "revoked \(key.id)\n" + renderFields(key.fields))
    }
}

struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the server's counts and health.")

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let (stats, session) = try await global.withClient { client in
            let stats = try await client.call(.stats(Wire.StatsRequest())) {
                if case .stats(let value) = $0 { value } else { nil }
            }
            return (stats, client.session)
        }
        let json = JSON.object([
            ("organization_id", .int(session.organizationID)),
            ("organization", .string(session.organizationName)),
            ("numbers", .int(stats.numbers)),
            ("available", .int(stats.available)),
            ("reserved", .int(stats.reserved)),
            ("assigned", .int(stats.assigned)),
            ("agents", .int(stats.agents)),
            ("decisions", .uint(stats.decisions)),
            ("allows", .uint(stats.allows)),
            ("connections", .int(stats.connections)),
            ("durability", .string(stats.durability)),
            ("pools_below_threshold", .array(stats.poolsBelowThreshold.map(\.json))),
        ])
        let text = renderFields([
            ("organization", "\(session.organizationName) (\(session.organizationID))"),
            ("numbers", "\(stats.numbers)"),
            ("available", "\(stats.available)"),
            ("reserved", "\(stats.reserved)"),
            ("assigned", "\(stats.assigned)"),
            ("agents", "\(stats.agents)"),
            ("decisions", "\(stats.decisions)"),
            ("allows", "\(stats.allows)"),
            ("connections", "\(stats.connections)"),
            ("durability", stats.durability),
            (
                "low pools",
                stats.poolsBelowThreshold.isEmpty
                    ? "-"
                    : stats.poolsBelowThreshold.map { "\($0.tag) (\($0.available) < \($0.threshold))" }
                        .joined(separator: ", ")
            ),
        ])
        global.emit(json, text)
    }
}
