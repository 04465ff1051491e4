import CallgateWire
import NIOCore

/// The end of the client's pipeline: writes request frames, matches response frames to their requests
/// by request id, times requests out, and fails whatever is pending when the connection goes away.
///
/// Every member runs on the channel's event loop (``CallgateClient`` reaches it through `NIOLoopBound`),
/// so the pending table needs no lock.
final class ClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var promise: EventLoopPromise<Wire.Response>
        var timer: Scheduled<Void>?
        var methodName: String
    }

    private var context: ChannelHandlerContext?
    private var pending: [UInt64: Pending] = [:]
    private var flushScheduled = false
    /// Set once the connection is going away; requests enqueued afterwards fail with it at once.
    private var failure: CallgateClientError?
    /// Why the connection is closing, when known before `channelInactive` (an I/O error, a bad frame).
    private var closeReason: (kind: CallgateClientError.Kind, detail: String)?
    /// An error the server sent with request id 0 (it closes the connection after it).
    private var serverError: Wire.Status?
    private var closedByClient = false
    /// TLS, when on: its failures before the first response are connect failures.
    private let tls: ClientTLSContext?
    /// Whether a response arrived (the TLS handshake, if any, is done and the server speaks Callgate).
    private var answered = false

    init(tls: ClientTLSContext? = nil) {
        self.tls = tls
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.failAll()
    }

    /// Writes one request frame and registers `promise` for its response. The flush is deferred to the
    /// end of the event loop's current batch of tasks, so requests sent together share one `writev`.
    func enqueue(
        id: UInt64,
        methodName: String,
        frame: ByteBuffer,
        timeout: TimeAmount,
        promise: EventLoopPromise<Wire.Response>
    ) {
        guard self.failure == nil, let context = self.context, context.channel.isActive else {
            promise.fail(self.failure ?? Self.closedError(nil, serverError: self.serverError))
            return
        }
        let timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            self.timedOut(id: id, after: timeout)
        }
        self.pending[id] = Pending(promise: promise, timer: timer, methodName: methodName)
        context.write(self.wrapOutboundOut(frame), promise: nil)
        if !self.flushScheduled {
            self.flushScheduled = true
            context.eventLoop.assumeIsolated().execute {
                self.flushScheduled = false
                self.context?.flush()
            }
        }
    }

    /// Closes the connection for ``CallgateClient/close()``: pending requests fail at once.
    func closeByClient() -> EventLoopFuture<Void>? {
        self.closedByClient = true
        self.failAll()
        guard let context = self.context else { return nil }
        let promise = context.eventLoop.makePromise(of: Void.self)
        context.close(promise: promise)
        return promise.futureResult
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        self.answered = true
        let response: Wire.Response
        do {
            response = try Wire.Response.decode(frame)
        } catch {
            self.closeReason = (.protocolViolation, "the server sent a response that does not decode (\(error))")
            context.close(promise: nil)
            return
        }
        if response.requestID == 0 {
            // A connection-level error (a malformed request, a refused hello): the server closes next.
            if case .error(let status) = response.result {
                self.serverError = status
                context.close(promise: nil)
            }
            return
        }
        // Unknown ids are late responses to requests that timed out: dropped.
        guard let entry = self.pending.removeValue(forKey: response.requestID) else { return }
        entry.timer?.cancel()
        entry.promise.succeed(response)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.closeReason == nil {
            if let tls = self.tls, !self.answered, ClientTLSContext.isTLSError(error) {
                // No session yet: the connection could not be set up (an untrusted certificate, a server
                // without TLS, a refused client certificate).
                self.closeReason = (.connectFailed, tls.describeFailure(error))
            } else if self.tls == nil, !self.answered, case .frameTooLarge(let length, _)? = error as? WireError,
                length >> 16 == 0x1503 || length >> 16 == 0x1603
            {
                // A TLS record (an alert or a handshake, version 3.x) read as a length prefix.
                self.closeReason = (.connectFailed, "the server answered in TLS: connect with TLS")
            } else if let error = error as? WireError {
                self.closeReason = (.protocolViolation, "the server sent an invalid frame: \(error)")
            } else if error is ByteToMessageDecoderError {
                // A partial frame when the stream ended: the server went away mid-response.
                self.closeReason = (.connectionClosed, "the connection ended inside a frame")
            } else {
                self.closeReason = (.connectionClosed, "\(error)")
            }
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.failAll()
        context.fireChannelInactive()
    }

    private func timedOut(id: UInt64, after timeout: TimeAmount) {
        guard let entry = self.pending.removeValue(forKey: id) else { return }
        entry.promise.fail(
            CallgateClientError(
                kind: .timeout,
                message: "no response to \(entry.methodName) (request \(id)) within \(Duration(timeout))"
            )
        )
    }

    private func failAll() {
        if self.failure == nil {
            if self.closedByClient {
                self.failure = CallgateClientError(kind: .connectionClosed, message: "the client closed the connection")
            } else if let (kind, detail) = self.closeReason, kind != .connectionClosed {
                self.failure = CallgateClientError(kind: kind, message: detail)
            } else {
                self.failure = Self.closedError(self.closeReason?.detail, serverError: self.serverError)
            }
        }
        guard !self.pending.isEmpty, let failure = self.failure else { return }
        let pending = self.pending
        self.pending = [:]
        for entry in pending.values {
            entry.timer?.cancel()
            if entry.methodName == "hello", let status = self.serverError {
                // A refused hello answered with request id 0 is still the server's answer to it.
                entry.promise.fail(CallgateClientError.status(status))
            } else {
                entry.promise.fail(failure)
            }
        }
    }

    private static func closedError(_ detail: String?, serverError: Wire.Status?) -> CallgateClientError {
        var message = "the connection to the server closed"
        if let detail { message += ": \(detail)" }
        if let serverError {
            message += " (the server said \(serverError.code.protoName): \(serverError.message))"
        }
        return CallgateClientError(kind: .connectionClosed, message: message)
    }
}
