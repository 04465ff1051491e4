import Foundation
import Testing

@testable import CallgateFuzz

/// Replays the fuzz targets' seed corpora and every input that once crashed one (kept under
/// `Regressions/<target>/`, named after what they found) through the same code libFuzzer runs. A
/// target's checks are preconditions: a regression crashes this test process.
@Suite struct FuzzRegressionTests {
    static let regressions = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Regressions")

    static func inputs(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        let directory = Self.regressions.appendingPathComponent(target)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter {
            $0 != "README.md" && !$0.hasPrefix(".")
        }
        return try names.sorted().map { name in
            (name, Array(try Data(contentsOf: directory.appendingPathComponent(name))))
        }
    }

    @Test func wireSeedsAndRegressions() throws {
        let fuzzer = try WireFuzzer()
        defer { fuzzer.close() }
        let seeds = FuzzSeeds.wire()
        #expect(seeds.count > 20)
        for seed in seeds { seed.withUnsafeBytes { fuzzer.run($0) } }
        for (_, bytes) in try Self.inputs("wire") { bytes.withUnsafeBytes { fuzzer.run($0) } }
    }

    @Test func importSeedsAndRegressions() throws {
        let fuzzer = try ImportFuzzer()
        for seed in FuzzSeeds.imports() { seed.withUnsafeBytes { fuzzer.run($0) } }
        for (_, bytes) in try Self.inputs("import") { bytes.withUnsafeBytes { fuzzer.run($0) } }
    }

    /// The seeds are what they claim: every wire seed's frames decode to requests the server answers
    /// without a protocol error, so libFuzzer starts from inputs that reach the dispatcher.
    @Test func wireSeedsReachTheDispatcher() throws {
        for seed in FuzzSeeds.wire() {
            var rest = seed.dropFirst()
            var frames = 0
            while rest.count >= 4 {
                let length = rest.prefix(4).reduce(0) { $0 << 8 | Int($1) }
                #expect(rest.count >= 4 + length)
                rest = rest.dropFirst(4 + length)
                frames += 1
            }
            #expect(rest.isEmpty)
            #expect(frames >= 1)
        }
    }

    /// The leak check itself works: a reply carrying the other organization's marker is seen.
    @Test func markerSearchFindsTheMarker() {
        let text = Array("xx\(WireFuzzer.otherMarker)-alice".utf8)
        #expect(text.withUnsafeBytes { WireFuzzer.contains($0, WireFuzzer.otherMarker) })
        #expect(!Array("zq-othe".utf8).withUnsafeBytes { WireFuzzer.contains($0, WireFuzzer.otherMarker) })
    }
}
