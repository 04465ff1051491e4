import ArgumentParser
import CallgateClient
import CallgateWire
import Foundation

/// `callgate`: the admin command line of a Callgate server.
@main
struct Callgate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "callgate",
        abstract: "Administer a Callgate server: numbers, agents, assignments, history, keys.",
        discussion: """
            Every command connects to callgated (--host, --port) and authenticates with an API key: --key, \
            $CALLGATE_KEY, --key-file, $CALLGATE_KEY_FILE, or ./callgate-data/admin.key (in that order). \
            Add --json to any command for machine-readable output.
            """,
        subcommands: [
            Numbers.self, Agents.self, Assign.self, Release.self, Assignments.self, Authorize.self, Pick.self,
            Reset.self, History.self, Timeline.self, Usage.self, Keys.self, Stats.self, LoadCommand.self,
            Pools.self, AssignMany.self, ReleaseMany.self, UpdateStatusMany.self, DeleteMany.self,
        ]
    )

    /// Runs the command and turns every failure into `error: CODE: message` and an exit code: 2 for
    /// usage errors, 1 for server and connection errors.
    static func main() async {
        do {
            var command = try await asyncParseAsRoot(nil)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as CLIError {
            fail(code: error.code, message: error.message, exitCode: error.exitCode)
        } catch let error as CallgateClientError {
            let failure = CLIError(error)
            fail(code: failure.code, message: failure.message, exitCode: failure.exitCode)
        } catch {
            var code = exitCode(for: error)
            var text = fullMessage(for: error)
            if code == .validationFailure {
                code = ExitCode(2)
                if text.hasPrefix("Error: ") { text = "error: USAGE: " + text.dropFirst("Error: ".count) }
            }
            if code.isSuccess {
                if !text.isEmpty { print(text) }
            } else if !text.isEmpty {
                writeToStandardError(text + "\n")
            }
            Foundation.exit(code.rawValue)
        }
    }

    private static func fail(code: String, message: String, exitCode: Int32) -> Never {
        writeToStandardError("error: \(code): \(message)\n")
        Foundation.exit(exitCode)
    }
}

/// A failure the CLI reports as `error: CODE: message`.
struct CLIError: Error {
    var code: String
    var message: String
    var exitCode: Int32

    init(code: String, message: String, exitCode: Int32 = 1) {
        self.code = code
        self.message = message
        self.exitCode = exitCode
    }

    /// A mistake in how the command was called (exit code 2).
    static func usage(_ message: String) -> CLIError { CLIError(code: "USAGE", message: message, exitCode: 2) }

    init(status: Wire.Status) {
        self.init(code: constantName(status.code), message: status.message)
    }

    init(_ error: CallgateClientError) {
        let code: String
        if let status = error.statusCode {
            code = constantName(status)
        } else {
            switch error.kind {
            case .status(let status): code = constantName(status)
            case .connectFailed: code = "CONNECT_FAILED"
            case .connectionClosed: code = "CONNECTION_CLOSED"
            case .timeout: code = "TIMEOUT"
            case .protocolViolation: code = "PROTOCOL_VIOLATION"
            }
        }
        self.init(code: code, message: error.message)
    }
}

/// Unbuffered, so that it interleaves with standard error in order.
func writeToStandardOutput(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

func writeToStandardError(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}
