import CCallgateProto
import CallgateWire
import NIOCore
import Testing

/// The hot path's encoder and arena produce and read the same bytes as the generic codec.
@Suite struct FastPathTests {
    @Test(arguments: [
        AuthorizeCallAnswer(
            allowed: true,
            reason: 0,
            callerIDDigits: 14_155_550_100,
            destinationCountry: "US",
            count: 3,
            limit: 100,
            remaining: 97,
            resetsAtMilliseconds: 1_790_000_000_000
        ),
        AuthorizeCallAnswer(
            allowed: false,
            reason: 8,
            callerIDDigits: 0,
            destinationCountry: "",
            count: 0,
            limit: 0,
            remaining: 0,
            resetsAtMilliseconds: 0
        ),
        AuthorizeCallAnswer(
            allowed: false,
            reason: 3,
            callerIDDigits: 999_999_999_999_999,
            destinationCountry: "001",
            count: .max,
            limit: .max,
            remaining: 0,
            resetsAtMilliseconds: -1
        ),
    ])
    func authorizeAnswerDecodesAsTheGenericResponse(_ answer: AuthorizeCallAnswer) throws {
        var buffer = ByteBuffer()
        Wire.encodeAuthorizeCallResponse(requestID: 1 << 40, answer, into: &buffer)
        let frame = try #require(try FrameDecoder().next(&buffer))
        #expect(buffer.readableBytes == 0)
        let response = try Wire.Response.decode(frame)
        #expect(response.requestID == 1 << 40)
        guard case .authorizeCall(let decoded)? = response.result else {
            Issue.record("not an authorize_call result: \(response)")
            return
        }
        #expect(decoded.verdict == (answer.allowed ? .allow : .deny))
        #expect(decoded.reason.rawValue == answer.reason)
        #expect(decoded.callerID == (answer.callerIDDigits == 0 ? "" : "+\(answer.callerIDDigits)"))
        #expect(decoded.destinationCountry == answer.destinationCountry)
        #expect(decoded.count == answer.count)
        #expect(decoded.limit == answer.limit)
        #expect(decoded.remaining == answer.remaining)
        #expect(decoded.resetsAtMs == answer.resetsAtMilliseconds)
    }

    @Test func arenaUnpacksSmallAndLargeRequestsRepeatedly() throws {
        let arena = UnpackArena(capacity: 1024)
        for size in [0, 10, 5_000, 200_000, 10] {
            let request = Wire.Request(
                requestID: UInt64(size),
                method: .importNumbers(Wire.ImportNumbersRequest(csv: String(repeating: "x", count: size)))
            )
            let bytes = request.serialized()
            let message = try #require(bytes.withUnsafeBytes { arena.unpackRequest($0) })
            #expect(Wire.Request(c: message) == request)
            arena.release(message)
        }
        let garbage: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]
        #expect(garbage.withUnsafeBytes { arena.unpackRequest($0) } == nil)
    }
}
