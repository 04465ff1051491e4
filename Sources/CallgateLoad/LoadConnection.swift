import CallgateClient
import CallgateWire
import NIOCore

/// What every connection of a run shares, read-only: the pre-encoded AuthorizeCall method parts (one per
/// agent and outcome), the agent sampler, the mix.
final class LoadPlan: @unchecked Sendable {
    // @unchecked: every stored property is immutable after init; `templates` is owned memory freed in deinit.

    let configuration: LoadConfiguration
    /// TLS to the server (one context for every connection), when ``LoadConfiguration/tls`` is set.
    let tls: ClientTLSContext?
    /// Method parts back to back: template `2·agent` is the agent's allowed destination, `2·agent + 1` the
    /// denied one.
    let templates: UnsafeMutableRawBufferPointer
    let offsets: [Int]
    let zipf: ZipfSampler?
    /// Cumulative mix weights: authorize, pick, assign, release.
    let mixBounds: (UInt64, UInt64, UInt64, UInt64)
    let firstSpare: Int

    init(_ configuration: LoadConfiguration, tls: ClientTLSContext? = nil) {
        self.configuration = configuration
        self.tls = tls
        var bytes: [UInt8] = []
        var offsets: [Int] = [0]
        offsets.reserveCapacity(2 * configuration.agentCount + 1)
        for agent in 0..<configuration.agentCount {
            let id = LoadNumbering.agentID(agent)
            bytes += LoadCodec.authorizeCallMethod(agentID: id, destination: LoadNumbering.allowedDestination(agent))
            offsets.append(bytes.count)
            bytes += LoadCodec.authorizeCallMethod(agentID: id, destination: LoadConfiguration.denyDestination)
            offsets.append(bytes.count)
        }
        let templates = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 8)
        bytes.withUnsafeBytes { templates.copyMemory(from: $0) }
        self.templates = templates
        self.offsets = offsets
        if case .zipf(let s) = configuration.agents {
            self.zipf = ZipfSampler(count: configuration.agentCount, exponent: s)
        } else {
            self.zipf = nil
        }
        let mix = configuration.mix
        let a = UInt64(mix.authorize)
        let p = a + UInt64(mix.pick)
        let s = p + UInt64(mix.assign)
        self.mixBounds = (a, p, s, s + UInt64(mix.release))
        self.firstSpare = configuration.agentCount * configuration.numbersPerAgent
    }

    deinit {
        self.templates.deallocate()
    }

    func template(_ index: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: self.templates[self.offsets[index]..<self.offsets[index + 1]])
    }
}

/// When a connection sends and when it stops, in `NIODeadline` uptime nanoseconds.
struct LoadSchedule: Sendable {
    var start: UInt64
    var measureStart: UInt64
    /// `UInt64.max` when the run is bounded by a request count.
    var measureEnd: UInt64
    /// Measured requests this connection sends (`Int.max`: until `measureEnd`).
    var quota: Int
}

