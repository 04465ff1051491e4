public import NIOCore

/// The load generator's own protobuf codec: just enough of `proto/callgate/v1/callgate.proto` to send
/// AuthorizeCall frames and to read what a load run counts from the responses, without protobuf-c, without
/// building Swift messages, and without allocating per request.
///
/// Requests are `Request{1: request_id varint, <method field>: <method message>}`: the method part is
/// encoded once (``authorizeCallMethod(agentID:destination:)``) and each frame only prepends the length
/// prefix and the request id (``writeFrame(requestID:method:into:)``).
///
/// Responses are read by ``decodeResponse(_:)-(UnsafeRawBufferPointer)``: the request id (field 1), which case
/// of the `result` oneof is set, and the few values inside it the load generator needs (the status code of
/// `error`, verdict and reason of `authorize_call`, the reservation token of `pick_number`). Every other
/// field is skipped by its wire type (varint, 64-bit, length-delimited, 32-bit).
public enum LoadCodec {
    /// `Request.authorize_call` / `Response.authorize_call`.
    public static let authorizeCallField = 11
    /// `Response.error`.
    public static let errorField = 2
    /// `Request.hello` / `Response.hello`.
    public static let helloField = 10
    /// `Request.pick_number` / `Response.pick_number`.
    public static let pickNumberField = 12

    /// Protobuf wire types.
    enum WireType: UInt64 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case fixed32 = 5
    }

    // MARK: - Encoding

    /// The method part of an AuthorizeCall request: field 11 holding `AuthorizeCallRequest{1: agent_id,
    /// 2: destination}` (empty strings are left out, as proto3 does).
    public static func authorizeCallMethod(agentID: String, destination: String) -> [UInt8] {
        var message: [UInt8] = []
        appendString(field: 1, agentID, to: &message)
        appendString(field: 2, destination, to: &message)
        var method: [UInt8] = []
        appendTag(field: authorizeCallField, .lengthDelimited, to: &method)
        appendVarint(UInt64(message.count), to: &method)
        method += message
        return method
    }

    /// The size of a whole frame (prefix included) for `requestID` and a method part of `methodBytes`.
    @inlinable
    public static func frameSize(requestID: UInt64, methodBytes: Int) -> Int {
        4 + 1 + varintSize(requestID) + methodBytes
    }

    /// Appends one request frame: the 4-byte big-endian length, field 1 (the request id; left out when 0,
    /// as proto3 does), then the method part as it is.
    public static func writeFrame(requestID: UInt64, method: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        let idBytes = requestID == 0 ? 0 : 1 + varintSize(requestID)
        let bodySize = idBytes + method.count
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 4 + bodySize) { out in
            let base = out.baseAddress!
            let length = UInt32(bodySize)
            base.storeBytes(of: UInt8(truncatingIfNeeded: length >> 24), as: UInt8.self)
            base.storeBytes(of: UInt8(truncatingIfNeeded: length >> 16), toByteOffset: 1, as: UInt8.self)
            base.storeBytes(of: UInt8(truncatingIfNeeded: length >> 8), toByteOffset: 2, as: UInt8.self)
            base.storeBytes(of: UInt8(truncatingIfNeeded: length), toByteOffset: 3, as: UInt8.self)
            var offset = 4
            if requestID != 0 {
                base.storeBytes(of: 0x08, toByteOffset: offset, as: UInt8.self)
                offset += 1
                var value = requestID
                while value >= 0x80 {
                    base.storeBytes(of: UInt8(truncatingIfNeeded: value) | 0x80, toByteOffset: offset, as: UInt8.self)
                    value >>= 7
                    offset += 1
                }
                base.storeBytes(of: UInt8(truncatingIfNeeded: value), toByteOffset: offset, as: UInt8.self)
                offset += 1
            }
            if let source = method.baseAddress, method.count > 0 {
                (base + offset).copyMemory(from: source, byteCount: method.count)
            }
            return 4 + bodySize
        }
    }

    /// ``writeFrame(requestID:method:into:)`` for a method part held in an array.
    public static func writeFrame(requestID: UInt64, method: [UInt8], into buffer: inout ByteBuffer) {
        method.withUnsafeBytes { writeFrame(requestID: requestID, method: $0, into: &buffer) }
    }

    /// The number of bytes `value` takes as a varint (1 to 10).
    @inlinable
    public static func varintSize(_ value: UInt64) -> Int {
        // 7 bits per byte; 0 still takes one byte.
        let bits = 64 - (value | 1).leadingZeroBitCount
        return (bits + 6) / 7
    }

    static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    static func appendTag(field: Int, _ type: WireType, to bytes: inout [UInt8]) {
        appendVarint(UInt64(field) << 3 | type.rawValue, to: &bytes)
    }

    static func appendString(field: Int, _ text: String, to bytes: inout [UInt8]) {
        guard !text.isEmpty else { return }
        appendTag(field: field, .lengthDelimited, to: &bytes)
        appendVarint(UInt64(text.utf8.count), to: &bytes)
        bytes += text.utf8
    }

    // MARK: - Decoding

    /// Reads a response frame's body (without the length prefix); `nil` when it is not valid protobuf.
    public static func decodeResponse(_ buffer: ByteBuffer) -> LoadResponse? {
        buffer.withUnsafeReadableBytes { decodeResponse($0) }
    }

    /// Reads a response frame's body (without the length prefix); `nil` when it is not valid protobuf.
    public static func decodeResponse(_ bytes: UnsafeRawBufferPointer) -> LoadResponse? {
        var reader = ProtoReader(bytes)
        var response = LoadResponse(requestID: 0, result: .none)
        while !reader.isAtEnd {
            guard let (field, type) = reader.readTag() else { return nil }
            switch (field, type) {
            case (1, .varint):
                guard let id = reader.readVarint() else { return nil }
                response.requestID = id
            case (1, _):
                return nil
            case (_, .lengthDelimited) where field >= 2 && field <= 80:
                guard let message = reader.readLengthDelimited() else { return nil }
                guard let result = decodeResult(field: field, message) else { return nil }
                response.result = result
            default:
                guard reader.skip(type) else { return nil }
            }
        }
        return response
    }

    private static func decodeResult(field: Int, _ bytes: UnsafeRawBufferPointer) -> LoadResponse.Result? {
        var reader = ProtoReader(bytes)
        switch field {
        case errorField:
            // Status{1: code, 2: message}
            var code: Int32 = 0
            while !reader.isAtEnd {
                guard let (field, type) = reader.readTag() else { return nil }
                if field == 1 && type == .varint {
                    guard let value = reader.readVarint() else { return nil }
                    code = Int32(truncatingIfNeeded: value)
                } else if !reader.skip(type) {
                    return nil
                }
            }
            return .error(code: code)
        case authorizeCallField:
            // AuthorizeCallResponse{1: verdict, 2: reason, …}
            var verdict: Int32 = 0
            var reason: Int32 = 0
            while !reader.isAtEnd {
                guard let (field, type) = reader.readTag() else { return nil }
                if (field == 1 || field == 2) && type == .varint {
                    guard let value = reader.readVarint() else { return nil }
                    if field == 1 {
                        verdict = Int32(truncatingIfNeeded: value)
                    } else {
                        reason = Int32(truncatingIfNeeded: value)
                    }
                } else if !reader.skip(type) {
                    return nil
                }
            }
            return .authorizeCall(verdict: verdict, reason: reason)
        case pickNumberField:
            // PickNumberResponse{1: number, 2: reservation_token, …}
            var token: UInt64 = 0
            while !reader.isAtEnd {
                guard let (field, type) = reader.readTag() else { return nil }
                if field == 2 && type == .varint {
                    guard let value = reader.readVarint() else { return nil }
                    token = value
                } else if !reader.skip(type) {
                    return nil
                }
            }
            return .pickNumber(reservationToken: token)
        case helloField:
            return .hello
        default:
            return .other(field: field)
        }
    }
}

