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
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var small: Int32 = 4096
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(server.port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            try #require(connected == 0)

            func frame(_ request: Wire.Request) -> [UInt8] {
                let body = request.serialized()
                return withUnsafeBytes(of: UInt32(body.count).bigEndian, Array.init) + body
            }
            var batch = frame(
                Wire.Request(
                    requestID: 1,
                    method: .hello(Wire.HelloRequest(protocolVersion: 1, apiKey: server.adminKey))
                )
            )
            for id in 2...1000 {
                let call = Wire.AuthorizeCallRequest(agentID: "a", destination: "+12025550123", dryRun: true)
                batch += frame(Wire.Request(requestID: UInt64(id), method: .authorizeCall(call)))
            }
            // Keep sending (each batch asks for ~70 KB of replies) until the server cuts us off; a
            // server that buffered without end would accept all 2,000 batches.
            var cutOff = false
            for _ in 0..<2_000 {
                let sent = batch.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK {
                    cutOff = true
                    break
                }
                if sent < 0 { try await Task.sleep(for: .milliseconds(50)) }
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