/// One load connection: says hello, then keeps up to `depth` requests in flight (closed loop) or sends on
/// a fixed schedule (open loop), and records every answer in its event loop's ``LoopStats``.
///
/// Runs entirely on its channel's event loop. Per AuthorizeCall it writes a pre-encoded method part behind
/// a fresh request id into a reused output buffer and reads the answer with ``LoadCodec``: no allocation
/// in the steady state. Outstanding requests sit in a ring indexed by request id (ids grow by one per
/// request), which doubles if an old request is still outstanding when its slot comes round again.
final class LoadConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Operation: UInt8 {
        case authorize = 0
        case pick = 1
        case assign = 2
        case release = 3
    }

    private struct Slot {
        var id: UInt64 = 0
        var intended: UInt64 = 0
        var operation: Operation = .authorize
        var measured = false
        var spare: Int32 = -1
    }

    private enum Phase {
        case connecting, ready, running, draining, finished
    }

    private let plan: LoadPlan
    private let stats: LoopStats
    private let depth: Int
    private var random: LoadRandom
    private var context: ChannelHandlerContext?
    private var phase = Phase.connecting
    private let helloPromise: EventLoopPromise<Void>
    private let donePromise: EventLoopPromise<Void>
    private var out: ByteBuffer

    private var ring: [Slot]
    private var mask: Int
    private var inFlight = 0
    private var nextID: UInt64 = 2

    private var schedule = LoadSchedule(start: 0, measureStart: 0, measureEnd: .max, quota: .max)
    private var measuredSent = 0
    /// Open loop: nanoseconds between this connection's requests, and its offset in the first interval.
    private let interval: Double
    private let offset: Double
    private var nextSlot: UInt64 = 0
    private var nextIntended: UInt64 = 0
    private var sendTimer: Scheduled<Void>?
    private var endTimer: Scheduled<Void>?
    private var drainTimer: Scheduled<Void>?

    /// Spare numbers of this connection, by local index, and the stacks of each state.
    private let spareNumbers: [String]
    private let spareAgents: [String]
    private var tokens: [UInt64]
    private var available: [Int32]
    private var reserved: [Int32] = []
    private var assigned: [Int32] = []

    var helloFuture: EventLoopFuture<Void> { self.helloPromise.futureResult }
    var doneFuture: EventLoopFuture<Void> { self.donePromise.futureResult }

    init(plan: LoadPlan, stats: LoopStats, index: Int, eventLoop: any EventLoop) {
        let configuration = plan.configuration
        self.plan = plan
        self.stats = stats
        self.depth = configuration.depth
        self.random = LoadRandom(seed: (configuration.randomSeed ?? 0x5EED) &+ UInt64(index) &* 0x9E37_79B9)
        self.helloPromise = eventLoop.makePromise()
        self.donePromise = eventLoop.makePromise()
        self.out = ByteBufferAllocator().buffer(capacity: 64 * configuration.depth + 256)
        var size = 4
        while size < 4 * configuration.depth { size <<= 1 }
        self.ring = [Slot](repeating: Slot(), count: size)
        self.mask = size - 1
        if configuration.rate > 0 {
            self.interval = 1e9 * Double(configuration.connections) / configuration.rate
            self.offset = self.interval * Double(index) / Double(configuration.connections)
        } else {
            self.interval = 0
            self.offset = 0
        }
        var numbers: [String] = []
        var agents: [String] = []
        var spare = index
        while spare < configuration.spareNumbers {
            numbers.append(LoadNumbering.number(plan.firstSpare + spare))
            agents.append(LoadNumbering.agentID(spare % configuration.agentCount))
            spare += configuration.connections
        }
        self.spareNumbers = numbers
        self.spareAgents = agents
        self.tokens = [UInt64](repeating: 0, count: numbers.count)
        self.available = (0..<Int32(numbers.count)).reversed()
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.connectionEnded()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        let configuration = self.plan.configuration
        let hello = Wire.HelloRequest(
            protocolVersion: Wire.protocolVersion,
            apiKey: configuration.apiKey,
            clientName: configuration.clientName
        )
        var frame = context.channel.allocator.buffer(capacity: 128)
        Wire.Request(requestID: 1, method: .hello(hello)).encodeFrame(into: &frame)
        context.writeAndFlush(self.wrapOutboundOut(frame), promise: nil)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.connectionEnded()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let tls = self.plan.tls, ClientTLSContext.isTLSError(error) {
            self.failConnecting(tls.describeFailure(error))
        } else {
            self.failConnecting("the connection failed before hello: \(error)")
        }
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = self.unwrapInboundIn(data)
        guard let response = LoadCodec.decodeResponse(frame) else {
            self.stats.recordFailure(StatsSnapshot.malformed, measured: self.phase != .connecting)
            self.failConnecting("the server's answer to hello is not valid protobuf")
            context.close(promise: nil)
            return
        }
        if self.phase == .connecting {
            self.helloAnswered(frame, response, context: context)
            return
        }
        self.complete(response)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.flush()
        context.fireChannelReadComplete()
    }

    // MARK: - Run

    /// Starts sending at `schedule.start` (called on the event loop by the runner).
    func start(_ schedule: LoadSchedule) {
        guard self.phase == .ready, let context = self.context else {
            if self.phase != .finished && self.phase != .connecting { self.finish() }
            return
        }
        self.phase = .running
        self.schedule = schedule
        self.nextIntended = schedule.start &+ UInt64(self.offset)
        let loop = context.eventLoop.assumeIsolated()
        if schedule.measureEnd != .max {
            self.endTimer = loop.scheduleTask(deadline: .uptimeNanoseconds(schedule.measureEnd)) {
                self.endTimer = nil
                self.stopSending(now: NIODeadline.now().uptimeNanoseconds)
                self.flush()
            }
        }
        self.armSendTimer(at: schedule.start)
    }

    private func helloAnswered(_ frame: ByteBuffer, _ response: LoadResponse, context: ChannelHandlerContext) {
        if case .hello = response.result {
            self.phase = .ready
            self.helloPromise.succeed()
            return
        }
        var message = "the server answered hello without a session"
        if let full = try? Wire.Response.decode(frame), case .error(let status) = full.result {
            message = "hello refused: \(constantName(status.code)): \(status.message)"
        }
        self.failConnecting(message)
        context.close(promise: nil)
    }

    /// Fails the hello (once) and reports the connection done.
    private func failConnecting(_ message: String) {
        guard self.phase == .connecting else { return }
        self.phase = .finished
        self.helloPromise.fail(LoadError.connectFailed(message))
        self.donePromise.succeed()
    }

    /// Sends whatever the schedule allows now: up to `depth` outstanding; in an open loop only requests
    /// whose intended time has come.
    private func pump(now: UInt64) {
        guard self.phase == .running else { return }
        let openLoop = self.interval > 0
        while self.inFlight < self.depth {
            let intended: UInt64
            if openLoop {
                if self.nextIntended > now {
                    self.armSendTimer(at: self.nextIntended)
                    return
                }
                intended = self.nextIntended
            } else {
                intended = now
            }
            if intended >= self.schedule.measureEnd {
                self.stopSending(now: now)
                return
            }
            let measured = intended >= self.schedule.measureStart
            self.send(intended: intended, measured: measured)
            if openLoop {
                self.nextSlot += 1
                self.nextIntended = self.schedule.start &+ UInt64(self.offset + Double(self.nextSlot) * self.interval)
            }
            if measured {
                self.measuredSent += 1
                if self.measuredSent >= self.schedule.quota {
                    self.stopSending(now: now)
                    return
                }
            }
        }
    }

    private func armSendTimer(at deadline: UInt64) {
        guard self.sendTimer == nil, let context = self.context else { return }
        self.sendTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: .uptimeNanoseconds(deadline)) {
            self.sendTimer = nil
            self.pump(now: NIODeadline.now().uptimeNanoseconds)
            self.flush()
        }
    }

    private func send(intended: UInt64, measured: Bool) {
        let id = self.nextID
        self.nextID &+= 1
        var index = Int(truncatingIfNeeded: id) & self.mask
        if self.ring[index].id != 0 {
            self.growRing()
            index = Int(truncatingIfNeeded: id) & self.mask
        }
        var slot = Slot(id: id, intended: intended, operation: .authorize, measured: measured, spare: -1)
        let bounds = self.plan.mixBounds
        let draw = bounds.0 == bounds.3 ? 0 : self.random.next() % bounds.3
        if draw >= bounds.0 {
            if draw < bounds.1, let spare = self.available.popLast() {
                slot.operation = .pick
                slot.spare = spare
                self.writePick(id: id, spare: Int(spare))
            } else if draw >= bounds.1 && draw < bounds.2, let spare = self.reserved.popLast() {
                slot.operation = .assign
                slot.spare = spare
                self.writeAssign(id: id, spare: Int(spare))
            } else if draw >= bounds.2, let spare = self.assigned.popLast() {
                slot.operation = .release
                slot.spare = spare
                self.writeRelease(id: id, spare: Int(spare))
            }
        }
        if slot.operation == .authorize {
            let configuration = self.plan.configuration
            let agent: Int
            if let zipf = self.plan.zipf {
                agent = zipf.rank(for: self.random.nextUnit())
            } else {
                agent = Int(truncatingIfNeeded: self.random.next() % UInt64(configuration.agentCount))
            }
            let deny = configuration.denyShare > 0 && self.random.nextUnit() < configuration.denyShare
            LoadCodec.writeFrame(requestID: id, method: self.plan.template(2 * agent + (deny ? 1 : 0)), into: &self.out)
        }
        self.ring[index] = slot
        self.inFlight += 1
    }

    private func growRing() {
        var size = self.ring.count
        while true {
            size <<= 1
            var ring = [Slot](repeating: Slot(), count: size)
            var collided = false
            for slot in self.ring where slot.id != 0 {
                let index = Int(truncatingIfNeeded: slot.id) & (size - 1)
                if ring[index].id != 0 {
                    collided = true
                    break
                }
                ring[index] = slot
            }
            let nextIndex = Int(truncatingIfNeeded: self.nextID &- 1) & (size - 1)
            if !collided && ring[nextIndex].id == 0 {
                self.ring = ring
                self.mask = size - 1
                return
            }
        }
    }

    private func writePick(id: UInt64, spare: Int) {
        let digits = String(self.spareNumbers[spare].dropFirst())
        let request = Wire.PickNumberRequest(
            criteria: Wire.NumberCriteria(prefix: digits),
            mode: .reserve(Wire.ReserveMode(ttlSeconds: 60, agentID: self.spareAgents[spare]))
        )
        Wire.Request(requestID: id, method: .pickNumber(request)).encodeFrame(into: &self.out)
    }

    private func writeAssign(id: UInt64, spare: Int) {
        let configuration = self.plan.configuration
        let request = Wire.AssignRequest(
            number: self.spareNumbers[spare],
            agentID: self.spareAgents[spare],
            terms: Wire.AssignmentTerms(
                dailyLimit: configuration.assignLimit,
                allowedCountries: configuration.assignCountries
            ),
            reservationToken: self.tokens[spare]
        )
        Wire.Request(requestID: id, method: .assign(request)).encodeFrame(into: &self.out)
    }

    private func writeRelease(id: UInt64, spare: Int) {
        let request = Wire.ReleaseRequest(number: self.spareNumbers[spare])
        Wire.Request(requestID: id, method: .release(request)).encodeFrame(into: &self.out)
    }

    /// Matches an answer to its request, records it, and sends what may go next.
    private func complete(_ response: LoadResponse) {
        let id = response.requestID
        let index = Int(truncatingIfNeeded: id) & self.mask
        guard id != 0, self.ring[index].id == id else {
            // Request id 0: the server says why it is closing; otherwise an id this connection never sent.
            if case .error(let code) = response.result, id == 0 {
                self.stats.recordFailure(StatsSnapshot.errorIndex(code: code), measured: true)
            } else {
                self.stats.recordFailure(StatsSnapshot.unknownRequestID, measured: true)
            }
            return
        }
        let slot = self.ring[index]
        self.ring[index].id = 0
        self.inFlight -= 1
        let now = NIODeadline.now().uptimeNanoseconds
        var decision = -1
        var error = -1
        var succeeded = false
        switch (response.result, slot.operation) {
        case (.error(let code), _):
            error = StatsSnapshot.errorIndex(code: code)
        case (.authorizeCall(let verdict, let reason), .authorize):
            decision = StatsSnapshot.decisionIndex(verdict: verdict, reason: reason)
        case (.pickNumber(let token), .pick):
            self.tokens[Int(slot.spare)] = token
            succeeded = true
        case (.other(let field), .assign) where field == 13:
            succeeded = true
        case (.other(let field), .release) where field == 14:
            succeeded = true
        default:
            error = StatsSnapshot.unexpectedResult
        }
        if slot.spare >= 0 { self.advanceSpare(slot.spare, after: slot.operation, succeeded: succeeded) }
        self.stats.record(
            latency: now &- slot.intended,
            measured: slot.measured,
            now: now,
            operation: Int(slot.operation.rawValue),
            decision: decision,
            error: error
        )
        switch self.phase {
        case .running:
            self.pump(now: now)
        case .draining where self.inFlight == 0:
            self.finish()
        default:
            break
        }
    }

    /// Moves a spare number on: a reserved one gets assigned, an assigned one released. After a failure
    /// (its state unknown: reserved or assigned by an earlier run, or a reservation expired) it goes to
    /// release, which brings it back to available whether it succeeds or not.
    private func advanceSpare(_ spare: Int32, after operation: Operation, succeeded: Bool) {
        switch operation {
        case .pick where succeeded: self.reserved.append(spare)
        case .assign, .pick: self.assigned.append(spare)
        case .release: self.available.append(spare)
        case .authorize: break
        }
    }

    /// No more requests: wait for the outstanding ones (at most the drain timeout), then finish.
    private func stopSending(now: UInt64) {
        guard self.phase == .running else { return }
        self.phase = .draining
        self.sendTimer?.cancel()
        self.sendTimer = nil
        self.endTimer?.cancel()
        self.endTimer = nil
        if self.interval > 0 && self.schedule.measureEnd != .max {
            // Open loop: slots of the measured phase that never got a free pipeline slot.
            var unsent: UInt64 = 0
            while self.nextIntended < self.schedule.measureEnd {
                if self.nextIntended >= self.schedule.measureStart { unsent += 1 }
                self.nextSlot += 1
                self.nextIntended = self.schedule.start &+ UInt64(self.offset + Double(self.nextSlot) * self.interval)
            }
            self.stats.total.unsent += unsent
        }
        if self.inFlight == 0 {
            self.finish()
            return
        }
        guard let context = self.context else { return }
        let timeout = self.plan.configuration.drainTimeout.nanoseconds
        self.drainTimer = context.eventLoop.assumeIsolated().scheduleTask(
            deadline: .uptimeNanoseconds(now &+ timeout)
        ) {
            self.drainTimer = nil
            self.finish()
        }
    }

    /// Counts what is still outstanding as timed out and reports the connection done.
    private func finish() {
        self.failOutstanding(StatsSnapshot.timeout)
        self.end()
    }

    private func connectionEnded() {
        switch self.phase {
        case .connecting:
            self.failConnecting("the server closed the connection before answering hello")
        case .ready, .running, .draining:
            self.failOutstanding(StatsSnapshot.connectionClosed)
            self.end()
        case .finished:
            break
        }
    }

    private func end() {
        guard self.phase != .finished else { return }
        self.phase = .finished
        for timer in [self.sendTimer, self.endTimer, self.drainTimer] { timer?.cancel() }
        self.sendTimer = nil
        self.endTimer = nil
        self.drainTimer = nil
        self.flush()
        self.donePromise.succeed()
    }

    private func failOutstanding(_ error: Int) {
        guard self.inFlight > 0 else { return }
        for index in self.ring.indices where self.ring[index].id != 0 {
            if self.ring[index].measured { self.stats.recordFailure(error, measured: true) }
            self.ring[index].id = 0
        }
        self.inFlight = 0
    }

    /// Writes the requests gathered in the output buffer, reusing its storage once the write is done.
    private func flush() {
        guard self.out.readableBytes > 0, let context = self.context, context.channel.isActive else { return }
        context.writeAndFlush(self.wrapOutboundOut(self.out), promise: nil)
        self.out.clear()
    }
}
