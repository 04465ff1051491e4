public import NIOCore

/// The messages of `proto/callgate/v1/callgate.proto` as Swift values, and the frames that carry them.
///
/// Every frame on the wire is a 4-byte big-endian length followed by that many bytes of one
/// protobuf message (a ``Wire/Request`` from client to server, a ``Wire/Response`` back):
///
/// ```
/// +----------------+----------------------------------+
/// | length: UInt32 | Request or Response (protobuf)   |
/// |  (big endian)  |  `length` bytes                  |
/// +----------------+----------------------------------+
/// ```
///
/// The Swift types are generated from the proto file by `scripts/generate-wire.py`
/// (`Generated/Messages.swift`) and encoded and decoded by protobuf-c.
public enum Wire {
    /// The protocol version this module speaks (`HelloRequest.protocol_version`).
    public static let protocolVersion: UInt32 = 1
    /// The length prefix's size in bytes.
    public static let lengthPrefixSize = 4
    /// The default largest frame body accepted: 1 MiB.
    public static let defaultMaximumFrameBytes = 1 << 20
}

/// Why bytes could not be read as a frame or a message.
public enum WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The length prefix announces more than the receiver accepts.
    case frameTooLarge(length: Int, maximum: Int)
    /// The bytes are not a protobuf message of the expected type.
    case malformed(length: Int)

    public var description: String {
        switch self {
        case .frameTooLarge(let length, let maximum):
            return "frame of \(length) bytes exceeds the limit of \(maximum) bytes"
        case .malformed(let length):
            return "frame of \(length) bytes is not a valid protobuf message"
        }
    }
}

extension Wire.Response {
    /// A response carrying an error status.
    public static func error(_ requestID: UInt64, _ code: Wire.StatusCode, _ message: String) -> Wire.Response {
        Wire.Response(requestID: requestID, result: .error(Wire.Status(code: code, message: message)))
    }
}

/// Splits a byte stream into frame bodies: reads the 4-byte big-endian length, refuses a length over
/// `maximumFrameBytes` before buffering it (so a 4 GiB prefix costs nothing), then emits the body as a
/// slice of the read buffer (no copy).
///
/// ```
/// | 00 00 00 03 | A B C | 00 00 00 01 | D |   ->   | A B C |  | D |
/// ```
public struct FrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = ByteBuffer

    public let maximumFrameBytes: Int

    public init(maximumFrameBytes: Int = Wire.defaultMaximumFrameBytes) {
        self.maximumFrameBytes = maximumFrameBytes
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try self.next(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(
        context: ChannelHandlerContext,
        buffer: inout ByteBuffer,
        seenEOF: Bool
    ) throws -> DecodingState {
        try self.decode(context: context, buffer: &buffer)
    }

    /// Takes the next whole frame's body off `buffer`, or `nil` when it has not fully arrived.
    public func next(_ buffer: inout ByteBuffer) throws(WireError) -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard length <= self.maximumFrameBytes else {
            throw WireError.frameTooLarge(length: Int(length), maximum: self.maximumFrameBytes)
        }
        guard buffer.readableBytes >= Wire.lengthPrefixSize + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: Wire.lengthPrefixSize)
        return buffer.readSlice(length: Int(length))
    }
}
