#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The memory of one protobuf-c message being built for packing: every struct, array and string
/// the message points to is allocated here and freed together when the arena goes away.
///
/// protobuf-c packs from C structs that hold raw pointers; Swift strings and arrays cannot be pointed
/// at beyond a closure's scope, so ``Wire/Request/c(in:)`` and its siblings copy into an arena first.
public final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    public init() {}

    deinit {
        for pointer in self.allocations { free(pointer) }
    }

    /// Uninitialised memory for one `T` (the generated code calls the type's protobuf-c `__init`).
    public func allocate<T>(_ type: T.Type) -> UnsafeMutablePointer<T> {
        let raw = self.raw(MemoryLayout<T>.stride)
        return raw.bindMemory(to: T.self, capacity: 1)
    }

    /// A NUL-terminated copy of `string` (protobuf-c skips empty strings, so those share one constant).
    public func string(_ string: String) -> UnsafeMutablePointer<CChar> {
        if string.isEmpty { return CArena.emptyString }
        var string = string
        return string.withUTF8 { utf8 in
            let raw = self.raw(utf8.count + 1)
            raw.copyMemory(from: utf8.baseAddress!, byteCount: utf8.count)
            raw.storeBytes(of: 0, toByteOffset: utf8.count, as: CChar.self)
            return raw.bindMemory(to: CChar.self, capacity: utf8.count + 1)
        }
    }

    /// A C array of strings: protobuf-c's `n_field, field` pair.
    public func strings(_ strings: [String]) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) {
        guard !strings.isEmpty else { return (0, nil) }
        let array = self.raw(MemoryLayout<UnsafeMutablePointer<CChar>?>.stride * strings.count)
            .bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: strings.count)
        for (index, string) in strings.enumerated() { array[index] = self.string(string) }
        return (strings.count, array)
    }

    /// A C array of message pointers: protobuf-c's `n_field, field` pair.
    public func messages<Message, C>(
        _ messages: [Message],
        _ build: (Message) -> UnsafeMutablePointer<C>
    ) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<C>?>?) {
        guard !messages.isEmpty else { return (0, nil) }
        let array = self.raw(MemoryLayout<UnsafeMutablePointer<C>?>.stride * messages.count)
            .bindMemory(to: UnsafeMutablePointer<C>?.self, capacity: messages.count)
        for (index, message) in messages.enumerated() { array[index] = build(message) }
        return (messages.count, array)
    }

    /// Reads a C string protobuf-c unpacked (`NULL` reads as empty).
    @inlinable
    public static func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
        guard let pointer else { return "" }
        return String(cString: pointer)
    }

    /// Reads a repeated string field protobuf-c unpacked.
    public static func strings(_ count: Int, _ array: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> [String] {
        guard let array, count > 0 else { return [] }
        return (0..<count).map { CArena.string(array[$0]) }
    }

    /// Reads a repeated message field protobuf-c unpacked (a `NULL` element is skipped).
    public static func messages<Message, C>(
        _ count: Int,
        _ array: UnsafeMutablePointer<UnsafeMutablePointer<C>?>?,
        _ read: (UnsafePointer<C>) -> Message
    ) -> [Message] {
        guard let array, count > 0 else { return [] }
        var result: [Message] = []
        result.reserveCapacity(count)
        for index in 0..<count {
            if let element = array[index] { result.append(read(element)) }
        }
        return result
    }

    private func raw(_ byteCount: Int) -> UnsafeMutableRawPointer {
        guard let pointer = malloc(max(byteCount, 1)) else { fatalError("out of memory") }
        self.allocations.append(pointer)
        return pointer
    }

    /// protobuf-c treats a string field pointing at an empty string as absent; it never writes to it.
    nonisolated(unsafe) private static let emptyString: UnsafeMutablePointer<CChar> = {
        let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: 1)
        pointer.initialize(to: 0)
        return pointer
    }()
}
