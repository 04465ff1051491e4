/// An error from an engine operation: a code that maps onto a gRPC status and a message a user
/// understands.
///
/// Messages never contain a whole phone number (``PhoneNumber/description`` is redacted), so they are
/// safe to log and to send.
public struct CallgateError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure; `rawValue` is the gRPC status code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: Int

        public init(rawValue: Int) { self.rawValue = rawValue }

        public static let invalidArgument = Code(rawValue: 3)
        public static let notFound = Code(rawValue: 5)
        public static let alreadyExists = Code(rawValue: 6)
        public static let permissionDenied = Code(rawValue: 7)
        public static let resourceExhausted = Code(rawValue: 8)
        public static let failedPrecondition = Code(rawValue: 9)
        public static let unimplemented = Code(rawValue: 12)
        public static let `internal` = Code(rawValue: 13)
        public static let unavailable = Code(rawValue: 14)
        public static let unauthenticated = Code(rawValue: 16)

        public var description: String {
            switch self.rawValue {
            case 3: return "INVALID_ARGUMENT"
            case 5: return "NOT_FOUND"
            case 6: return "ALREADY_EXISTS"
            case 7: return "PERMISSION_DENIED"
            case 8: return "RESOURCE_EXHAUSTED"
            case 9: return "FAILED_PRECONDITION"
            case 12: return "UNIMPLEMENTED"
            case 13: return "INTERNAL"
            case 14: return "UNAVAILABLE"
            case 16: return "UNAUTHENTICATED"
            default: return "CODE_\(self.rawValue)"
            }
        }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(self.code): \(self.message)" }
}

extension CallgateError {
    init(_ error: PhoneNumberError, field: String) {
        self.init(.invalidArgument, "\(field): \(error)")
    }
}
