// Pebble, Let's Encrypt's ACME test server, with pebble-challtestsrv as its DNS server (every name is 127.0.0.1),
// started on loopback for a test and stopped by it. Pebble checks HTTP-01 challenges on `httpPort` (the daemon's
// HTTP listener) and TLS-ALPN-01 ones on `tlsPort` (its HTTPS listener). Its roots change at every start; `rootPath` is the one it issues under, for a TLS client to trust.
import Foundation
import SlipwayBasics

public struct Pebble: Sendable {
    public let folder: String
    public let port: Int
    public let managementPort: Int
    public let dnsPort: Int
    public let dnsManagementPort: Int
    /// Trusts Pebble's own HTTPS (the directory): the daemon's `--acme-ca-bundle`.
    public let ca: TestCA
    let processes: [ChildProcess]

    public var directory: String { "https://localhost:\(port)/dir" }
    /// The root of the certificates Pebble issues, fetched after it started.
    public var rootPath: String { folder + "/issuing-root.pem" }

    /// The ports and CA Pebble will use, before it starts (the daemon's flags name them).
    public struct Plan: Sendable {
        public let folder: String
        public let port = freePort()
        public let ca: TestCA

        public var directory: String { "https://localhost:\(port)/dir" }

        public init(in folder: String) async throws {
            self.folder = folder
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            ca = try await TestCA(in: folder + "/ca")
        }
    }

    /// Starts Pebble as planned, checking HTTP-01 challenges on `httpPort` and TLS-ALPN-01 ones on `tlsPort`,
    /// issuing certificates valid for `validity` seconds.
    public init(_ plan: Plan, httpPort: Int, tlsPort: Int = freePort(), validity: Int) async throws {
        folder = plan.folder
        port = plan.port
        ca = plan.ca
        managementPort = freePort()
        dnsPort = freePort()
        dnsManagementPort = freePort()
        let own = try await ca.leaf("pebble", names: ["localhost"])
        let config = """
            {"pebble": {"listenAddress": "127.0.0.1:\(port)", "managementListenAddress": "127.0.0.1:\(managementPort)",
            "certificate": "\(own.fullChain)", "privateKey": "\(own.key)", "httpPort": \(httpPort),
            "tlsPort": \(tlsPort), "ocspResponderURL": "", "externalAccountBindingRequired": false,
            "certificateValidityPeriod": \(validity)}}
            """
        try config.write(toFile: folder + "/pebble.json", atomically: true, encoding: .utf8)
        var environment = toolEnvironment
        environment["PEBBLE_VA_NOSLEEP"] = "1"
        let dns = try Spawner.start(
            Command(
                "/usr/bin/pebble-challtestsrv",
                [
                    "-dns01", "127.0.0.1:\(dnsPort)", "-http01", "", "-https01", "", "-tlsalpn01", "",
                    "-management", "127.0.0.1:\(dnsManagementPort)", "-defaultIPv6", "",
                ],
                environment: environment
            ),
            logFile: folder + "/challtestsrv.log"
        )
        let pebble = try Spawner.start(
            Command(
                "/usr/bin/pebble",
                ["-config", folder + "/pebble.json", "-dnsserver", "127.0.0.1:\(dnsPort)"],
                environment: environment
            ),
            logFile: folder + "/pebble.log"
        )
        processes = [dns, pebble]
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let root = try await run(
                "curl",
                ["-sSf", "--cacert", ca.rootPath, "-o", rootPath, "https://localhost:\(managementPort)/roots/0"]
            )
            if root.status.succeeded { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        await stop()
        throw PebbleError.notReady(log: (try? String(contentsOfFile: folder + "/pebble.log", encoding: .utf8)) ?? "")
    }

    /// Makes the DNS server answer `host` with `address` instead of 127.0.0.1.
    public func point(_ host: String, at address: String) async throws {
        let set = try await run(
            "curl",
            [
                "-sSf", "-X", "POST", "-d", #"{"host":"\#(host)","addresses":["\#(address)"]}"#,
                "http://127.0.0.1:\(dnsManagementPort)/add-a",
            ]
        )
        guard set.status.succeeded else { throw PebbleError.notReady(log: set.output) }
    }

    public func stop() async {
        for process in processes { _ = await process.stop(grace: .seconds(5)) }
    }
}

public enum PebbleError: Error {
    case notReady(log: String)
}
