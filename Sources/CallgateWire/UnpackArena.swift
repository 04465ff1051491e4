public import CCallgateProto
public import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Memory for protobuf-c to unpack requests into without calling `malloc`: a bump allocator over one
/// block, reset after each request. Requests larger than the block fall back to `malloc`/`free`.
///
/// One per connection, used on its event loop only (not `Sendable`).
public final class UnpackArena {
    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    private var offset = 0
    private var allocator: ProtobufCAllocator

    public init(capacity: Int = 64 << 10) {
        self.capacity = capacity
        self.base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        self.allocator = ProtobufCAllocator(alloc: nil, free: nil, allocator_data: nil)
        self.allocator = ProtobufCAllocator(
            alloc: { data, size in
                Unmanaged<UnpackArena>.fromOpaque(data!).takeUnretainedValue().allocate(size)
            },
            free: { data, pointer in
                Unmanaged<UnpackArena>.fromOpaque(data!).takeUnretainedValue().free(pointer)
            },
            allocator_data: Unmanaged.passUnretained(self).toOpaque()
        )
    }

    deinit {
        self.base.deallocate()
    }

    private func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        let aligned = (size + 15) & ~15
        if self.offset + aligned <= self.capacity {
            let pointer = self.base + self.offset
            self.offset += aligned
            return pointer
        }
        return malloc(size)
    }

    private func free(_ pointer: UnsafeMutableRawPointer?) {
        guard let pointer else { return }
        if pointer >= self.base && pointer < self.base + self.capacity { return }
        Glibc.free(pointer)
    }

    /// Unpacks one request frame body; `nil` when it is not a valid `Request`. Pass the result to
    /// ``release(_:)`` before unpacking the next one.
    public func unpackRequest(_ bytes: UnsafeRawBufferPointer) -> UnsafeMutablePointer<Callgate__V1__Request>? {
        withUnsafeMutablePointer(to: &self.allocator) { allocator in
            callgate__v1__request__unpack(
                allocator,
                bytes.count,
                bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
            )
        }
    }

    /// Frees what ``unpackRequest(_:)`` returned and resets the arena.
    public func release(_ message: UnsafeMutablePointer<Callgate__V1__Request>) {
        withUnsafeMutablePointer(to: &self.allocator) { allocator in
            callgate__v1__request__free_unpacked(message, allocator)
        }
        self.offset = 0
    }
}

/// The fields of an `AuthorizeCallResponse` as machine words, for encoding without building Swift
/// strings or C allocations (the hot path).
public struct AuthorizeCallAnswer: Sendable {
    public var allowed: Bool
    /// The deny reason's wire value (0 when allowed).
    public var reason: Int32
    /// The caller ID's E.164 digits; 0 when none.
    public var callerIDDigits: UInt64
    /// ISO 3166 alpha-2 (or `001`) of the destination; empty when unknown.
    public var destinationCountry: String
    public var count: UInt32
    public var limit: UInt32
    public var remaining: UInt32
    public var resetsAtMilliseconds: Int64

    public init(
        allowed: Bool,
        reason: Int32,
        callerIDDigits: UInt64,
        destinationCountry: String,
        count: UInt32,
        limit: UInt32,
        remaining: UInt32,
        resetsAtMilliseconds: Int64
    ) {
        self.allowed = allowed
        self.reason = reason
        self.callerIDDigits = callerIDDigits
        self.destinationCountry = destinationCountry
        self.count = count
        self.limit = limit
        self.remaining = remaining
        self.resetsAtMilliseconds = resetsAtMilliseconds
    }
}

extension Wire {
    /// The most bytes a `Response{request_id, authorize_call}` can pack to: request id 11, the field's
    /// tag and length 2, verdict and reason 11 each, caller id 18 ("+" and 15 digits), country 9,
    /// count, limit and remaining 6 each, resets at 11; 91, rounded up.
    static let authorizeCallResponseBound = 128

    /// Appends a `Response{request_id, authorize_call}` frame, packed by protobuf-c from structs on the
    /// stack: no heap allocation.
    public static func encodeAuthorizeCallResponse(
        requestID: UInt64,
        _ answer: AuthorizeCallAnswer,
        into buffer: inout ByteBuffer
    ) {
        // "+" and up to 15 digits and a NUL.
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 20) { callerID in
            var digits = answer.callerIDDigits
            if digits == 0 {
                callerID[0] = 0
            } else {
                var scratch: (UInt64, UInt64) = (0, 0)
                let count = withUnsafeMutableBytes(of: &scratch) { raw -> Int in
                    var n = 0
                    while digits > 0 {
                        raw[n] = UInt8(truncatingIfNeeded: digits % 10) &+ 48
                        digits /= 10
                        n += 1
                    }
                    callerID[0] = 43  // "+"
                    for i in 0..<n { callerID[1 + i] = CChar(bitPattern: raw[n - 1 - i]) }
                    return n
                }
                callerID[1 + count] = 0
            }
            var country = answer.destinationCountry
            country.withUTF8 { countryUTF8 in
                withUnsafeTemporaryAllocation(of: CChar.self, capacity: 8) { countryC in
                    let n = min(countryUTF8.count, 7)
                    for i in 0..<n { countryC[i] = CChar(bitPattern: countryUTF8[i]) }
                    countryC[n] = 0
                    var message = Callgate__V1__AuthorizeCallResponse()
                    callgate__v1__authorize_call_response__init(&message)
                    message.verdict =
                        answer.allowed ? CALLGATE__V1__VERDICT__VERDICT_ALLOW : CALLGATE__V1__VERDICT__VERDICT_DENY
                    message.reason = Callgate__V1__DenyReason(rawValue: .init(truncatingIfNeeded: answer.reason))
                    message.caller_id = callerID.baseAddress
                    message.destination_country = countryC.baseAddress
                    message.count = answer.count
                    message.limit = answer.limit
                    message.remaining = answer.remaining
                    message.resets_at_ms = answer.resetsAtMilliseconds
                    withUnsafeMutablePointer(to: &message) { inner in
                        var response = Callgate__V1__Response()
                        callgate__v1__response__init(&response)
                        response.request_id = requestID
                        response.result_case = CALLGATE__V1__RESPONSE__RESULT_AUTHORIZE_CALL
                        response.authorize_call = inner
                        // Packed straight after its length prefix, into room for the largest such
                        // message, and the prefix filled in after: protobuf-c then walks the message
                        // once less than with `get_packed_size` first.
                        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 4 + Self.authorizeCallResponseBound) {
                            bytes in
                            let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
                            let size = callgate__v1__response__pack(&response, base + 4)
                            precondition(size <= Self.authorizeCallResponseBound, "AuthorizeCall response bound")
                            bytes.storeBytes(of: UInt32(size).bigEndian, toByteOffset: 0, as: UInt32.self)
                            return 4 + size
                        }
                    }
                }
            }
        }
    }
}
