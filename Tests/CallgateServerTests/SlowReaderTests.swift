import CallgateClient
import CallgateServer
import CallgateWire
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A client that sends but never reads is first no longer read from, then cut off; memory for its
/// replies stays bounded and other clients are served meanwhile.
@Suite("Backpressure") struct SlowReaderTests {
    @Test(.timeLimit(.minutes(2))) func aClientThatDoesNotReadIsCutOff() async throws {
        let configure: (inout ServerConfiguration) -> Void = {
            $0.outboundHighWatermark = 64 << 10
            $0.slowReaderTimeout = .milliseconds(500)
        }
        try await withTestServer(configure: configure) { server in
            let admin = try await server.connect()
            defer { Task { await admin.close() } }
            _ = try await admin.addNumber(Wire.AddNumberRequest(number: "+14155550100", provider: "telnyx"))
            _ = try await admin.upsertAgent(Wire.UpsertAgentRequest(id: "a"))
            _ = try await admin.assign(Wire.AssignRequest(number: "+14155550100", agentID: "a"))

            // A socket with a small receive buffer that never reads.
            let raw = try RawConnection(port: server.port, receiveBufferBytes: 4096, sendTimeoutSeconds: 2)
            let hello = Wire.HelloRequest(protocolVersion: 1, apiKey: server.adminKey)
            var batch = RawConnection.frame(Wire.Request(requestID: 1, method: .hello(hello)))
            for id in 2...1000 {
                let call = Wire.AuthorizeCallRequest(agentID: "a", destination: "+12025550123", dryRun: true)
                batch += RawConnection.frame(Wire.Request(requestID: UInt64(id), method: .authorizeCall(call)))
            }
            // Keep sending (each batch asks for ~70 KB of replies) until the server cuts us off; a
            // server that buffered without end would accept all 2,000 batches.
            var cutOff = false
            for _ in 0..<2_000 {
                let error = raw.send(batch)
                if error != 0 && error != EAGAIN && error != EWOULDBLOCK {
                    cutOff = true
                    break
                }
                if error != 0 { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(cutOff, "the server kept accepting requests from a client that never reads")

            // The well-behaved client was served all along and the slow one is gone.
            let answer = try await admin.authorizeCall(
                Wire.AuthorizeCallRequest(agentID: "a", destination: "+12025550123", dryRun: true)
            )
            #expect(answer.verdict == .allow)
            var connections = UInt32.max
            for _ in 0..<50 {
                connections = try await admin.stats(Wire.StatsRequest()).connections
                if connections == 1 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(connections == 1)
        }
    }
}
