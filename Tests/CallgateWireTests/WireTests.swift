import CallgateWire
import NIOCore
import NIOTestUtils
import Testing

/// Encodes `request` as a frame, takes the frame off the buffer with ``FrameDecoder`` and decodes it.
private func roundTrip(_ request: Wire.Request) throws -> Wire.Request {
    var buffer = ByteBuffer()
    request.encodeFrame(into: &buffer)
    let body = try #require(try FrameDecoder().next(&buffer))
    #expect(buffer.readableBytes == 0)
    #expect(body.readableBytes == request.serialized().count)
    return try Wire.Request.decode(body)
}

private func roundTrip(_ response: Wire.Response) throws -> Wire.Response {
    var buffer = ByteBuffer()
    response.encodeFrame(into: &buffer)
    let body = try #require(try FrameDecoder().next(&buffer))
    #expect(buffer.readableBytes == 0)
    #expect(body.readableBytes == response.serialized().count)
    return try Wire.Response.decode(body)
}

/// A frame: the 4-byte big-endian length, then `body`.
private func frame(_ body: [UInt8]) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeInteger(UInt32(body.count))
    buffer.writeBytes(body)
    return buffer
}

private let unicode = "Zoë Ångström — 東京 🚀 \u{202E}"

private let number = Wire.NumberInfo(
    number: "+14155550101",
    provider: "twilio",
    country: "US",
    capabilities: ["voice", "sms"],
    status: .active,
    location: "San Francisco, CA",
    tags: ["", "vip", unicode],
    numberType: "local",
    state: "assigned",
    agentID: "agent-7",
    reservationExpiresAtMs: -1,
    releasedAtMs: Int64.min,
    createdAtMs: 1_750_000_000_000,
    createdBy: "admin:alice",
    modifiedAtMs: Int64.max,
    modifiedBy: unicode,
    countToday: 3,
    dailyLimit: UInt32.max
)

private let assignment = Wire.AssignmentInfo(
    number: "+14155550101",
    agentID: "agent-7",
    dailyLimit: 100,
    allowedCountries: ["US", "CA", "001"],
    assignedAtMs: 1_750_000_000_000,
    assignedBy: "admin:alice",
    callsSinceAssigned: UInt64.max,
    countToday: 3,
    remainingToday: 97,
    numberActive: true
)

@Suite struct WireRoundTripTests {
    static let requests: [Wire.Request] = [
        Wire.Request(),
        Wire.Request(
            requestID: 1,
            method: .hello(Wire.HelloRequest(protocolVersion: 1, apiKey: "cg_secret", clientName: unicode))
        ),
        Wire.Request(
            requestID: UInt64.max,
            method: .authorizeCall(
                Wire.AuthorizeCallRequest(agentID: "agent-7", destination: "tel:+1 415-555-0199", dryRun: true)
            )
        ),
        // Every field empty: the message is present, its fields are defaults.
        Wire.Request(requestID: 2, method: .authorizeCall(Wire.AuthorizeCallRequest())),
        Wire.Request(
            requestID: 3,
            method: .pickNumber(
                Wire.PickNumberRequest(
                    criteria: Wire.NumberCriteria(country: "US", prefix: "1415", capabilities: ["voice", "sms"]),
                    mode: .reserve(Wire.ReserveMode(ttlSeconds: 300, agentID: "agent-7"))
                )
            )
        ),
        Wire.Request(
            requestID: 4,
            method: .pickNumber(
                Wire.PickNumberRequest(
                    criteria: nil,
                    mode: .assign(
                        Wire.AssignMode(
                            agentID: "agent-ü",
                            terms: Wire.AssignmentTerms(dailyLimit: 0, allowedCountries: ["GB", "JE"], zeroLimit: true)
                        )
                    )
                )
            )
        ),
        // An empty nested message and an empty oneof member are present, not absent.
        Wire.Request(
            requestID: 5,
            method: .pickNumber(
                Wire.PickNumberRequest(criteria: Wire.NumberCriteria(), mode: .reserve(Wire.ReserveMode()))
            )
        ),
        Wire.Request(requestID: 6, method: .pickNumber(Wire.PickNumberRequest())),
        Wire.Request(
            requestID: 7,
            method: .addNumber(
                Wire.AddNumberRequest(
                    number: "+44 (0)20 7946 0000",
                    provider: "",
                    capabilities: ["voice"],
                    status: .inactive,
                    location: unicode,
                    tags: ["a", "", "c"],
                    numberType: "geographic"
                )
            )
        ),
        Wire.Request(
            requestID: 8,
            method: .updateNumber(
                Wire.UpdateNumberRequest(number: "+12025550123", fields: ["tags", "location"], location: "", tags: [])
            )
        ),
        Wire.Request(
            requestID: 9,
            method: .deleteNumbers(Wire.DeleteNumbersRequest(numbers: [], allUnassigned: true, confirmAll: true))
        ),
        Wire.Request(
            requestID: 10,
            method: .importNumbers(Wire.ImportNumbersRequest(csv: "number,provider\n+12025550123,ü\n", dryRun: true))
        ),
        Wire.Request(
            requestID: 11,
            method: .auditLog(Wire.AuditLogRequest(number: "+1", fromMs: -5, toMs: Int64.max, pageSize: 1000))
        ),
        Wire.Request(requestID: 12, method: .createKey(Wire.CreateKeyRequest(role: .agent, agentID: "agent-7"))),
        Wire.Request(requestID: 13, method: .stats(Wire.StatsRequest())),
        Wire.Request(requestID: 14, method: .syncNumbers(Wire.SyncNumbersRequest(csv: "", apply: true))),
    ]

