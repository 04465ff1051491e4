import Benchmark
import BenchmarkSupport
import CallgateCore
import CallgateWire
import NIOCore

// The server's codec work for AuthorizeCall, without sockets or the engine.
//
// `fast` is what `SessionHandler` does per request: split the frame off the read buffer
// (`FrameDecoder.next`), unpack it with protobuf-c into the connection's `UnpackArena`, read
// agent_id and destination as Swift strings (`CArena.string`, as the handler does), encode the reply
// with `Wire.encodeAuthorizeCallResponse` (stack structs) into a reused ByteBuffer, and `release` the
// arena. `generic` is the path every other method takes, for comparison: `Wire.Request.decode`
// (protobuf-c with the system allocator, then Swift structs) and `Wire.Response.encodeFrame`
// (built in a `CArena`, then packed).
//
// One iteration is 1,000 requests (`scalingFactor: .kilo`), cycling over 100 distinct requests and
// answers; the reply buffer is cleared at the start of each iteration (its capacity is reserved in
// setup, as the server's burst buffer keeps its capacity).

struct BenchmarkSetupError: Error, CustomStringConvertible {
    let message: String
    var description: String { self.message }
}

/// Requests per iteration.
let requestsPerIteration = 1_000

/// The inputs and the reused buffers of one benchmark (package-benchmark runs each benchmark in its own
/// process; one thread uses it).
final class CodecFixture: @unchecked Sendable {
    /// `requestsPerIteration` request frames (length prefix and body), one after the other.
    let requests: ByteBuffer
    /// The answer to each of the 100 distinct requests, in both forms.
    let answers: [AuthorizeCallAnswer]
    let responses: [Wire.AuthorizeCallResponse]
    /// The bytes of `requestsPerIteration` encoded replies.
    let replyBytes: Int
    /// protobuf-c's `method_case` of an AuthorizeCall request (the C enum's raw value).
    let authorizeCallCase: Int

    let arena = UnpackArena()
    let decoder = FrameDecoder()
    /// The replies of the current iteration.
    var output: ByteBuffer
    /// Requests that did not decode as an AuthorizeCall in the last iteration.
    var failures = 0
    /// Keeps the string reads from being optimized away.
    var checksum = 0

    init() throws {
        let visits = Visits(ids: (0..<100).map { agentID($0) }, seed: 7)
        var requests = ByteBuffer()
        for i in 0..<requestsPerIteration {
            let k = i % 100
            let call = Wire.AuthorizeCallRequest(agentID: visits.agentIDs[k], destination: visits.destinations[k].e164)
            Wire.Request(requestID: UInt64(1 + i), method: .authorizeCall(call)).encodeFrame(into: &requests)
        }
        self.requests = requests

        var answers: [AuthorizeCallAnswer] = []
        var responses: [Wire.AuthorizeCallResponse] = []
        for k in 0..<100 {
            let callerID = usNumber(k * 5, firstSubscriber: 2_000_000)
            let count = UInt32(1 + k * 37)
            answers.append(
                AuthorizeCallAnswer(
                    allowed: true,
                    reason: 0,
                    callerIDDigits: callerID.digits,
                    destinationCountry: "US",
                    count: count,
                    limit: 10_000_000,
                    remaining: 10_000_000 - count,
                    resetsAtMilliseconds: 1_795_410_000_000
                )
            )
            responses.append(
                Wire.AuthorizeCallResponse(
                    verdict: .allow,
                    reason: .unspecified,
                    callerID: callerID.e164,
                    destinationCountry: "US",
                    count: count,
                    limit: 10_000_000,
                    remaining: 10_000_000 - count,
                    resetsAtMs: 1_795_410_000_000
                )
            )
        }
        self.answers = answers
        self.responses = responses

        // Both encodings must produce the same bytes, and decode back to the answer.
        for k in 0..<100 {
            var fast = ByteBuffer()
            Wire.encodeAuthorizeCallResponse(requestID: UInt64(1 + k), answers[k], into: &fast)
            var generic = ByteBuffer()
            Wire.Response(requestID: UInt64(1 + k), result: .authorizeCall(responses[k])).encodeFrame(into: &generic)
            guard fast == generic else {
                throw BenchmarkSetupError(message: "the two encodings of answer \(k) differ")
            }
            guard let body = try FrameDecoder().next(&fast),
                try Wire.Response.decode(body)
                    == Wire.Response(requestID: UInt64(1 + k), result: .authorizeCall(responses[k]))
            else { throw BenchmarkSetupError(message: "answer \(k) does not decode back") }
        }
        // Request ids take 1 or 2 bytes as varints, so the total depends on the ids; count it.
        var all = ByteBuffer()
        for i in 0..<requestsPerIteration {
            Wire.encodeAuthorizeCallResponse(requestID: UInt64(1 + i), answers[i % 100], into: &all)
        }
        self.replyBytes = all.readableBytes
        self.output = ByteBufferAllocator().buffer(capacity: max(64 << 10, all.readableBytes))

        // The oneof case protobuf-c reports for an AuthorizeCall request.
        var probe = requests
        let arena = UnpackArena()
        guard let frame = try FrameDecoder().next(&probe),
            let message = frame.withUnsafeReadableBytes({ arena.unpackRequest($0) })
        else { throw BenchmarkSetupError(message: "the first request does not unpack") }
        self.authorizeCallCase = Int(message.pointee.method_case.rawValue)
        arena.release(message)
        guard case .authorizeCall = try Wire.Request.decode(frame).method else {
            throw BenchmarkSetupError(message: "the first request is not an AuthorizeCall")
        }
    }

