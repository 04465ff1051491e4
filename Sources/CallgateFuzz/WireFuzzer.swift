import CCallgateProto
public import CallgateCore
import CallgateServer
import CallgateStore
import CallgateWire
import Foundation
import NIOCore

/// Runs bytes a client could send after hello through what the server does with them: the frame
/// decoder, protobuf-c unpacking into a connection arena (AuthorizeCall answered from the C struct, as
/// on the hot path), the Swift messages, the access policy and the dispatcher against a real store, and
/// the encoding of every reply.
///
/// The first byte of an input chooses who sends it (admin, manager, dialer, or an agent key bound to
/// `fz-alice`); the rest is a byte stream of frames. Invariants are checked with `precondition`, so a
/// violation is a crash that libFuzzer reports:
/// - the decoder never yields a frame longer than the limit, and throws only for a longer length;
/// - a request protobuf-c accepts converts to Swift and back to bytes that decode to the same request;
/// - every reply encodes as a frame that decodes back to the same response;
/// - an agent key never gets an ALLOW for another agent, and no reply leaks the other organization's
///   data (its agents and numbers carry a marker the fuzzed bytes do not contain).
///
/// Used by the `callgate-fuzz` executable (libFuzzer) and by the regression tests that replay the seed
/// corpus and every input that once crashed.
public final class WireFuzzer {
    /// The store's temporary directory; removed by ``close()``.
    private let directory: String
    private let store: Store
    private let dispatcher: Dispatcher
    private let arena = UnpackArena()
    /// admin, manager, dialer, agent (`fz-alice`).
    private let principals: [Principal]
    private let decoder = FrameDecoder(maximumFrameBytes: 64 << 10)

    /// What only the other organization's records contain.
    static let otherMarker = "zq-other"
    static let boundAgent = "fz-alice"

    public init() throws {
        self.directory = NSTemporaryDirectory() + "callgate-fuzz-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        self.store = try Store.open(StoreConfiguration(path: self.directory + "/callgate.sqlite3", durability: .async))
        self.dispatcher = Dispatcher(store: self.store, sessions: SessionRegistry(maximumConnections: 16))
        let org = try self.store.engine.createOrganization(name: "Fuzz", timeZone: "UTC", actor: .system)
        let other = try self.store.engine.createOrganization(name: "Other", timeZone: "UTC", actor: .system)

        var principals: [Principal] = []
        for (role, agent) in [(Role.admin, nil), (.manager, nil), (.dialer, nil), (.agent, Self.boundAgent)] {
            let (key, _) = try self.store.keys.create(
                organization: org.id,
                role: role,
                agent: agent,
                label: "fuzz",
                actor: .system,
                now: self.store.engine.clock.now()
            )
            principals.append(Principal(key: key, organization: org, tally: self.dispatcher.tally(for: org.id)))
        }
        self.principals = principals

        // A small organization to fuzz against, and another one that must never show through.
        let admin = principals[0]
        for request in Self.setUp(agentPrefix: "fz", numberPrefix: "+1415555") {
            _ = self.dispatcher.handle(request, admin)
        }
        let (otherKey, _) = try self.store.keys.create(
            organization: other.id,
            role: .admin,
            agent: nil,
            label: "other",
            actor: .system,
            now: self.store.engine.clock.now()
        )
        let otherAdmin = Principal(key: otherKey, organization: other, tally: self.dispatcher.tally(for: other.id))
        for request in Self.setUp(agentPrefix: Self.otherMarker, numberPrefix: "+1650555") {
            _ = self.dispatcher.handle(request, otherAdmin)
        }
    }

