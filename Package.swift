// swift-tools-version:6.1
import PackageDescription

/// Settings applied to every target (hummingbird and postgres-nio keep one list like this).
let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    // https://github.com/swiftlang/swift-evolution/blob/main/proposals/0335-existential-any.md
    .enableUpcomingFeature("ExistentialAny"),
    // https://github.com/swiftlang/swift-evolution/blob/main/proposals/0444-member-import-visibility.md
    .enableUpcomingFeature("MemberImportVisibility"),
    // https://github.com/swiftlang/swift-evolution/blob/main/proposals/0409-access-level-on-imports.md
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "callgate",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CallgateCore", targets: ["CallgateCore"]),
        .library(name: "CallgateStore", targets: ["CallgateStore"]),
        .executable(name: "callgate-demo", targets: ["callgate-demo"]),
        .executable(name: "callgate-crashtest", targets: ["callgate-crashtest"]),
    ],
    targets: [
        // Pure: no NIO, no SQLite, no sockets. Every decision of the product lives here.
        .target(name: "CallgateCore"),
        // libsqlite3 from the system (apt: libsqlite3-dev), with a shim for what Swift cannot import.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // Write-through to SQLite: schema and migrations, the group-commit writer, loading, history.
        .target(name: "CallgateStore", dependencies: ["CallgateCore", "CSQLite"]),
        .executableTarget(name: "callgate-demo", dependencies: ["CallgateCore"]),
        // The crash test's child process (SIGKILLed by CallgateStoreTests) and a load-time probe.
        .executableTarget(name: "callgate-crashtest", dependencies: ["CallgateCore", "CallgateStore"]),
        .testTarget(
            name: "CallgateCoreTests",
            dependencies: ["CallgateCore"],
            exclude: ["Resources"]
        ),
        .testTarget(name: "CallgateStoreTests", dependencies: ["CallgateStore", "CallgateCore"]),
    ]
)

for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + swiftSettings
}