    // MARK: The server's path

    /// Unpacks one frame into the arena, reads its strings and, when `encode`, appends the reply; as
    /// `SessionHandler.channelRead` and `authorizeCall(_:_:_:started:)` do.
    @inline(__always)
    private func fastRequest(_ frame: ByteBuffer, _ k: Int, encode: Bool) {
        frame.withUnsafeReadableBytes { bytes in
            guard let message = self.arena.unpackRequest(bytes) else {
                self.failures += 1
                return
            }
            defer { self.arena.release(message) }
            let c = message.pointee
            guard Int(c.method_case.rawValue) == self.authorizeCallCase, let call = c.authorize_call else {
                self.failures += 1
                return
            }
            let agent = CArena.string(call.pointee.agent_id)
            let destination = CArena.string(call.pointee.destination)
            let from = CArena.string(call.pointee.from_number)
            self.checksum &+= agent.utf8.count &+ destination.utf8.count &+ from.utf8.count
            if encode {
                Wire.encodeAuthorizeCallResponse(requestID: c.request_id, self.answers[k], into: &self.output)
            }
        }
    }

    /// Decodes (and encodes the reply to) every request of an iteration.
    func fastDecodeAndEncode(encode: Bool = true) {
        var input = self.requests
        var k = 0
        while let frame = try? self.decoder.next(&input) {
            self.fastRequest(frame, k, encode: encode)
            k = k == 99 ? 0 : k + 1
        }
    }

    /// Encodes `requestsPerIteration` replies.
    func fastEncode() {
        var k = 0
        for i in 0..<requestsPerIteration {
            Wire.encodeAuthorizeCallResponse(requestID: UInt64(1 + i), self.answers[k], into: &self.output)
            k = k == 99 ? 0 : k + 1
        }
    }

    // MARK: The generic path

    @inline(__always)
    private func genericRequest(_ frame: ByteBuffer, _ k: Int, encode: Bool) {
        guard let request = try? Wire.Request.decode(frame), case .authorizeCall(let call)? = request.method else {
            self.failures += 1
            return
        }
        self.checksum &+= call.agentID.utf8.count &+ call.destination.utf8.count &+ call.fromNumber.utf8.count
        if encode {
            Wire.Response(requestID: request.requestID, result: .authorizeCall(self.responses[k]))
                .encodeFrame(into: &self.output)
        }
    }

    func genericDecodeAndEncode(encode: Bool = true) {
        var input = self.requests
        var k = 0
        while let frame = try? self.decoder.next(&input) {
            self.genericRequest(frame, k, encode: encode)
            k = k == 99 ? 0 : k + 1
        }
    }

    func genericEncode() {
        var k = 0
        for i in 0..<requestsPerIteration {
            Wire.Response(requestID: UInt64(1 + i), result: .authorizeCall(self.responses[k]))
                .encodeFrame(into: &self.output)
            k = k == 99 ? 0 : k + 1
        }
    }

    // MARK: Iterations

    func beginIteration() {
        self.output.clear()
        self.failures = 0
    }

    /// Reports what went wrong in the iteration just measured.
    func check(_ benchmark: Benchmark, encodes: Bool) {
        if self.failures > 0 { benchmark.error("\(self.failures) requests did not decode as an AuthorizeCall") }
        let expected = encodes ? self.replyBytes : 0
        if self.output.readableBytes != expected {
            benchmark.error("\(self.output.readableBytes) reply bytes, expected \(expected)")
        }
        blackHole(self.checksum)
    }
}

// MARK: - Benchmarks

enum Path: String {
    case fast
    case generic
}

enum Work: String, CaseIterable {
    case decodeAndEncode = "decode+encode"
    case decode
    case encode
}

let benchmarks: @Sendable () -> Void = {
    /// Exact malloc counts, no tolerance: `Thresholds/WireCodec.<name>.p90.json` hold 0 for the fast
    /// path (the server's; it must not allocate) and the generic path's fixed count per iteration
    /// (4 per request to decode, 7 to encode), so a change either way is seen.
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        timeUnits: .nanoseconds,
        warmupIterations: 20,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 100_000,
        thresholds: [.mallocCountTotal: .init(absolute: [.p90: 0])]
    )

    for path in [Path.fast, .generic] {
        for work in Work.allCases {
            Benchmark(
                "WireCodec \(path.rawValue) \(work.rawValue)",
                configuration: configuration
            ) { (benchmark, fixture: CodecFixture) in
                fixture.beginIteration()
                benchmark.startMeasurement()
                switch (path, work) {
                case (.fast, .decodeAndEncode): fixture.fastDecodeAndEncode()
                case (.fast, .decode): fixture.fastDecodeAndEncode(encode: false)
                case (.fast, .encode): fixture.fastEncode()
                case (.generic, .decodeAndEncode): fixture.genericDecodeAndEncode()
                case (.generic, .decode): fixture.genericDecodeAndEncode(encode: false)
                case (.generic, .encode): fixture.genericEncode()
                }
                benchmark.stopMeasurement()
                fixture.check(benchmark, encodes: work != .decode)
            } setup: {
                try CodecFixture()
            }
        }
    }
}
