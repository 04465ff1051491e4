import CallgateLoad
import CallgateWire
import Foundation
import NIOCore
import Testing

@Suite("LoadCodec against the real wire codec")
struct LoadGeneratorCodecTests {
    /// Our AuthorizeCall frames decode with protobuf-c to the same request.
    @Test(arguments: [UInt64(1), 2, 127, 128, 16_383, 16_384, 1 << 35, UInt64.max])
    func authorizeFrameDecodesWithWire(requestID: UInt64) throws {
        let method = LoadCodec.authorizeCallMethod(agentID: "load-agent-42", destination: "+12125550123")
        var buffer = ByteBuffer()
        LoadCodec.writeFrame(requestID: requestID, method: method, into: &buffer)
        #expect(buffer.readableBytes == LoadCodec.frameSize(requestID: requestID, methodBytes: method.count))
        let body = try #require(try FrameDecoder().next(&buffer))
        #expect(buffer.readableBytes == 0)
        let request = try Wire.Request.decode(body)
        #expect(
            request
                == Wire.Request(
                    requestID: requestID,
                    method: .authorizeCall(
                        Wire.AuthorizeCallRequest(agentID: "load-agent-42", destination: "+12125550123")
                    )
                )
        )
    }

    /// And they are byte for byte what protobuf-c writes.
    @Test func authorizeFrameMatchesWireBytes() {
        for id in [UInt64(1), 300, 1 << 40] {
            let method = LoadCodec.authorizeCallMethod(agentID: "a", destination: "+442079460000")
            var ours = ByteBuffer()
            LoadCodec.writeFrame(requestID: id, method: method, into: &ours)
            var theirs = ByteBuffer()
            Wire.Request(
                requestID: id,
                method: .authorizeCall(Wire.AuthorizeCallRequest(agentID: "a", destination: "+442079460000"))
            ).encodeFrame(into: &theirs)
            #expect(ours == theirs)
        }
    }

    @Test func varintSizes() {
        let cases: [(UInt64, Int)] = [(0, 1), (127, 1), (128, 2), (16_383, 2), (16_384, 3), (UInt64.max, 10)]
        for (value, size) in cases { #expect(LoadCodec.varintSize(value) == size) }
    }

    /// Responses written by protobuf-c read back with our decoder.
    @Test func decodesWireResponses() throws {
        let cases: [(Wire.Response, LoadResponse.Result)] = [
            (
                Wire.Response(
                    requestID: 7,
                    result: .authorizeCall(
                        Wire.AuthorizeCallResponse(
                            verdict: .allow,
                            callerID: "+14152000001",
                            destinationCountry: "US",
                            count: 3,
                            limit: 1_000_000,
                            remaining: 999_997,
                            resetsAtMs: 1_790_000_000_000
                        )
                    )
                ),
                .authorizeCall(verdict: 1, reason: 0)
            ),
            (
                Wire.Response(
                    requestID: 1 << 50,
                    result: .authorizeCall(
                        Wire.AuthorizeCallResponse(verdict: .deny, reason: .countryNotAllowed, destinationCountry: "GB")
                    )
                ),
                .authorizeCall(verdict: 2, reason: 4)
            ),
            (.error(9, .resourceExhausted, "the store is behind"), .error(code: 8)),
            (.error(0, .unauthenticated, "revoked"), .error(code: 16)),
            (
                Wire.Response(
                    requestID: 12,
                    result: .pickNumber(
                        Wire.PickNumberResponse(
                            number: Wire.NumberInfo(number: "+14152000001", country: "US", tags: ["a", "b"]),
                            reservationToken: 0x7FFF_FFFF_FFFF_0001,
                            reservationExpiresAtMs: 1_790_000_000_000
                        )
                    )
                ),
                .pickNumber(reservationToken: 0x7FFF_FFFF_FFFF_0001)
            ),
            (
                Wire.Response(
                    requestID: 2,
                    result: .hello(Wire.HelloResponse(protocolVersion: 1, organizationName: "Org", role: .admin))
                ),
                .hello
            ),
            (
                Wire.Response(requestID: 3, result: .assign(Wire.AssignmentInfo(number: "+14152000001"))),
                .other(field: 13)
            ),
            (Wire.Response(requestID: 4, result: .release(Wire.ReleaseResponse(number: "+1"))), .other(field: 14)),
            (Wire.Response(requestID: 5, result: .stats(Wire.StatsResponse(numbers: 4))), .other(field: 80)),
            (Wire.Response(requestID: 6, result: nil), .none),
        ]
        for (response, expected) in cases {
            var buffer = ByteBuffer()
            response.encodeFrame(into: &buffer)
            let body = try #require(try FrameDecoder().next(&buffer))
            let decoded = try #require(LoadCodec.decodeResponse(body))
            #expect(decoded.requestID == response.requestID)
            #expect(decoded.result == expected, "\(response)")
        }
    }

    /// Unknown fields of every wire type are skipped, as protobuf-c skips them.
    @Test func skipsUnknownFields() throws {
        var bytes: [UInt8] = []
        bytes += [0x98, 0x06, 0xAC, 0x02]  // field 99 varint 300
        bytes += [0xA1, 0x06] + [UInt8](repeating: 0xEE, count: 8)  // field 100 fixed64
        bytes += [0xAA, 0x06, 0x03, 0x01, 0x02, 0x03]  // field 101 length-delimited
        bytes += [0xBD, 0x06, 0x01, 0x02, 0x03, 0x04]  // field 103 fixed32
        bytes += [0x08, 0x96, 0x01]  // request_id 150
        // authorize_call { verdict DENY, reason DAILY_LIMIT_REACHED, field 50 fixed32, field 51 fixed64,
        // field 52 string, caller_id "x" }
        let inner: [UInt8] =
            [0x08, 0x02, 0x95, 0x03, 1, 2, 3, 4, 0x99, 0x03, 1, 2, 3, 4, 5, 6, 7, 8, 0xA2, 0x03, 0x00, 0x10, 0x03]
            + [0x1A, 0x01, 0x78]
        bytes += [0x5A, UInt8(inner.count)] + inner
        bytes += [0xB0, 0x06, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]  // field 102 max varint

        let ours = try #require(bytes.withUnsafeBytes { LoadCodec.decodeResponse($0) })
        #expect(ours == LoadResponse(requestID: 150, result: .authorizeCall(verdict: 2, reason: 3)))
        let theirs = try bytes.withUnsafeBytes { try Wire.Response.decode($0) }
        #expect(theirs.requestID == 150)
        guard case .authorizeCall(let call) = theirs.result else {
            Issue.record("protobuf-c read \(String(describing: theirs.result))")
            return
        }
        #expect(call.verdict == .deny && call.reason == .dailyLimitReached && call.callerID == "x")
    }

    /// Truncated or invalid input is refused, never read past its end.
    @Test func refusesMalformed() {
        var response = ByteBuffer()
        Wire.Response(requestID: 300, result: .authorizeCall(Wire.AuthorizeCallResponse(verdict: .allow)))
            .encodeFrame(into: &response)
        // 08 AC 02 | 5A 02 08 01: cut anywhere but after the request id, it is not a message.
        let body = [UInt8](response.readableBytesView.dropFirst(4))
        #expect(body == [0x08, 0xAC, 0x02, 0x5A, 0x02, 0x08, 0x01])
        for length in [1, 2, 4, 5, 6] {
            let prefix = Array(body.prefix(length))
            #expect(prefix.withUnsafeBytes { LoadCodec.decodeResponse($0) } == nil, "prefix of \(length) bytes")
        }
        #expect(
            Array(body.prefix(3)).withUnsafeBytes { LoadCodec.decodeResponse($0) }
                == LoadResponse(requestID: 300, result: .none)
        )
        let invalid: [[UInt8]] = [
            [0x0B],  // wire type 3 (start group)
            [0x00, 0x01],  // field 0
            [0x0A, 0x01, 0x00],  // request_id as length-delimited
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],  // 11-byte varint
            [0x5A, 0x05, 0x08],  // length past the end
        ]
        for bytes in invalid {
            #expect(bytes.withUnsafeBytes { LoadCodec.decodeResponse($0) } == nil, "\(bytes)")
        }
        #expect([UInt8]().withUnsafeBytes { LoadCodec.decodeResponse($0) } == LoadResponse(requestID: 0, result: .none))
    }
}

