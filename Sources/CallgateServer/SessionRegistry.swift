package import CallgateCore
package import NIOCore

/// Events the server sends to a session's handler from outside its event loop.
package enum SessionEvent: Sendable {
    /// The session's key was revoked: answer UNAUTHENTICATED and close.
    case revoked
    /// The server is shutting down: stop reading, finish what is in flight, close.
    case drain
}

/// The open connections: counts them against the limit, finds the sessions of a key when it is
/// revoked, and reaches all of them at shutdown. Touched on connect, authenticate and close only.
package final class SessionRegistry: Sendable {
    private struct Entry {
        var channel: any Channel
        var keyID: String?
        var organization: OrganizationID?
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var draining = false
    }

    private let state = Locked(State())
    package let maximumConnections: Int

    package init(maximumConnections: Int) {
        self.maximumConnections = maximumConnections
    }

    /// Open connections.
    package var count: Int { self.state.withLock { $0.entries.count } }

    /// Registers a new connection; `false` when the limit is reached or the server is draining.
    package func admit(_ channel: any Channel) -> Bool {
        self.state.withLock { state in
            guard !state.draining, state.entries.count < self.maximumConnections else { return false }
            state.entries[ObjectIdentifier(channel)] = Entry(channel: channel, keyID: nil)
            return true
        }
    }

    package func authenticated(_ channel: any Channel, keyID: String, organization: OrganizationID) {
        self.state.withLock { state in
            state.entries[ObjectIdentifier(channel)]?.keyID = keyID
            state.entries[ObjectIdentifier(channel)]?.organization = organization
        }
    }

    /// Authenticated sessions of one organization.
    package func count(organization: OrganizationID) -> Int {
        self.state.withLock { state in state.entries.values.filter { $0.organization == organization }.count }
    }

    package func remove(_ channel: any Channel) {
        _ = self.state.withLock { $0.entries.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Tells every session of the key that it was revoked.
    package func revoke(keyID: String) {
        let channels = self.state.withLock { state in state.entries.values.filter { $0.keyID == keyID }.map(\.channel) }
        for channel in channels { channel.pipeline.fireUserInboundEventTriggered(SessionEvent.revoked) }
    }

    /// Refuses new connections and asks every open one to drain; returns their close futures.
    package func drainAll() -> [EventLoopFuture<Void>] {
        let channels = self.state.withLock { state in
            state.draining = true
            return state.entries.values.map(\.channel)
        }
        for channel in channels { channel.pipeline.fireUserInboundEventTriggered(SessionEvent.drain) }
        return channels.map(\.closeFuture)
    }

    /// Closes every connection still open; returns how many there were.
    package func closeAll() -> Int {
        let channels = self.state.withLock { state in state.entries.values.map(\.channel) }
        for channel in channels { channel.close(promise: nil) }
        return channels.count
    }
}
