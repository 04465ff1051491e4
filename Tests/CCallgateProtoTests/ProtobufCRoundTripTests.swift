import CCallgateProto
import Testing

/// The committed protoc-c code links against the system libprotobuf-c and round-trips the envelope.
@Suite struct ProtobufCRoundTripTests {
    /// Packs a Request carrying AuthorizeCall, as a client would.
    static func packAuthorize(requestID: UInt64, agent: String, destination: String, dryRun: Bool) -> [UInt8] {
        agent.withCString { agentC in
            destination.withCString { destinationC in
                var authorize = Callgate__V1__AuthorizeCallRequest()
                callgate__v1__authorize_call_request__init(&authorize)
                authorize.agent_id = UnsafeMutablePointer(mutating: agentC)
                authorize.destination = UnsafeMutablePointer(mutating: destinationC)
                authorize.dry_run = dryRun ? 1 : 0
                return withUnsafeMutablePointer(to: &authorize) { authorizePointer in
                    var request = Callgate__V1__Request()
                    callgate__v1__request__init(&request)
                    request.request_id = requestID
                    request.method_case = CALLGATE__V1__REQUEST__METHOD_AUTHORIZE_CALL
                    request.authorize_call = authorizePointer
                    let size = callgate__v1__request__get_packed_size(&request)
                    var bytes = [UInt8](repeating: 0, count: size)
                    let written = bytes.withUnsafeMutableBufferPointer {
                        callgate__v1__request__pack(&request, $0.baseAddress)
                    }
                    #expect(written == size)
                    return bytes
                }
            }
        }
    }

    @Test func requestRoundTrips() throws {
        let bytes = Self.packAuthorize(requestID: 42, agent: "agent-7", destination: "+12025550123", dryRun: true)
        let decoded = try #require(
            bytes.withUnsafeBufferPointer { callgate__v1__request__unpack(nil, $0.count, $0.baseAddress) }
        )
        defer { callgate__v1__request__free_unpacked(decoded, nil) }
        #expect(decoded.pointee.request_id == 42)
        #expect(decoded.pointee.method_case == CALLGATE__V1__REQUEST__METHOD_AUTHORIZE_CALL)
        let authorize = try #require(decoded.pointee.authorize_call)
        #expect(String(cString: authorize.pointee.agent_id) == "agent-7")
        #expect(String(cString: authorize.pointee.destination) == "+12025550123")
        #expect(String(cString: authorize.pointee.from_number) == "")
        #expect(authorize.pointee.dry_run == 1)
    }

    @Test func responseWithDenyRoundTrips() throws {
        var answer = Callgate__V1__AuthorizeCallResponse()
        callgate__v1__authorize_call_response__init(&answer)
        answer.verdict = CALLGATE__V1__VERDICT__VERDICT_DENY
        answer.reason = CALLGATE__V1__DENY_REASON__DENY_REASON_DAILY_LIMIT_REACHED
        answer.count = 100
        answer.limit = 100
        answer.resets_at_ms = 1_781_582_400_000
        let bytes: [UInt8] = withUnsafeMutablePointer(to: &answer) { answerPointer in
            var response = Callgate__V1__Response()
            callgate__v1__response__init(&response)
            response.request_id = 7
            response.result_case = CALLGATE__V1__RESPONSE__RESULT_AUTHORIZE_CALL
            response.authorize_call = answerPointer
            var bytes = [UInt8](repeating: 0, count: callgate__v1__response__get_packed_size(&response))
            _ = bytes.withUnsafeMutableBufferPointer { callgate__v1__response__pack(&response, $0.baseAddress) }
            return bytes
        }
        let decoded = try #require(
            bytes.withUnsafeBufferPointer { callgate__v1__response__unpack(nil, $0.count, $0.baseAddress) }
        )
        defer { callgate__v1__response__free_unpacked(decoded, nil) }
        #expect(decoded.pointee.request_id == 7)
        let result = try #require(decoded.pointee.authorize_call)
        #expect(result.pointee.reason == CALLGATE__V1__DENY_REASON__DENY_REASON_DAILY_LIMIT_REACHED)
        #expect(result.pointee.count == 100 && result.pointee.resets_at_ms == 1_781_582_400_000)
    }

    @Test func garbageIsRejectedNotCrashed() {
        // A length-delimited field (request id's wire type is varint) claiming more bytes than there are.
        let garbage: [[UInt8]] = [[0x0A, 0xFF, 0x01], [0xFF, 0xFF, 0xFF, 0xFF], [0x52, 0x05, 0x0A]]
        for bytes in garbage {
            let decoded = bytes.withUnsafeBufferPointer { callgate__v1__request__unpack(nil, $0.count, $0.baseAddress) }
            #expect(decoded == nil)
            if let decoded { callgate__v1__request__free_unpacked(decoded, nil) }
        }
    }

    @Test func denyReasonValuesMatchTheEngine() {
        // proto/ promises DenyReason values equal CallgateCore.DenyReason raw values (1...8).
        #expect(CALLGATE__V1__DENY_REASON__DENY_REASON_NO_ASSIGNMENT.rawValue == 1)
        #expect(CALLGATE__V1__DENY_REASON__DENY_REASON_INVALID_DESTINATION.rawValue == 8)
        #expect(CALLGATE__V1__STATUS_CODE__STATUS_CODE_UNAUTHENTICATED.rawValue == 16)
    }
}