    @Test(arguments: requests)
    func requestRoundTrips(_ request: Wire.Request) throws {
        #expect(try roundTrip(request) == request)
    }

    static let responses: [Wire.Response] = [
        Wire.Response(),
        Wire.Response.error(0, .unauthenticated, "unknown API key"),
        Wire.Response.error(7, .invalidArgument, unicode),
        Wire.Response(
            requestID: 1,
            result: .hello(
                Wire.HelloResponse(
                    protocolVersion: 1,
                    organizationID: 42,
                    organizationName: "Acme Dialing",
                    role: .agent,
                    agentID: "agent-7",
                    maxFrameBytes: 1 << 20
                )
            )
        ),
        Wire.Response(
            requestID: 2,
            result: .authorizeCall(
                Wire.AuthorizeCallResponse(
                    verdict: .deny,
                    reason: .dailyLimitReached,
                    callerID: "+14155550101",
                    destinationCountry: "US",
                    count: 3,
                    limit: 3,
                    remaining: 0,
                    resetsAtMs: 1_750_000_000_000
                )
            )
        ),
        Wire.Response(
            requestID: 3,
            result: .pickNumber(
                Wire.PickNumberResponse(number: number, reservationToken: UInt64.max, reservationExpiresAtMs: 99)
            )
        ),
        Wire.Response(
            requestID: 4,
            result: .pickNumber(Wire.PickNumberResponse(number: number, assignment: assignment))
        ),
        Wire.Response(
            requestID: 5,
            result: .listNumbers(
                Wire.ListNumbersResponse(numbers: [number, Wire.NumberInfo(), number], nextCursor: "c2")
            )
        ),
        Wire.Response(
            requestID: 6,
            result: .importNumbers(
                Wire.ImportNumbersResponse(
                    rows: [
                        Wire.ImportRowResult(line: 1, number: "+12025550123", outcome: "added"),
                        Wire.ImportRowResult(line: 2, number: "", outcome: "rejected", reason: unicode),
                    ],
                    added: 1,
                    rejected: 1
                )
            )
        ),
        Wire.Response(
            requestID: 7,
            result: .auditLog(
                Wire.AuditLogResponse(
                    entries: [
                        Wire.AuditEntry(
                            id: 1,
                            atMs: 2,
                            actor: "admin:alice",
                            action: "assign",
                            number: "+14155550101",
                            agentID: "agent-7",
                            beforeJson: "null",
                            afterJson: #"{"tags":["vip","\#(unicode)"]}"#
                        )
                    ]
                )
            )
        ),
        Wire.Response(
            requestID: 8,
            result: .numberTimeline(
                Wire.NumberTimelineResponse(periods: [
                    Wire.HoldingPeriod(agentID: "a", fromMs: 1, toMs: 2, calls: 3),
                    Wire.HoldingPeriod(agentID: "b", fromMs: 2, toMs: 0, calls: 0),
                ])
            )
        ),
        Wire.Response(requestID: 9, result: .assign(assignment)),
        Wire.Response(requestID: 10, result: .updateAssignment(Wire.AssignmentInfo())),
        Wire.Response(
            requestID: 11,
            result: .createKey(
                Wire.CreateKeyResponse(
                    key: Wire.KeyInfo(id: "k1", role: .dialer, label: unicode, createdAtMs: 5),
                    secret: "cg_s3cr3t"
                )
            )
        ),
        Wire.Response(
            requestID: 12,
            result: .listKeys(Wire.ListKeysResponse(keys: [Wire.KeyInfo(id: "k1", role: .admin, revokedAtMs: 9)]))
        ),
        Wire.Response(requestID: 13, result: .revokeKey(Wire.KeyInfo(id: "k2"))),
        Wire.Response(
            requestID: 14,
            result: .stats(
                Wire.StatsResponse(
                    numbers: 10,
                    agents: 2,
                    decisions: UInt64.max,
                    durability: "commit",
                    writerBatches: 1
                )
            )
        ),
        Wire.Response(requestID: 15, result: .syncNumbers(Wire.SyncNumbersResponse())),
        Wire.Response(
            requestID: 16,
            result: .listAgents(
                Wire.ListAgentsResponse(agents: [Wire.AgentInfo(id: "agent-7", displayName: unicode, active: true)])
            )
        ),
        Wire.Response(requestID: 17, result: .deleteNumbers(Wire.DeleteNumbersResponse(deleted: 0))),
    ]