    /// Stops the store's writer and removes its files.
    public func close() {
        self.store.close()
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    /// Agents `<prefix>-alice`, `-bob`; five numbers, two assigned to alice and one to bob.
    static func setUp(agentPrefix: String, numberPrefix: String) -> [Wire.Request.Method] {
        let numbers = (0..<5).map { numberPrefix + String(format: "%04d", 100 + $0) }
        var requests: [Wire.Request.Method] = [
            .importNumbers(
                Wire.ImportNumbersRequest(
                    csv: "number,provider,country,tags\n"
                        + numbers.map { "\($0),telnyx,US,\(agentPrefix)-pool\n" }.joined()
                )
            ),
            .upsertAgent(Wire.UpsertAgentRequest(id: "\(agentPrefix)-alice", displayName: "\(agentPrefix) Alice")),
            .upsertAgent(Wire.UpsertAgentRequest(id: "\(agentPrefix)-bob", displayName: "\(agentPrefix) Bob")),
        ]
        for (number, agent) in [(numbers[0], "alice"), (numbers[1], "alice"), (numbers[2], "bob")] {
            requests.append(
                .assign(
                    Wire.AssignRequest(
                        number: number,
                        agentID: "\(agentPrefix)-\(agent)",
                        terms: Wire.AssignmentTerms(dailyLimit: 5, allowedCountries: ["US", "CA"])
                    )
                )
            )
        }
        return requests
    }

    /// One fuzz input: a role byte, then frames.
    public func run(_ input: UnsafeRawBufferPointer) {
        guard let role = input.first else { return }
        let principal = self.principals[Int(role) % self.principals.count]
        let inputLeaksMarker = Self.contains(input, Self.otherMarker)

        var buffer = ByteBufferAllocator().buffer(capacity: input.count)
        buffer.writeBytes(UnsafeRawBufferPointer(rebasing: input.dropFirst()))
        var replies = ByteBufferAllocator().buffer(capacity: 256)
        while true {
            let before = buffer.readableBytes
            let frame: ByteBuffer?
            do {
                frame = try self.decoder.next(&buffer)
            } catch {
                // Only a length over the limit is refused, and nothing was consumed.
                let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self)
                precondition(length.map { Int($0) > self.decoder.maximumFrameBytes } ?? false, "refused \(error)")
                precondition(buffer.readableBytes == before, "a refused frame consumed bytes")
                break
            }
            guard let frame else {
                precondition(
                    buffer.readableBytes < 4 + Int(buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) ?? 0)
                )
                break
            }
            precondition(frame.readableBytes <= self.decoder.maximumFrameBytes)
            precondition(buffer.readableBytes == before - 4 - frame.readableBytes, "frame bytes lost")
            self.request(frame, principal, into: &replies)
        }
        // Every reply is a whole frame that decodes; none shows the other organization.
        while let frame = try? self.decoder.next(&replies) {
            let response: Wire.Response
            do {
                response = try Wire.Response.decode(frame)
            } catch {
                preconditionFailure("a reply does not decode: \(error)")
            }
            var again = ByteBufferAllocator().buffer(capacity: frame.readableBytes + 4)
            response.encodeFrame(into: &again)
            precondition(again.readableBytes == frame.readableBytes + 4, "a reply does not re-encode to its size")
            if !inputLeaksMarker {
                frame.withUnsafeReadableBytes { bytes in
                    precondition(!Self.contains(bytes, Self.otherMarker), "a reply shows another organization")
                }
            }
        }
        precondition(replies.readableBytes == 0, "a partial reply frame")
    }

    private func request(_ frame: ByteBuffer, _ principal: Principal, into replies: inout ByteBuffer) {
        frame.withUnsafeReadableBytes { bytes in
            guard let message = self.arena.unpackRequest(bytes) else {
                // protobuf-c refused it; the generic decoder must agree.
                precondition((try? Wire.Request.decode(bytes)) == nil, "the decoders disagree on a frame")
                return
            }
            defer { self.arena.release(message) }
            let c = message.pointee
            let request = Wire.Request(c: message)

            // Swift → protobuf-c → Swift gives the same request.
            let bytes = request.serialized()
            let again = bytes.withUnsafeBytes { try? Wire.Request.decode($0) }
            precondition(again == request, "a request does not survive a round trip")

            if c.method_case == CALLGATE__V1__REQUEST__METHOD_AUTHORIZE_CALL, let call = c.authorize_call {
                // The hot path, straight from the C struct.
                let agent = CArena.string(call.pointee.agent_id)
                do throws(CallgateError) {
                    let (answer, _) = try self.dispatcher.authorizeCall(
                        agent: agent,
                        destination: CArena.string(call.pointee.destination),
                        from: CArena.string(call.pointee.from_number),
                        dryRun: call.pointee.dry_run != 0,
                        principal
                    )
                    if answer.allowed, let bound = principal.boundAgent {
                        precondition(agent.isEmpty || agent == bound, "an agent key was allowed for another agent")
                    }
                    Wire.encodeAuthorizeCallResponse(requestID: c.request_id, answer, into: &replies)
                } catch {
                    Wire.Response(requestID: c.request_id, result: Reply.error(error).result).encodeFrame(
                        into: &replies
                    )
                }
                return
            }
            guard let method = request.method else { return }
            if case .hello = method { return }
            let reply = self.dispatcher.handle(method, principal)
            if case .authorizeCall(let answer) = reply.result, answer.verdict == .allow,
                let bound = principal.boundAgent, case .authorizeCall(let call) = method
            {
                precondition(
                    call.agentID.isEmpty || call.agentID == bound,
                    "an agent key was allowed for another agent"
                )
            }
            Wire.Response(requestID: request.requestID, result: reply.result).encodeFrame(into: &replies)
        }
    }

    static func contains(_ bytes: UnsafeRawBufferPointer, _ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard bytes.count >= needle.count else { return false }
        for start in 0...(bytes.count - needle.count) {
            var match = true
            for (i, byte) in needle.enumerated() where bytes[start + i] != byte {
                match = false
                break
            }
            if match { return true }
        }
        return false
    }
}
