import CCallgateProto
import CallgateCore
import CallgateStore
import CallgateWire
import Logging
import NIOCore
import NIOPosix
import NIOTLS

#if canImport(Glibc)
import Glibc
#endif

/// One client connection: authenticates it, runs its requests, and releases the replies.
///
/// Everything here runs on the connection's event loop. Requests are decoded as frames arrive;
/// the hot methods run inline, the others on a thread pool. Replies produced while reading one burst
/// of frames are collected into one buffer, and in `commit` durability that buffer leaves only when the
/// writer has committed the highest change it depends on: one commit wait per read burst, not one
/// per request.
///
/// States: `awaitingHello` → `authenticated` → `closing`. Any request before hello, a bad key, a
/// malformed or oversized frame, or a revoked key answers an error and moves to `closing`.
///
/// With TLS, a `NIOSSLServerHandler` sits first in the pipeline and this handler sees plaintext. The
/// hello timeout starts with the TCP connection, so it covers the handshake too; a connection still
/// handshaking then is closed at once (no error can reach it).
final class SessionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case awaitingHello
        case authenticated(Principal)
        case closing
    }

    private let dispatcher: Dispatcher
    private let configuration: ServerConfiguration
    private let metrics: ServerMetrics
    private let threadPool: NIOThreadPool
    private var logger: Logger

    private var state = State.awaitingHello
    private var context: ChannelHandlerContext?
    /// Replies of the current read burst, not yet written.
    private var burst: ByteBuffer
    /// The highest change the burst's replies depend on.
    private var burstTicket: ChangeTicket?
    /// Bursts written only once their ticket commits, oldest first.
    private var waiting = CircularBuffer<(ticket: ChangeTicket, replies: ByteBuffer)>()
    /// Requests on the thread pool.
    private var onPool = 0
    /// Bytes of replies parked until their commit.
    private var parkedBytes = 0
    /// Why reading from the client is paused (any reason pauses it).
    private var pause = ReadPause()

    private struct ReadPause {
        /// The socket's send buffer is above the watermark: the client does not read.
        var unwritable = false
        /// Too many replies are parked waiting for a commit.
        var parked = false
        /// Too many requests of this connection are on the thread pool.
        var pool = false
        var any: Bool { self.unwritable || self.parked || self.pool }
    }

    /// Requests of one connection on the thread pool at most before reading pauses.
    private static let maximumOnPool = 64
    private var draining = false
    private var helloTimer: Scheduled<Void>?
    private var slowReaderTimer: Scheduled<Void>?
    /// `commit` durability: every reply waits for its change. In `async` a reply waits only while the
    /// writer is far behind (backpressure instead of RESOURCE_EXHAUSTED).
    private let waitsForCommit: Bool
    private var admitted = false
    /// TLS is on and its handshake has not completed: nothing written can reach the client yet.
    private var handshakePending: Bool
    private let arena = UnpackArena()
    /// AuthorizeCall answers counted since the last read burst's replies were released; added to the
    /// server's metrics once per burst (a few atomic adds instead of several per request).
    private var tally: RequestTally

    init(
        dispatcher: Dispatcher,
        configuration: ServerConfiguration,
        metrics: ServerMetrics,
        threadPool: NIOThreadPool,
        logger: Logger
    ) {
        self.dispatcher = dispatcher
        self.configuration = configuration
        self.metrics = metrics
        self.threadPool = threadPool
        self.logger = logger
        self.burst = ByteBuffer()
        self.waitsForCommit = dispatcher.durability == .commit
        self.handshakePending = configuration.tls != nil
        self.tally = metrics.makeTally()
    }

    // MARK: - Connection lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.burst = context.channel.allocator.buffer(capacity: 4096)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.logger[metadataKey: "peer"] = "\(context.remoteAddress.map { "\($0)" } ?? "?")"
        guard self.dispatcher.sessions.admit(context.channel) else {
            self.metrics.connectionRejected(.limit)
            self.fail(
                requestID: 0,
                .resourceExhausted,
                "too many connections (limit \(self.dispatcher.sessions.maximumConnections)) or the server is stopping"
            )
            context.fireChannelActive()
            return
        }
        self.admitted = true
        self.metrics.connectionOpened()
        self.logger.debug("connection opened")
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.helloTimer = context.eventLoop.scheduleTask(in: .init(self.configuration.helloTimeout)) {
            let handler = bound.value
            guard case .awaitingHello = handler.state else { return }
            if handler.handshakePending {
                // An error written now would wait for the handshake forever: cut the connection off.
                handler.metrics.connectionRejected(.tls)
                handler.logger.debug("no TLS handshake within the hello timeout; closing")
                handler.handshakePending = false
                handler.state = .closing
                handler.context?.close(promise: nil)
            } else {
                handler.metrics.connectionRejected(.auth)
                handler.fail(requestID: 0, .unauthenticated, "no hello within \(handler.configuration.helloTimeout)")
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.helloTimer?.cancel()
        self.slowReaderTimer?.cancel()
        self.state = .closing
        self.metrics.add(&self.tally)
        if self.admitted {
            self.dispatcher.sessions.remove(context.channel)
            self.metrics.connectionClosed()
        }
        self.logger.debug("connection closed")
        context.fireChannelInactive()
    }

    // MARK: - Requests

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = Self.unwrapInboundIn(data)
        let principal: Principal
        switch self.state {
        case .closing:
            return
        case .awaitingHello:
            self.hello(frame)
            return
        case .authenticated(let p):
            principal = p
        }
        let started = Self.monotonicNanoseconds()
        // protobuf-c unpacks into the connection's arena; AuthorizeCall is answered straight from the C
        // struct (no Swift message, no heap), everything else becomes a `Wire.Request`.
        let decoded: Wire.Request?? = frame.withUnsafeReadableBytes { bytes -> Wire.Request?? in
            guard let message = self.arena.unpackRequest(bytes) else { return .none }
            defer { self.arena.release(message) }
            let c = message.pointee
            if c.method_case == CALLGATE__V1__REQUEST__METHOD_AUTHORIZE_CALL, let call = c.authorize_call {
                self.authorizeCall(c.request_id, call.pointee, principal, started: started)
                return .some(nil)
            }
            return .some(Wire.Request(c: message))
        }
        guard let decoded else {
            self.metrics.connectionRejected(.frame)
            self.fail(
                requestID: 0,
                .invalidArgument,
                "frame of \(frame.readableBytes) bytes is not a valid request; closing"
            )
            return
        }
        guard let request = decoded else { return }
        guard let method = request.method else {
            self.append(
                request.requestID,
                Reply(.error(Wire.Status(code: .unimplemented, message: "unknown or missing method"))),
                methodIndex: nil,
                started: 0
            )
            return
        }
        if Dispatcher.runsInline(method) {
            let reply = self.dispatcher.handle(method, principal)
            if case .authorizeCall(let answer) = reply.result {
                self.metrics.decision(
                    answer.verdict == .allow ? nil : DenyReason(rawValue: UInt8(clamping: answer.reason.rawValue))
                )
            }
            self.append(request.requestID, reply, methodIndex: method.index, started: started)
        } else {
            self.onPool += 1
            if self.onPool >= Self.maximumOnPool { self.updatePause { $0.pool = true } }
            let dispatcher = self.dispatcher
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let id = request.requestID
            self.threadPool.runIfActive(eventLoop: context.eventLoop) {
                dispatcher.handle(method, principal)
            }.whenComplete { result in
                let handler = bound.value
                handler.onPool -= 1
                if handler.pause.pool, handler.onPool < Self.maximumOnPool / 2 {
                    handler.updatePause { $0.pool = false }
                }
                let reply: Reply
                switch result {
                case .success(let r): reply = r
                case .failure: reply = .error(CallgateError(.unavailable, "the server is shutting down"))
                }
                handler.append(id, reply, methodIndex: method.index, started: started)
                handler.releaseBurst()
            }
        }
    }

    /// The hot path: AuthorizeCall from the unpacked C struct to the encoded reply.
    private func authorizeCall(
        _ requestID: UInt64,
        _ call: Callgate__V1__AuthorizeCallRequest,
        _ principal: Principal,
        started: UInt64
    ) {
        do throws(CallgateError) {
            let (answer, ticket) = try self.dispatcher.authorizeCall(
                agent: CArena.string(call.agent_id),
                destination: CArena.string(call.destination),
                from: CArena.string(call.from_number),
                dryRun: call.dry_run != 0,
                principal
            )
            Wire.encodeAuthorizeCallResponse(requestID: requestID, answer, into: &self.burst)
            if let ticket, self.waitsForCommit || self.dispatcher.store.writer.isBehind {
                self.burstTicket = max(self.burstTicket ?? ticket, ticket)
            }
            self.tally.authorizeCall(
                nanoseconds: Self.monotonicNanoseconds() &- started,
                reason: answer.allowed ? 0 : Int(answer.reason)
            )
        } catch {
            self.append(requestID, .error(error), methodIndex: ServerMetrics.authorizeCallIndex, started: started)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.releaseBurst()
        context.fireChannelReadComplete()
    }

    private func hello(_ frame: ByteBuffer) {
        let request: Wire.Request
        do {
            request = try Wire.Request.decode(frame)
        } catch {
            self.metrics.connectionRejected(.frame)
            self.fail(requestID: 0, .invalidArgument, "\(error); closing")
            return
        }
        guard case .hello(let hello)? = request.method else {
            self.metrics.connectionRejected(.auth)
            self.fail(requestID: request.requestID, .unauthenticated, "the first request must be hello")
            return
        }
        guard hello.protocolVersion == Wire.protocolVersion else {
            self.fail(
                requestID: request.requestID,
                .failedPrecondition,
                "protocol version \(hello.protocolVersion) is not supported; this server speaks \(Wire.protocolVersion)"
            )
            return
        }
        guard let key = self.dispatcher.store.keys.authenticate(hello.apiKey),
            let organization = self.dispatcher.store.engine.organization(key.organization)
        else {
            self.metrics.connectionRejected(.auth)
            self.logger.info("authentication failed", metadata: ["client": "\(hello.clientName)"])
            self.fail(requestID: request.requestID, .unauthenticated, "invalid or revoked API key")
            return
        }
        self.helloTimer?.cancel()
        let principal = Principal(
            key: key,
            organization: organization,
            tally: self.dispatcher.tally(for: organization.id)
        )
        self.state = .authenticated(principal)
        if let channel = self.context?.channel {
            self.dispatcher.sessions.authenticated(channel, keyID: key.id, organization: organization.id)
        }
        // A revocation between authenticate() and registering the session would be missed; check again.
        guard self.dispatcher.store.keys.isActive(id: key.id) else {
            self.fail(requestID: request.requestID, .unauthenticated, "invalid or revoked API key")
            return
        }
        self.logger[metadataKey: "key"] = "\(key.id)"
        self.logger.debug(
            "session authenticated",
            metadata: ["role": "\(key.role)", "organization": "\(organization.id)", "client": "\(hello.clientName)"]
        )
        let answer = Wire.HelloResponse(
            protocolVersion: Wire.protocolVersion,
            organizationID: organization.id.rawValue,
            organizationName: organization.name,
            role: key.role.wire,
            agentID: key.role == .agent ? key.agent ?? "" : "",
            maxFrameBytes: UInt32(clamping: self.configuration.maximumFrameBytes)
        )
        self.append(request.requestID, Reply(.hello(answer)), methodIndex: 0, started: Self.monotonicNanoseconds())
    }

    // MARK: - Replies and commits

    private func append(_ requestID: UInt64, _ reply: Reply, methodIndex: Int?, started: UInt64) {
        if let methodIndex {
            self.metrics.requestFinished(
                methodIndex: methodIndex,
                code: reply.statusCode,
                nanoseconds: Self.monotonicNanoseconds() &- started
            )
        }
        Wire.Response(requestID: requestID, result: reply.result).encodeFrame(into: &self.burst)
        if let ticket = reply.ticket, self.waitsForCommit || self.dispatcher.store.writer.isBehind {
            self.burstTicket = max(self.burstTicket ?? ticket, ticket)
        }
    }

    /// Writes the burst now, or parks it until its ticket commits.
    private func releaseBurst() {
        self.metrics.add(&self.tally)
        guard let context = self.context, self.burst.readableBytes > 0 else {
            self.finishDrainIfIdle()
            return
        }
        let replies = self.burst
        self.burst = context.channel.allocator.buffer(capacity: 4096)
        let ticket = self.burstTicket
        self.burstTicket = nil
        if let ticket, !self.dispatcher.store.writer.isCommitted(ticket),
            !self.dispatcher.store.writer.commitIfIdle(through: ticket)
        {
            self.waiting.append((ticket, replies))
            self.parkedBytes += replies.readableBytes
            if self.parkedBytes > self.configuration.outboundHighWatermark { self.updatePause { $0.parked = true } }
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            let eventLoop = context.eventLoop
            self.dispatcher.store.writer.whenCommitted(ticket) { error in
                eventLoop.execute { bound.value.committed(upTo: ticket, error) }
            }
        } else if self.waiting.isEmpty {
            context.writeAndFlush(Self.wrapOutboundOut(replies), promise: nil)
            self.finishDrainIfIdle()
        } else {
            // Keep order with bursts still waiting: ride along with the newest one.
            let last = self.waiting.removeLast()
            var merged = last.replies
            var replies = replies
            self.parkedBytes += replies.readableBytes
            merged.writeBuffer(&replies)
            self.waiting.append((last.ticket, merged))
            if self.parkedBytes > self.configuration.outboundHighWatermark { self.updatePause { $0.parked = true } }
        }
    }

    private func committed(upTo ticket: ChangeTicket, _ error: CallgateError?) {
        guard let context = self.context else { return }
        if let error {
            // The changes these replies report can never be committed: do not send them.
            self.waiting.removeAll()
            self.logger.error("store failed; closing session", metadata: ["error": "\(error)"])
            self.fail(requestID: 0, .unavailable, "the store failed: \(error.message)")
            return
        }
        var wrote = false
        while let first = self.waiting.first, first.ticket <= ticket {
            self.waiting.removeFirst()
            self.parkedBytes -= first.replies.readableBytes
            context.write(Self.wrapOutboundOut(first.replies), promise: nil)
            wrote = true
        }
        if wrote { context.flush() }
        if self.pause.parked, self.parkedBytes <= self.configuration.outboundHighWatermark / 2 {
            self.updatePause { $0.parked = false }
        }
        self.finishDrainIfIdle()
    }

    /// Answers an error and closes the connection once it is written.
    ///
    /// The server closes its sending side first and reads (and drops) what the client still sends for
    /// up to a second: closing a socket with unread input makes the kernel send a reset, which can
    /// overtake the error reply on a real network.
    private func fail(requestID: UInt64, _ code: Wire.StatusCode, _ message: String) {
        guard let context = self.context else { return }
        if case .closing = self.state { return }
        self.state = .closing
        self.helloTimer?.cancel()
        var buffer = context.channel.allocator.buffer(capacity: 64 + message.utf8.count)
        Wire.Response.error(requestID, code, message).encodeFrame(into: &buffer)
        let channel = context.channel
        context.writeAndFlush(Self.wrapOutboundOut(buffer)).whenComplete { _ in
            channel.close(mode: .output).whenComplete { _ in
                channel.eventLoop.scheduleTask(in: .seconds(1)) { channel.close(promise: nil) }
            }
        }
        if self.handshakePending {
            // The error leaves only once the TLS handshake completes (a refused connection over the
            // limit): give the client until the hello timeout for that.
            channel.eventLoop.scheduleTask(in: .init(self.configuration.helloTimeout)) { channel.close(promise: nil) }
        }
    }

    // MARK: - Backpressure, idleness, events

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.slowReaderTimer?.cancel()
            self.slowReaderTimer = nil
            self.updatePause { $0.unwritable = false }
        } else {
            // Stop reading requests from a client that does not read its replies, and cut it off if it
            // stays that way.
            self.updatePause { $0.unwritable = true }
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            self.slowReaderTimer = context.eventLoop.scheduleTask(in: .init(self.configuration.slowReaderTimeout)) {
                let handler = bound.value
                guard let context = handler.context, !context.channel.isWritable else { return }
                handler.metrics.connectionRejected(.slowReader)
                handler.logger.info("client does not read its replies; closing")
                handler.state = .closing
                context.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? SessionEvent {
            switch event {
            case .revoked:
                self.logger.info("API key revoked; closing session")
                self.waiting.removeAll()
                self.fail(requestID: 0, .unauthenticated, "the API key was revoked")
            case .drain:
                self.draining = true
                context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
                self.releaseBurst()
            }
        } else if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            self.handshakePending = false
            context.fireUserInboundEventTriggered(event)
        } else if let event = event as? IdleStateHandler.IdleStateEvent, event == .read {
            if self.onPool == 0, self.waiting.isEmpty {
                self.metrics.connectionRejected(.idle)
                self.fail(requestID: 0, .unavailable, "idle for \(self.configuration.idleTimeout); closing")
            }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private var isClosing: Bool {
        if case .closing = self.state { return true }
        return false
    }

    /// Changes a reason to pause reading and turns `autoRead` off or back on when the answer changes.
    private func updatePause(_ change: (inout ReadPause) -> Void) {
        let before = self.pause.any
        change(&self.pause)
        let after = self.pause.any
        guard before != after, !self.draining, let channel = self.context?.channel else { return }
        channel.setOption(ChannelOptions.autoRead, value: !after).whenFailure { _ in }
    }

    /// While draining, closes once nothing is in flight.
    private func finishDrainIfIdle() {
        guard self.draining, self.onPool == 0, self.waiting.isEmpty, self.burst.readableBytes == 0,
            let context = self.context
        else { return }
        self.state = .closing
        let channel = context.channel
        context.writeAndFlush(Self.wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? WireError {
            self.metrics.connectionRejected(.frame)
            switch error {
            case .frameTooLarge: self.fail(requestID: 0, .resourceExhausted, "\(error); closing")
            case .malformed: self.fail(requestID: 0, .invalidArgument, "\(error); closing")
            }
        } else {
            if self.handshakePending, !self.isClosing {
                // Not TLS (a plaintext client), an unacceptable client certificate, no common version.
                self.handshakePending = false
                self.metrics.connectionRejected(.tls)
                self.logger.debug("TLS handshake failed", metadata: ["error": "\(error)"])
            } else {
                self.logger.debug("connection error", metadata: ["error": "\(error)"])
            }
            self.state = .closing
            context.close(promise: nil)
        }
    }

    static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}
