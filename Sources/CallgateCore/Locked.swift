#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value guarded by a `pthread_mutex_t` (the shape of NIO's `NIOLockedValueBox`).
///
/// We use this rather than `Synchronization.Mutex` because on Linux `Mutex` locks through futex calls
/// that ThreadSanitizer cannot see: TSan then reports races on correctly locked code, and CI runs the
/// concurrency tests under TSan. An uncontended lock/unlock costs the same (one atomic each way).
public final class Locked<Value>: @unchecked Sendable {
    // @unchecked: `value` is read and written only between pthread_mutex_lock and _unlock.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        self.mutex = .allocate(capacity: 1)
        self.mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(self.mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(self.mutex)
        self.mutex.deinitialize(count: 1)
        self.mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value. Never `await` or block inside.
    @inline(__always)
    public func withLock<Result, Failure: Error>(
        _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        pthread_mutex_lock(self.mutex)
        defer { pthread_mutex_unlock(self.mutex) }
        return try body(&self.value)
    }
}
