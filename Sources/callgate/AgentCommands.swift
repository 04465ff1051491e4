import ArgumentParser
import CallgateClient
import CallgateWire

struct Agents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage agents.",
        subcommands: [UpsertAgent.self, ListAgents.self, DeactivateAgent.self]
    )
}

struct UpsertAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add an agent, or update it when it exists (sets it active unless --inactive).",
        aliases: ["upsert"]
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The agent's id (the dialer's own user id).")
    var id: String

    @Option(help: "Display name.")
    var name: String?

    @Option(help: "Principal (e-mail, UPN).")
    var principal: String?

    @Flag(help: "Store the agent as inactive.")
    var inactive = false

    func run() async throws {
        let request = Wire.UpsertAgentRequest(
            id: id,
            displayName: name ?? "",
            principal: principal ?? "",
            inactive: inactive
        )
        let agent = try await global.withClient { client in
            try await client.call(.upsertAgent(request)) { if case .upsertAgent(let value) = $0 { value } else { nil } }
        }
        global.emit(agent.json, agent.text)
    }
}

struct ListAgents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List agents.")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Include inactive agents.")
    var includeInactive = false

    func run() async throws {
        let (agents, _) = try await global.withClient { client in
            try await collectPages(limit: nil, all: true, cursor: nil) { cursor, pageSize in
                let request = Wire.ListAgentsRequest(
                    includeInactive: includeInactive,
                    cursor: cursor,
                    pageSize: pageSize
                )
                let page = try await client.call(.listAgents(request)) {
                    if case .listAgents(let value) = $0 { value } else { nil }
                }
                return (page.agents, page.nextCursor)
            }
        }
        var table = Table(["AGENT", "NAME", "PRINCIPAL", "ACTIVE", "MODIFIED"])
        for agent in agents {
            table.append([
                agent.id, dash(agent.displayName), dash(agent.principal), agent.active ? "yes" : "no",
                Times.local(agent.modifiedAtMs),
            ])
        }
        global.emit(
            .object([("agents", .array(agents.map(\.json)))]),
            agents.isEmpty ? "(no agents)" : table.rendered()
        )
    }
}

struct DeactivateAgent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deactivate",
        abstract: "Deactivate an agent: its calls are denied (AGENT_INACTIVE); its assignments stay."
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The agent's id.")
    var id: String

    func run() async throws {
        let agent = try await global.withClient { client in
            try await client.call(.deactivateAgent(Wire.DeactivateAgentRequest(id: id))) {
                if case .deactivateAgent(let value) = $0 { value } else { nil }
            }
        }
        global.emit(agent.json, agent.text)
    }
}
