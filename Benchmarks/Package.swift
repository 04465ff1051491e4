// swift-tools-version:6.1
import PackageDescription

// Benchmarks live in their own package (as in swift-nio, swift-prometheus and postgres-nio) so that
// package-benchmark and its malloc interposer stay out of the main dependency graph.
//
// Run from this directory:
//   swift package --allow-writing-to-package-directory benchmark
// Check the checked-in malloc thresholds (Thresholds/<target>.<benchmark name>.p90.json; 1.38.1 reads
// the name as written, spaces included, although `thresholds update` writes it with underscores):
//   swift package benchmark thresholds check
let package = Package(
    name: "callgate-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../"),
        // Only for the products the suites name directly (ByteBuffer, Logger, ServiceGroup); the same
        // ranges as the root package, so both resolve to the same versions.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // 1.38.1 needs the MallocInterposer trait spelled out: the default traits want a package
        // that is not available here.
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // Test data shared by the suites (agent ids, numbers, visiting orders).
        .target(
            name: "BenchmarkSupport",
            dependencies: [.product(name: "CallgateCore", package: "main")],
            path: "Benchmarks/BenchmarkSupport",
            swiftSettings: [.swiftLanguageMode(.v6), .enableUpcomingFeature("InternalImportsByDefault")]
        ),
        .executableTarget(
            name: "AuthorizeCall",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "CallgateCore", package: "main"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/AuthorizeCall",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
        .executableTarget(
            name: "StoreWriter",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "CallgateCore", package: "main"),
                .product(name: "CallgateStore", package: "main"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/StoreWriter",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
        .executableTarget(
            name: "Inventory",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "CallgateCore", package: "main"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/Inventory",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
        .executableTarget(
            name: "WireCodec",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "CallgateCore", package: "main"),
                .product(name: "CallgateWire", package: "main"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/WireCodec",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
        .executableTarget(
            name: "Loopback",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "CallgateCore", package: "main"),
                .product(name: "CallgateStore", package: "main"),
                .product(name: "CallgateWire", package: "main"),
                .product(name: "CallgateServer", package: "main"),
                .product(name: "CallgateClient", package: "main"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/Loopback",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark")
            ]
        ),
    ]
)
