import CallgateClient
import CallgateServer
import CallgateWire
import Foundation
import Testing

/// A client that sends its frames one byte at a time is served correctly (frames are reassembled,
/// nothing is decoded early) and does not hold up anyone else.
@Suite("Byte dribbling") struct DribbleTests {
    @Test(.timeLimit(.minutes(1))) func framesSentOneByteAtATimeAreAnswered() async throws {
        // The hello alone is ~80 sleeps of 2 ms; on a loaded machine they can add up to more than
        // the default 10-s hello timeout, which is not what this test is about.
        let configure: (inout ServerConfiguration) -> Void = { $0.helloTimeout = .seconds(50) }
        try await withTestServer(configure: configure) { server in
            let admin = try await server.connect()
            defer { Task { await admin.close() } }
            _ = try await admin.addNumber(Wire.AddNumberRequest(number: "+14155550100", provider: "telnyx"))
            _ = try await admin.upsertAgent(Wire.UpsertAgentRequest(id: "a"))
            _ = try await admin.assign(Wire.AssignRequest(number: "+14155550100", agentID: "a"))

            let raw = try RawConnection(port: server.port)
            func dribble(_ request: Wire.Request) async throws {
                for byte in RawConnection.frame(request) {
                    raw.send([byte])
                    try await Task.sleep(for: .milliseconds(2))
                }
            }
            let hello = Wire.HelloRequest(protocolVersion: 1, apiKey: server.adminKey)
            try await dribble(Wire.Request(requestID: 1, method: .hello(hello)))
            let helloAnswer = try #require(raw.receive())
            #expect(helloAnswer.requestID == 1)
            #expect(helloAnswer.result?.statusCode == .ok)

            // While the slow frame trickles in, the well-behaved client is answered.
            let call = Wire.AuthorizeCallRequest(agentID: "a", destination: "+12025550123")
            let fastCall = Task { try await admin.authorizeCall(call) }
            try await dribble(Wire.Request(requestID: 2, method: .authorizeCall(call)))
            let fast = try await fastCall.value
            #expect(fast.verdict == .allow)
            let answer = try #require(raw.receive())
            #expect(answer.requestID == 2)
            guard case .authorizeCall(let decision)? = answer.result else {
                Issue.record("expected an authorize_call result, got \(String(describing: answer.result))")
                return
            }
            #expect(decision.verdict == .allow)
            // Both calls counted once each, in whichever order they reached the engine.
            #expect(Set([fast.count, decision.count]) == [1, 2])
        }
    }
}
