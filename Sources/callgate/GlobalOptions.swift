import ArgumentParser
import CallgateClient
import CallgateWire
import Foundation

/// The options every command takes: where the server is, which key to use, and the output format.
struct GlobalOptions: ParsableArguments {
    /// The key file `callgated` writes on a fresh install, relative to the working directory.
    static let defaultKeyFile = "./callgate-data/admin.key"

    @Option(help: ArgumentHelp("Server host (env CALLGATE_HOST; default 127.0.0.1).", valueName: "host"))
    var host: String?

    @Option(help: ArgumentHelp("Server port (env CALLGATE_PORT; default 7420).", valueName: "port"))
    var port: Int?

    @Option(help: ArgumentHelp("API key (env CALLGATE_KEY).", valueName: "key"))
    var key: String?

    @Option(
        name: .customLong("key-file"),
        help: ArgumentHelp(
            "File holding the API key (env CALLGATE_KEY_FILE; default \(defaultKeyFile) when it exists).",
            valueName: "path"
        )
    )
    var keyFile: String?

    @Flag(help: "Connect with TLS, trusting the system's CAs (env CALLGATE_TLS=1); implied by the other --tls options.")
    var tls = false

    @Option(
        name: .customLong("tls-ca"),
        help: ArgumentHelp(
            "Trust the CA certificates in this PEM file instead (env CALLGATE_TLS_CA).",
            valueName: "path"
        )
    )
    var tlsCA: String?

    @Option(
        name: .customLong("tls-server-name"),
        help: ArgumentHelp("Name the server's certificate must carry (default: --host).", valueName: "name")
    )
    var tlsServerName: String?

    @Option(
        name: .customLong("tls-cert"),
        help: ArgumentHelp(
            "Client certificate (PEM) for a server that requires one (env CALLGATE_TLS_CERT).",
            valueName: "path"
        )
    )
    var tlsCertificate: String?

    @Option(
        name: .customLong("tls-key"),
        help: ArgumentHelp("Private key (PEM) of --tls-cert (env CALLGATE_TLS_KEY).", valueName: "path")
    )
    var tlsKey: String?

    @Flag(help: "Print JSON instead of tables.")
    var json = false

    private var environment: [String: String] { ProcessInfo.processInfo.environment }

    func resolvedHost() -> String {
        if let host, !host.isEmpty { return host }
        if let host = environment["CALLGATE_HOST"], !host.isEmpty { return host }
        return "127.0.0.1"
    }

    func resolvedPort() throws -> Int {
        if let port {
            guard (1...65_535).contains(port) else { throw CLIError.usage("--port must be 1 to 65535, not \(port)") }
            return port
        }
        if let text = environment["CALLGATE_PORT"], !text.isEmpty {
            guard let port = Int(text), (1...65_535).contains(port) else {
                throw CLIError.usage("CALLGATE_PORT must be a port number (1 to 65535), not '\(text)'")
            }
            return port
        }
        return 7420
    }

    /// TLS when --tls, CALLGATE_TLS or any other TLS option asks for it; `nil` for plain TCP.
    func resolvedTLS() throws -> CallgateClientConfiguration.TLS? {
        func setting(_ option: String?, _ variable: String) -> String? {
            if let option, !option.isEmpty { return option }
            if let value = environment[variable], !value.isEmpty { return value }
            return nil
        }
        let ca = setting(tlsCA, "CALLGATE_TLS_CA")
        let certificate = setting(tlsCertificate, "CALLGATE_TLS_CERT")
        let key = setting(tlsKey, "CALLGATE_TLS_KEY")
        let variable = environment["CALLGATE_TLS"]?.lowercased() ?? ""
        guard ["", "0", "1", "true", "false", "yes", "no"].contains(variable) else {
            throw CLIError.usage("CALLGATE_TLS must be 1 or 0, not '\(variable)'")
        }
        let on = tls || ["1", "true", "yes"].contains(variable)
        guard on || ca != nil || certificate != nil || key != nil || tlsServerName != nil else { return nil }
        guard (certificate == nil) == (key == nil) else {
            throw CLIError.usage("--tls-cert and --tls-key go together")
        }
        return CallgateClientConfiguration.TLS(
            trustRoots: ca.map { .certificateFile($0) } ?? .system,
            serverName: tlsServerName,
            certificateFile: certificate,
            privateKeyFile: key
        )
    }

