public import CallgateCore
public import CallgateStore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The server's data directory: `callgate.sqlite` (the store) and, after the first start,
/// `admin.key` (the first admin key, readable by the owner only).
public struct DataDirectory: Sendable {
    public let path: String

    public init(path: String) {
        self.path = path
    }

    public var databasePath: String { self.path + "/callgate.sqlite" }
    public var adminKeyPath: String { self.path + "/admin.key" }

    /// What a first start created.
    public struct FirstStart: Sendable {
        public var organizationName: String
        public var timeZone: String
        public var adminKeyPath: String
    }

    /// Creates the directory (mode 0700) when missing and opens the store in it. On an empty store,
    /// creates one organization and its first admin key, written to ``adminKeyPath`` (mode 0600).
    ///
    /// - Throws: ``StoreError`` from opening, `CallgateError` for a bad name or time zone, or
    ///   `DataDirectoryError` when the directory or key file cannot be written.
    public func open(
        durability: StoreConfiguration.Durability,
        synchronous: StoreConfiguration.Synchronous,
        organizationName: String,
        timeZone: String,
        clock: any EngineClock = SystemClock(),
        tune: (inout StoreConfiguration) -> Void = { _ in }
    ) async throws -> (store: Store, firstStart: FirstStart?) {
        if !FileManager.default.fileExists(atPath: self.path) {
            do {
                try FileManager.default.createDirectory(
                    atPath: self.path,
                    withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o700]
                )
            } catch {
                throw DataDirectoryError(
                    message: "cannot create data directory \(self.path): \(error.localizedDescription)"
                )
            }
        }
        var configuration = StoreConfiguration(
            path: self.databasePath,
            durability: durability,
            synchronous: synchronous
        )
        tune(&configuration)
        let store = try Store.open(configuration, clock: clock)
        do {
            // A start that stopped between creating the organization and writing its key is completed.
            var org = store.engine.allOrganizations.first
            if org == nil {
                org = try store.engine.createOrganization(name: organizationName, timeZone: timeZone, actor: .system)
                try await store.writer.flush()
            }
            // No valid key at all (first start, a start that failed to write the key file, or every key
            // revoked): a new admin key is written, so the owner of the data directory is never locked out.
            guard let org, store.keys.list(organization: org.id, includeRevoked: false).isEmpty else {
                return (store, nil)
            }
            // No valid key exists, so a key file left behind is stale.
            unlink(self.adminKeyPath)
            let (record, secret) = try store.keys.create(
                organization: org.id,
                role: .admin,
                agent: nil,
                label: "first admin key",
                actor: .system,
                now: store.engine.clock.now()
            )
            do {
                try Self.writeSecret(secret + "\n", to: self.adminKeyPath)
            } catch {
                // Nobody can ever learn this key's secret: revoke it so the next start makes another.
                _ = try? store.keys.revoke(
                    id: record.id,
                    organization: org.id,
                    actor: .system,
                    now: store.engine.clock.now()
                )
                throw error
            }
            return (
                store,
                FirstStart(organizationName: org.name, timeZone: org.record.timeZone, adminKeyPath: self.adminKeyPath)
            )
        } catch {
            store.close()
            throw error
        }
    }

    /// Writes a new file readable and writable by its owner only; refuses to overwrite one.
    static func writeSecret(_ text: String, to path: String) throws(DataDirectoryError) {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw DataDirectoryError(message: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            throw DataDirectoryError(message: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}

/// The data directory or the key file could not be created.
public struct DataDirectoryError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { self.message }
}
