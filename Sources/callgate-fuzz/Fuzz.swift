// libFuzzer entry point. Built only with `CALLGATE_FUZZ=1 swift build --sanitize=fuzzer …` (see
// scripts/fuzz.sh): libFuzzer supplies `main`. `CALLGATE_FUZZ_TARGET` chooses the target: `wire` (frames,
// request decoding and dispatch) or `import` (the CSV importer and the number parser).
import CallgateFuzz
import Foundation

/// The chosen target, made on the first input (libFuzzer calls from one thread).
nonisolated(unsafe) private var target: ((UnsafeRawBufferPointer) -> Void)?

@_cdecl("LLVMFuzzerTestOneInput")
public func callgateFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    if target == nil { target = makeTarget() }
    target?(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

private func makeTarget() -> (UnsafeRawBufferPointer) -> Void {
    let name = ProcessInfo.processInfo.environment["CALLGATE_FUZZ_TARGET"] ?? "wire"
    do {
        switch name {
        case "wire":
            // A fresh organization and store every 2,000 inputs keeps the state (and memory) small.
            var fuzzer = try WireFuzzer()
            var runs = 0
            return { input in
                runs += 1
                if runs % 2_000 == 0, let fresh = try? WireFuzzer() {
                    fuzzer.close()
                    fuzzer = fresh
                }
                fuzzer.run(input)
            }
        case "import":
            let fuzzer = try ImportFuzzer()
            return { fuzzer.run($0) }
        default:
            fatalError("CALLGATE_FUZZ_TARGET must be wire or import, not '\(name)'")
        }
    } catch {
        fatalError("cannot set up the \(name) fuzz target: \(error)")
    }
}

/// Writes the seed corpus of `CALLGATE_FUZZ_TARGET` into the directory `CALLGATE_FUZZ_WRITE_SEEDS` names,
/// at start-up (libFuzzer calls this before reading the corpus).
@_cdecl("LLVMFuzzerInitialize")
public func callgateFuzzInitialize(
    _ argc: UnsafeMutablePointer<CInt>?,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?
) -> CInt {
    let environment = ProcessInfo.processInfo.environment
    guard let directory = environment["CALLGATE_FUZZ_WRITE_SEEDS"] else { return 0 }
    let seeds = environment["CALLGATE_FUZZ_TARGET"] == "import" ? FuzzSeeds.imports() : FuzzSeeds.wire()
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    for (i, seed) in seeds.enumerated() {
        FileManager.default.createFile(atPath: "\(directory)/seed-\(i)", contents: Data(seed))
    }
    return 0
}