    @Test(arguments: responses)
    func responseRoundTrips(_ response: Wire.Response) throws {
        #expect(try roundTrip(response) == response)
    }

    @Test func serializedMatchesTheFrameBody() throws {
        let request = Self.requests[4]
        var buffer = ByteBuffer()
        request.encodeFrame(into: &buffer)
        let prefix = buffer.readInteger(as: UInt32.self)
        let length = try #require(prefix)
        #expect(Int(length) == buffer.readableBytes)
        #expect(Array(buffer.readableBytesView) == request.serialized())
        let decoded = try request.serialized().withUnsafeBytes { bytes throws(WireError) in
            try Wire.Request.decode(bytes)
        }
        #expect(decoded == request)
    }

    @Test func framesFollowOneAnother() throws {
        var buffer = ByteBuffer()
        for request in Self.requests { request.encodeFrame(into: &buffer) }
        let decoder = FrameDecoder()
        var decoded: [Wire.Request] = []
        while let body = try decoder.next(&buffer) { decoded.append(try Wire.Request.decode(body)) }
        #expect(decoded == Self.requests)
        #expect(buffer.readableBytes == 0)
    }
}

@Suite struct WireMalformedTests {
    static let malformed: [[UInt8]] = [
        [0xFF, 0xFF, 0xFF],
        // Field 1 with wire type 7, which does not exist.
        [0x0F],
        // Field 2 (a length-delimited message) announcing 10 bytes, with 1.
        [0x12, 0x0A, 0x00],
        // A varint that never ends.
        [0x08, 0xFF, 0xFF],
    ]

    @Test(arguments: malformed)
    func malformedResponseThrows(_ bytes: [UInt8]) {
        #expect(throws: WireError.malformed(length: bytes.count)) {
            try Wire.Response.decode(ByteBuffer(bytes: bytes))
        }
    }

    @Test(arguments: malformed)
    func malformedRequestThrows(_ bytes: [UInt8]) {
        #expect(throws: WireError.malformed(length: bytes.count)) {
            try Wire.Request.decode(ByteBuffer(bytes: bytes))
        }
    }

    @Test func truncatedMessageThrows() {
        let bytes = WireRoundTripTests.requests[4].serialized()
        let truncated = Array(bytes.dropLast())
        #expect(throws: WireError.malformed(length: truncated.count)) {
            try Wire.Request.decode(ByteBuffer(bytes: truncated))
        }
    }

    @Test func emptyBodyIsTheDefaultMessage() throws {
        #expect(try Wire.Request.decode(ByteBuffer()) == Wire.Request())
        #expect(try Wire.Response.decode(ByteBuffer()) == Wire.Response())
    }
}

@Suite struct FrameDecoderTests {
    @Test func decodesSplitAtEveryByte() throws {
        let bodies: [[UInt8]] = [
            [],
            [0x41],
            Array("ABC".utf8),
            WireRoundTripTests.requests[5].serialized(),
            Array(repeating: 0x5A, count: 300),
            [],
        ]
        var pairs = bodies.map { (frame($0), [ByteBuffer(bytes: $0)]) }
        // One input carrying several frames yields them all, in order.
        var several = ByteBuffer()
        for body in bodies { several.writeImmutableBuffer(frame(body)) }
        pairs.append((several, bodies.map { ByteBuffer(bytes: $0) }))
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { FrameDecoder() }
    }

    @Test func zeroLengthFrameIsAnEmptyBody() throws {
        var buffer = ByteBuffer(bytes: [0, 0, 0, 0, 0, 0, 0, 1, 0x2A])
        let decoder = FrameDecoder()
        #expect(try decoder.next(&buffer) == ByteBuffer())
        #expect(try decoder.next(&buffer) == ByteBuffer(bytes: [0x2A]))
        #expect(try decoder.next(&buffer) == nil)
    }

    @Test func waitsForTheWholeFrame() throws {
        let decoder = FrameDecoder()
        var buffer = ByteBuffer(bytes: [0, 0])
        #expect(try decoder.next(&buffer) == nil)
        buffer.writeBytes([0, 3, 0x41, 0x42])
        #expect(try decoder.next(&buffer) == nil)
        #expect(buffer.readableBytes == 6)
        buffer.writeBytes([0x43])
        #expect(try decoder.next(&buffer) == ByteBuffer(string: "ABC"))
    }

    @Test func refusesAnOversizedLengthWithoutTheBody() {
        var buffer = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: WireError.frameTooLarge(length: Int(UInt32.max), maximum: Wire.defaultMaximumFrameBytes)) {
            try FrameDecoder().next(&buffer)
        }
    }

    @Test func theLimitIsInclusive() throws {
        let decoder = FrameDecoder(maximumFrameBytes: 16)
        var atLimit = frame(Array(repeating: 1, count: 16))
        #expect(try decoder.next(&atLimit)?.readableBytes == 16)
        var overLimit = ByteBuffer(bytes: [0, 0, 0, 17])
        #expect(throws: WireError.frameTooLarge(length: 17, maximum: 16)) {
            try decoder.next(&overLimit)
        }
    }
}
