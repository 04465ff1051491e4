public import CallgateWire

/// Why a ``CallgateClient`` call failed.
public struct CallgateClientError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// The server answered the request with an error status (`PERMISSION_DENIED`, `NOT_FOUND`, …).
        case status(Wire.StatusCode)
        /// The TCP connection could not be established.
        case connectFailed
        /// The connection closed (by either side, or on an I/O error) before the response arrived.
        case connectionClosed
        /// No response within the request's timeout; the connection stays usable.
        case timeout
        /// The server sent something the protocol does not allow (an undecodable frame, the wrong result).
        case protocolViolation
    }

    public var kind: Kind
    /// A sentence for a user: the server's message for ``Kind/status(_:)``, else what went wrong.
    public var message: String

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    /// The server's status code, for ``Kind/status(_:)``.
    public var statusCode: Wire.StatusCode? {
        if case .status(let code) = self.kind { return code }
        return nil
    }

    /// `PERMISSION_DENIED: …` for a status, else the message.
    public var description: String {
        guard let code = self.statusCode else { return self.message }
        return "\(code.protoName): \(self.message)"
    }

    static func status(_ status: Wire.Status) -> CallgateClientError {
        CallgateClientError(kind: .status(status.code), message: status.message)
    }
}

extension Wire.StatusCode {
    /// The code as the proto and `proto/README.md` spell it: `INVALID_ARGUMENT`.
    var protoName: String {
        var name = ""
        for character in String(describing: self) {
            if character.isUppercase { name.append("_") }
            name += character.uppercased()
        }
        return name
    }
}
