// swift-tools-version: 6.1
// The targets follow the parts of ARCHITECTURE.md, top to bottom: a target may
// depend only on targets in the layers below its own.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let nio: [Target.Dependency] = [
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
    .product(name: "NIOHTTP1", package: "swift-nio"),
]
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")

let package = Package(
    name: "slipway",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "slipway", targets: ["slipway"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio-ssh.git", from: "0.15.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
    ],
    targets: [
        // MARK: Entry

        /** The `slipway` executable: hands the command line to `SlipwayCommands`. */
        .executableTarget(
            name: "slipway",
            dependencies: ["SlipwayCommands"],
            swiftSettings: swiftSettings
        ),
        /** Argument parsing: `serve` starts the daemon, every admin command is sent to it. */
        .target(
            name: "SlipwayCommands",
            dependencies: [
                "SlipwayDaemon", "SlipwayFrontDoor", "SlipwayProxy", "SlipwaySupervisor", "SlipwayTLS", "SlipwayBasics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        /** Composition root: builds every service and runs them in one ServiceGroup. */
        .target(
            name: "SlipwayDaemon",
            dependencies: [
                "SlipwayFrontDoor", "SlipwayDeployer", "SlipwayProxy", "SlipwaySupervisor", "SlipwayStore",
                "SlipwaySandbox", "SlipwayTLS", "SlipwayBasics", logging,
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ] + nio,
            swiftSettings: swiftSettings
        ),

        // MARK: Front door

        /** The ways in (control socket, embedded SSH server, OpenSSH forced command), who may do what, and
            the one command dispatcher they share. */
        .target(
            name: "SlipwayFrontDoor",
            dependencies: [
                "SlipwayDeployer", "SlipwaySupervisor", "SlipwayProxy", "SlipwayTLS", "SlipwayStore", "SlipwayGit",
                "SlipwayBasics", logging,
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
                .product(name: "Crypto", package: "swift-crypto"),
            ] + nio,
            swiftSettings: swiftSettings
        ),

        // MARK: Deploys

        /** The deploy state machine, per-app deploy locks, and the events each step records. */
        .target(
            name: "SlipwayDeployer",
            dependencies: [
                "SlipwayBuilder", "SlipwaySupervisor", "SlipwayProxy", "SlipwayTLS", "SlipwayStore", "SlipwayBasics",
                logging,
            ],
            swiftSettings: swiftSettings
        ),
        /** Checkout into a release tree, buildpack detect/compile/release, Procfile and app.json. */
        .target(
            name: "SlipwayBuilder",
            dependencies: ["SlipwayGit", "SlipwayBasics", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        /** Spawning, watching, restarting and stopping app instances; their ports and log files. */
        .target(
            name: "SlipwaySupervisor",
            dependencies: ["SlipwayBasics", logging],
            swiftSettings: swiftSettings
        ),
        /** The HTTP proxy: Host routing, upstream sets and the atomic switch, drain, health checks, version endpoint. */
        .target(
            name: "SlipwayProxy",
            dependencies: [
                "SlipwayBasics", "SlipwayTLS", "CSlipwayMemory", logging,
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ] + nio,
            swiftSettings: swiftSettings
        ),
        /** TLS certificates: reading and checking a given chain and key, keeping them, choosing one per host (SNI),
            and getting them from an ACME CA (RFC 8555). */
        .target(
            name: "SlipwayTLS",
            dependencies: [
                "SlipwayBasics", "CSlipwayRSA", logging,
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),

        /** The sandbox an app's code runs in (bubblewrap), behind the Launcher seam. */
        .target(
            name: "SlipwaySandbox",
            dependencies: ["SlipwayBasics"],
            swiftSettings: swiftSettings
        ),

        // MARK: Storage

        /** The SQLite store: schema, migrations, and every SQL statement. */
        .target(
            name: "SlipwayStore",
            dependencies: ["SlipwayBasics", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        /** The Swift face of libgit2: bare repositories, commits, checkouts. */
        .target(
            name: "SlipwayGit",
            dependencies: ["CLibGit2", "SlipwayBasics"],
            swiftSettings: swiftSettings
        ),
        /** libgit2 as a system library. */
        .systemLibrary(
            name: "CLibGit2",
            pkgConfig: "libgit2",
            providers: [.apt(["libgit2-dev"])]
        ),

        // MARK: Basics

        /** Identifiers, paths, the user-facing error protocol and the one Spawner of child processes. */
        .target(
            name: "SlipwayBasics",
            dependencies: ["CSlipwaySpawn"],
            swiftSettings: swiftSettings
        ),
        /** posix_spawn with the GNU-only flags (own session, chdir) that Swift's Glibc does not export. */
        .target(name: "CSlipwaySpawn"),
        /** malloc_trim, which Swift's Glibc does not export: memory a flood of connections held goes back. */
        .target(name: "CSlipwayMemory"),
        /** RSA signatures by the system's OpenSSL (libcrypto 3), faster than swift-nio-ssl's BoringSSL on CPUs with
            AVX-512 IFMA: the cost of a full TLS handshake with an RSA certificate. */
        .target(name: "CSlipwayRSA", linkerSettings: [.linkedLibrary("crypto")]),

        // MARK: Tests

        .target(
            name: "SlipwayTestSupport",
            dependencies: ["SlipwayBasics"],
            path: "Tests/SlipwayTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SlipwayBasicsTests",
            dependencies: ["SlipwayBasics", "SlipwayTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SlipwayGitTests",
            dependencies: ["SlipwayGit", "SlipwayBasics", "SlipwayTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SlipwayStoreTests",
            dependencies: ["SlipwayStore", "SlipwayTestSupport", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SlipwayProxyTests",
            dependencies: [
                "SlipwayProxy", "SlipwayBasics", "SlipwayTestSupport", logging,
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ] + nio,
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SlipwayTLSTests",
            dependencies: [
                "SlipwayTLS", "SlipwayTestSupport", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SlipwayDeployerTests",
            dependencies: [
                "SlipwayDeployer", "SlipwayStore", "SlipwaySupervisor", "SlipwayProxy", "SlipwayBasics",
                "SlipwayTestSupport", logging,
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SlipwayDaemonTests",
            dependencies: ["SlipwayDaemon", "SlipwayTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SlipwayFrontDoorTests",
            dependencies: [
                "SlipwayFrontDoor", "SlipwayBasics", "SlipwayTestSupport", logging,
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SlipwaySupervisorTests",
            dependencies: ["SlipwaySupervisor", "SlipwayTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SlipwaySandboxTests",
            dependencies: ["SlipwaySandbox", "SlipwayBasics", "SlipwayTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SlipwayBuilderTests",
            dependencies: ["SlipwayBuilder", "SlipwayTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["SlipwayBasics", "SlipwayTestSupport"],
            swiftSettings: swiftSettings
        ),
    ]
)