    /// The API key: --key, then CALLGATE_KEY, then --key-file / CALLGATE_KEY_FILE, then the default key file.
    func resolvedKey() throws -> String {
        if let key {
            guard !key.isEmpty else { throw CLIError.usage("--key is empty") }
            return key
        }
        if let key = environment["CALLGATE_KEY"], !key.isEmpty { return key }
        if let path = keyFile ?? environment["CALLGATE_KEY_FILE"].flatMap({ $0.isEmpty ? nil : $0 }) {
            return try Self.readKey(from: path)
        }
        if FileManager.default.fileExists(atPath: Self.defaultKeyFile) {
            return try Self.readKey(from: Self.defaultKeyFile)
        }
        throw CLIError(
            code: "NO_API_KEY",
            message: """
                no API key: pass --key KEY or --key-file PATH, or set CALLGATE_KEY or CALLGATE_KEY_FILE \
                (callgated writes the first admin key to \(Self.defaultKeyFile))
                """,
            exitCode: 2
        )
    }

    private static func readKey(from path: String) throws -> String {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw CLIError(code: "NO_API_KEY", message: "cannot read the key file \(path)", exitCode: 2)
        }
        let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !key.isEmpty else {
            throw CLIError(code: "NO_API_KEY", message: "the key file \(path) is empty", exitCode: 2)
        }
        return key
    }

    /// Connects and authenticates, runs `body`, and closes the connection.
    func withClient<T>(_ body: (CallgateClient) async throws -> T) async throws -> T {
        let host = resolvedHost()
        let port = try resolvedPort()
        let key = try resolvedKey()
        var configuration = CallgateClientConfiguration(host: host, port: port, apiKey: key, clientName: "callgate-cli")
        // Answers may be larger than the server's request limit: an import reports every row (≈ 30 bytes
        // each, 3 MB for 100,000 rows).
        configuration.maximumFrameBytes = 256 << 20
        configuration.tls = try resolvedTLS()
        let client: CallgateClient
        do {
            client = try await CallgateClient.connect(configuration)
        } catch {
            var failure = CLIError(error)
            if case .connectFailed = error.kind, !failure.message.contains(host) {
                failure.message += " (\(host):\(port); is callgated running?)"
            }
            throw failure
        }
        do {
            let result = try await body(client)
            await client.close()
            return result
        } catch {
            await client.close()
            throw error
        }
    }

    /// Prints `json` with --json, else `text` (when not empty).
    func emit(_ json: JSON, _ text: @autoclosure () -> String) {
        if self.json {
            writeToStandardOutput(json.rendered() + "\n")
        } else {
            let text = text()
            if !text.isEmpty { writeToStandardOutput(text + "\n") }
        }
    }
}

extension CallgateClient {
    /// Sends one request and returns its result's payload, picked by `extract`.
    func call<T>(
        _ method: Wire.Request.Method,
        timeout: Duration? = nil,
        _ extract: (Wire.Response.Result) -> T?
    ) async throws -> T {
        let result: Wire.Response.Result
        do {
            result = try await send(method, timeout: timeout)
        } catch {
            throw CLIError(error)
        }
        if case .error(let status) = result { throw CLIError(status: status) }
        guard let value = extract(result) else {
            throw CLIError(code: "PROTOCOL_VIOLATION", message: "the server answered with an unexpected result")
        }
        return value
    }
}

/// Reads pages from a cursor-paged list.
///
/// Without `limit` and `all`, one page of the server's default size; with `limit`, up to that many items;
/// with `all`, every page. Returns the items and the cursor of the next page (empty when there is none).
func collectPages<T>(
    limit: Int?,
    all: Bool,
    cursor: String?,
    _ fetch: (_ cursor: String, _ pageSize: UInt32) async throws -> (items: [T], next: String)
) async throws -> (items: [T], next: String) {
    var items: [T] = []
    var cursor = cursor ?? ""
    while true {
        let pageSize: UInt32
        if all {
            pageSize = 1000
        } else if let limit {
            pageSize = UInt32(min(1000, max(1, limit - items.count)))
        } else {
            pageSize = 0
        }
        let page = try await fetch(cursor, pageSize)
        items += page.items
        let previous = cursor
        cursor = page.next
        if cursor.isEmpty || cursor == previous { break }
        if !all {
            // One page by default; but a page the server cut short with nothing in it (a filter that
            // matches rarely, see proto/README.md) goes on.
            if let limit { guard items.count < limit else { break } } else if !items.isEmpty { break }
        }
    }
    if let limit, !all, items.count > limit { items.removeLast(items.count - limit) }
    return (items, cursor)
}

/// Tells the user there is more to read (human output only).
func noteMore(_ next: String, _ global: GlobalOptions, alternative: String = "--all") {
    if !next.isEmpty && !global.json {
        writeToStandardError("more: repeat with --cursor \(next) (or \(alternative))\n")
    }
}

/// `a,b, c` → `["a", "b", "c"]`; empty items dropped.
func splitList(_ text: String?) -> [String] {
    guard let text else { return [] }
    return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

/// `us, ca` → `["US", "CA"]`.
func splitCountries(_ text: String?) -> [String] { splitList(text).map { $0.uppercased() } }