@Suite("Load generator helpers")
struct LoadGeneratorHelperTests {
    @Test func zipfFavoursLowRanks() {
        let sampler = ZipfSampler(count: 100, exponent: 1.1)
        var random = LoadRandom(seed: 42)
        var hits = [Int](repeating: 0, count: 100)
        let draws = 200_000
        for _ in 0..<draws { hits[sampler.sample(using: &random)] += 1 }
        #expect(hits[0] == hits.max())
        #expect(hits[0] > hits[1] && hits[1] > hits[2] && hits[2] > hits[9] && hits[9] > hits[99])
        // Roughly the distribution: every rank of the first ten within 5 % (relative) of its expectation.
        var norm = 0.0
        for k in 1...100 { norm += 1 / pow(Double(k), 1.1) }
        for rank in 0..<10 {
            let expected = Double(draws) / pow(Double(rank + 1), 1.1) / norm
            #expect(abs(Double(hits[rank]) - expected) / expected < 0.05, "rank \(rank + 1)")
            #expect(abs(sampler.probability(of: rank) - expected / Double(draws)) < 1e-9)
        }
        // The ratio of rank 1 to rank 2 is 2^1.1.
        #expect(abs(Double(hits[0]) / Double(hits[1]) - pow(2, 1.1)) < 0.1)
    }