/// What ``LoadCodec`` reads from a response.
public struct LoadResponse: Sendable, Hashable {
    /// The case of `Response.result` and the values the load generator uses.
    public enum Result: Sendable, Hashable {
        /// No result set.
        case none
        /// `error`: the `Status.code` (a `Wire.StatusCode` raw value).
        case error(code: Int32)
        /// `hello`.
        case hello
        /// `authorize_call`: raw values of `Wire.Verdict` and `Wire.DenyReason`.
        case authorizeCall(verdict: Int32, reason: Int32)
        /// `pick_number`: the reservation token (0 when it assigned).
        case pickNumber(reservationToken: UInt64)
        /// Another result, by its field number in `Response`.
        case other(field: Int)
    }

    public var requestID: UInt64
    public var result: Result

    public init(requestID: UInt64, result: Result) {
        self.requestID = requestID
        self.result = result
    }
}

/// Reads protobuf fields from raw bytes; every read returns `nil` (or `false`) on truncated or invalid input.
struct ProtoReader {
    private let bytes: UnsafeRawBufferPointer
    private var index = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { self.index >= self.bytes.count }

    mutating func readVarint() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            self.index += 1
            if shift == 63 && byte > 1 { return nil }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }

    /// The next field's number and wire type; groups (wire types 3 and 4) and field 0 are invalid here.
    mutating func readTag() -> (field: Int, type: LoadCodec.WireType)? {
        guard let key = self.readVarint(), let type = LoadCodec.WireType(rawValue: key & 7) else { return nil }
        let field = key >> 3
        guard field > 0, field <= 536_870_911 else { return nil }
        return (Int(field), type)
    }

    mutating func readLengthDelimited() -> UnsafeRawBufferPointer? {
        guard let length = self.readVarint(), length <= UInt64(self.bytes.count - self.index) else { return nil }
        let start = self.index
        self.index += Int(length)
        return UnsafeRawBufferPointer(rebasing: self.bytes[start..<self.index])
    }

    /// Skips a field's value of wire type `type`.
    mutating func skip(_ type: LoadCodec.WireType) -> Bool {
        switch type {
        case .varint:
            return self.readVarint() != nil
        case .fixed64:
            return self.advance(8)
        case .fixed32:
            return self.advance(4)
        case .lengthDelimited:
            return self.readLengthDelimited() != nil
        }
    }

    private mutating func advance(_ count: Int) -> Bool {
        guard self.bytes.count - self.index >= count else { return false }
        self.index += count
        return true
    }
}
