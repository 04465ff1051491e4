#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value guarded by a `pthread_mutex_t`, in the shape of NIO's `NIOLockedValueBox`: a struct over one
/// heap object that holds the value and the mutex side by side (one allocation, one cache miss).
///
/// We use this rather than `Synchronization.Mutex` because on Linux `Mutex` locks through futex calls
/// that ThreadSanitizer cannot see: TSan then reports races on correctly locked code, and CI runs the
/// concurrency tests under TSan. An uncontended lock/unlock costs the same (one atomic each way).
public struct Locked<Value>: @unchecked Sendable {
    // @unchecked: the value is read and written only between pthread_mutex_lock and _unlock.
    let storage: LockedStorage<Value>

    public init(_ value: Value) {
        self.storage = LockedStorage.make(value)
    }

    /// Runs `body` with exclusive access to the value. Never `await` or block inside.
    public func withLock<Result, Failure: Error>(
        _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try self.storage.withLock(body)
    }

    /// Runs `body` with exclusive access if no other thread holds the lock now; else returns `nil` at
    /// once without waiting.
    public func withLockIfAvailable<Result, Failure: Error>(
        _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        try self.storage.withLockIfAvailable(body)
    }
}

/// The heap object behind ``Locked``: the value in the header, the mutex as the single tail element.
final class LockedStorage<Value>: ManagedBuffer<Value, pthread_mutex_t> {
    static func make(_ value: Value) -> LockedStorage {
        let buffer = Self.create(minimumCapacity: 1) { _ in value }
        let storage = unsafeDowncast(buffer, to: LockedStorage.self)
        storage.withUnsafeMutablePointerToElements(PthreadMutex.initialize)
        return storage
    }

    deinit { self.withUnsafeMutablePointerToElements(PthreadMutex.destroy) }

    // Pointer access: no dynamic exclusivity check (the mutex is what makes access exclusive).
    func withLock<Result, Failure: Error>(
        _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try self.withUnsafeMutablePointers { (value, mutex) throws(Failure) -> Result in
            try PthreadMutex.withLocked(mutex) { () throws(Failure) -> Result in try body(&value.pointee) }
        }
    }

    func withLockIfAvailable<Result, Failure: Error>(
        _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result? {
        try self.withUnsafeMutablePointers { (value, mutex) throws(Failure) -> Result? in
            guard pthread_mutex_trylock(mutex) == 0 else { return nil }
            defer { pthread_mutex_unlock(mutex) }
            return try body(&value.pointee)
        }
    }
}

/// A `pthread_mutex_t` living in memory someone else owns (the tail of a ManagedBuffer).
enum PthreadMutex {
    static func initialize(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) {
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    static func destroy(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
    }

    @inline(__always)
    static func withLocked<Result, Failure: Error>(
        _ mutex: UnsafeMutablePointer<pthread_mutex_t>,
        _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