    @Test func zipfRankBoundaries() {
        let sampler = ZipfSampler(count: 3, exponent: 1)
        #expect(sampler.rank(for: 0) == 0)
        #expect(sampler.rank(for: 0.999_999) == 2)
        #expect(ZipfSampler(count: 1, exponent: 2).rank(for: 0.5) == 0)
    }

    @Test func numbersAreUniqueValidNANP() {
        var seen = Set<String>()
        for index in Array(0..<20_000) + [3_549_999, 3_550_000, LoadNumbering.capacity - 1] {
            let number = LoadNumbering.number(index)
            #expect(number.count == 12 && number.hasPrefix("+1415"))
            let exchange = Int(number.dropFirst(5).prefix(3))!
            #expect(exchange >= 200 && exchange <= 999 && exchange != 555)
            #expect(seen.insert(number).inserted)
        }
        #expect(LoadNumbering.number(0) == "+14152000000")
        #expect(LoadNumbering.number(3_550_000) == "+14155560000")
    }

    @Test func parsesOptions() throws {
        let seed = try LoadSeed(parsing: "agents=10000,numbers-per-agent=5,limit=50,countries=US+CA,spare=64")
        #expect(
            seed == LoadSeed(agents: 10_000, numbersPerAgent: 5, dailyLimit: 50, countries: ["US", "CA"], spare: 64)
        )
        #expect(try LoadSeed(parsing: "agents=2,numbers-per-agent=1").dailyLimit == 1_000_000)
        #expect(throws: LoadError.self) { try LoadSeed(parsing: "agents=2") }
        #expect(throws: LoadError.self) { try LoadSeed(parsing: "agents=2,numbers-per-agent=1,colour=red") }
        #expect(
            try LoadMix(parsing: "authorize=90,pick=4,assign=3,release=3")
                == LoadMix(authorize: 90, pick: 4, assign: 3, release: 3)
        )
        #expect(throws: LoadError.self) { try LoadMix(parsing: "authorize=0") }
        #expect(try AgentDistribution(parsing: "zipf:1.3") == .zipf(exponent: 1.3))
        #expect(try AgentDistribution(parsing: "uniform") == .uniform)
        #expect(throws: LoadError.self) { try AgentDistribution(parsing: "zipf:-1") }
    }

    /// The deny share's destination must be in a country the seed does not allow, or every "denial" is an ALLOW.
    @Test func denyShareRefusesASeedThatAllowsItsCountry() throws {
        var configuration = LoadConfiguration(apiKey: "k")
        configuration.denyShare = 0.5
        configuration.use(seed: LoadSeed(agents: 2, numbersPerAgent: 1, countries: ["US", "CA", "GB"]))
        try configuration.validate()
        configuration.use(seed: LoadSeed(agents: 2, numbersPerAgent: 1, countries: ["US", "jp"]))
        #expect {
            try configuration.validate()
        } throws: { error in
            "\(error)".contains("JP")
        }
        configuration.denyShare = 0
        try configuration.validate()
    }
}
