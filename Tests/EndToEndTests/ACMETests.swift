// Automatic certificates from a real ACME server on loopback (Pebble, with its DNS server answering 127.0.0.1): the
// daemon asks for every app host without a command, answers the HTTP-01 challenges on its HTTP listener, renews
// when two thirds of a (short) lifetime have passed without a failed request, keeps account and certificate across
// a restart, and shows each attempt; a name the CA cannot check fails in one line while the working certificate
// keeps being served. The TLS clients trust only Pebble's issuing root.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct ACMETests {
    @Test func everyHostGetsACertificateRenewedUnderLoadAndKeptAcrossARestart() async throws {
        try await withPebble(validity: 60) { daemon, pebble, arguments, work in
            try await checkCertificates(daemon, pebble, arguments: arguments, work: work)
        }
    }

    /// A host whose port 80 the CA cannot reach (Pebble's HTTP-01 port has no listener) is proved on the HTTPS
    /// listener: the CA's handshake offering only `acme-tls/1` gets the challenge's certificate (ServedCertificatesTests
    /// checks that a visitor's gets the app's meanwhile), and once it is withdrawn such a handshake gets nothing.
    @Test func withTLSALPN01AHostIsProvedOnTheHTTPSListenerAlone() async throws {
        try await withPebble(["--acme-challenge", "tls-alpn-01"], checkingOnHTTPS: true) { daemon, pebble, _, work in
            try await daemon.cli(["apps:create", "shop"])
            try await commitFixture("node-hello", into: work + "/shop", message: "v2")
            #expect(try await daemon.push(work + "/shop", app: "shop").output.contains("shop v2 is live"))
            try await daemon.cli(["domains:add", "shop", "www.shop.example"])
            try await waitUntil("www.shop.example has a certificate", timeout: .seconds(60)) {
                try await daemon.cli(["certs", "shop"]).output.contains("Covers:   www.shop.example")
            }
            let page = try await run(
                "curl",
                [
                    "-sS", "--max-time", "10", "--cacert", pebble.rootPath, "--resolve",
                    "www.shop.example:\(daemon.httpsPort):127.0.0.1", "https://www.shop.example:\(daemon.httpsPort)/",
                ]
            )
            #expect(page.output.hasPrefix("hello from shop release v2"), "\(page.output)")
            // No challenge is open now: a client offering only acme-tls/1 gets no handshake.
            let probe = try await run(
                "bash",
                [
                    "-c",
                    "timeout 10 openssl s_client -alpn acme-tls/1 -connect 127.0.0.1:\(daemon.httpsPort) "
                        + "-servername www.shop.example </dev/null",
                ]
            )
            #expect(!probe.output.contains("BEGIN CERTIFICATE") && !probe.output.contains("Server certificate"))
        }
    }

    /// A daemon with an ACME account at a Pebble started for it (checking HTTP-01 on the daemon's HTTP listener, or
    /// with `checkingOnHTTPS` TLS-ALPN-01 on its HTTPS listener, the HTTP-01 port then answering nothing), and
    /// `extra` flags; Pebble is stopped after `body`, whatever it threw. `body` gets the daemon's ACME flags.
    private func withPebble(
        _ extra: [String] = [],
        checkingOnHTTPS: Bool = false,
        validity: Int = 3600,
        _ body: (DaemonHarness, Pebble, [String], String) async throws -> Void
    ) async throws {
        let scratch = try TemporaryDirectory("acme")
        defer { scratch.remove() }
        let plan = try await Pebble.Plan(in: scratch.path + "/pebble")
        try ServiceUser.current.own(scratch.path)
        let arguments =
            [
                "--acme-email", "ops@example.com", "--acme-directory", plan.directory, "--acme-ca-bundle",
                plan.ca.rootPath,
            ]
            + extra
        try await DaemonHarness.with(arguments: arguments) { daemon, work in
            let pebble = try await Pebble(
                plan,
                httpPort: checkingOnHTTPS ? freePort() : daemon.port,
                tlsPort: checkingOnHTTPS ? daemon.httpsPort : freePort(),
                validity: validity
            )
            do {
                try await body(daemon, pebble, arguments, work)
            } catch {
                await pebble.stop()
                throw error
            }
            await pebble.stop()
        }
    }

    private func checkCertificates(
        _ daemon: DaemonHarness,
        _ pebble: Pebble,
        arguments: [String],
        work: String
    ) async throws {
        func curl(
            _ host: String,
            _ extra: [String] = []
        ) async throws -> (status: SlipwayBasics.ExitStatus, output: String) {
            try await run(
                "curl",
                [
                    "-sS", "--max-time", "10", "--cacert", pebble.rootPath,
                    "--resolve", "\(host):\(daemon.httpsPort):127.0.0.1", "https://\(host):\(daemon.httpsPort)/",
                ] + extra
            )
        }
        /// The serial number of the certificate served for `host` now, from a new handshake.
        func serial(_ host: String) async throws -> String {
            try await run(
                "bash",
                [
                    "-c",
                    "openssl s_client -connect 127.0.0.1:\(daemon.httpsPort) -servername \(host) </dev/null "
                        + "2>/dev/null | openssl x509 -noout -serial",
                ]
            ).output
        }
        func certs(_ daemon: DaemonHarness) async throws -> String { try await daemon.cli(["certs", "shop"]).output }
        func covered(_ daemon: DaemonHarness) async throws -> Set<String> {
            let line = try await certs(daemon).split(separator: "\n").first { $0.hasPrefix("Covers:") } ?? ""
            return Set(
                line.dropFirst("Covers:".count).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            )
        }

        try await daemon.cli(["apps:create", "shop"])
        #expect(try await certs(daemon).contains("it is asked for from the ACME CA"))
        try await commitFixture("node-hello", into: work + "/shop", message: "v2")
        #expect(try await daemon.push(work + "/shop", app: "shop").output.contains("shop v2 is live"))

        // A new domain gets a certificate without a command: the CA checked it over the HTTP listener.
        try await daemon.cli(["domains:add", "shop", "www.shop.example"])
        try await waitUntil("www.shop.example has a certificate", timeout: .seconds(60)) {
            try await covered(daemon) == ["www.shop.example"]
        }
        let shown = try await certs(daemon)
        #expect(shown.contains("Source:   ACME (renewed automatically)"), "\(shown)")
        #expect(shown.contains("Issuer:   ") && shown.contains("Pebble"), "\(shown)")
        #expect(shown.contains("Not covered (no HTTPS): shop.localhost"), "a name no public CA issues for: \(shown)")
        #expect(shown.contains("issued  www.shop.example: issued by"), "\(shown)")
        #expect(try await curl("www.shop.example").output.hasPrefix("hello from shop release v2"))

        // Another domain: the certificate is issued again for both.
        try await daemon.cli(["domains:add", "shop", "api.shop.example"])
        try await waitUntil("the certificate covers api.shop.example too", timeout: .seconds(60)) {
            try await covered(daemon) == ["www.shop.example", "api.shop.example"]
        }
        #expect(try await curl("api.shop.example").output.hasPrefix("hello from shop release v2"))

        // Renewal two thirds through a 60 s lifetime, while one keep-alive connection and new ones send requests.
        let first = try await serial("www.shop.example")
        #expect(first.hasPrefix("serial="), "\(first)")
        let keptAlive = try Spawner.start(
            Command(
                "curl",
                ["-sS", "--cacert", pebble.rootPath, "--resolve", "www.shop.example:\(daemon.httpsPort):127.0.0.1"]
                    + ["--rate", "2/s", "-w", "%{http_code} %{num_connects}\\n"]
                    + Array(repeating: ["-o", "/dev/null", "https://www.shop.example:\(daemon.httpsPort)/"], count: 40)
                    .flatMap { $0 },
                environment: toolEnvironment
            ),
            logFile: work + "/kept-alive.log"
        )
        var failed: [String] = []
        var renewed = first
        let deadline = ContinuousClock.now + .seconds(70)
        while renewed == first, ContinuousClock.now < deadline {
            let answer = try await curl("www.shop.example", ["-o", "/dev/null", "-w", "%{http_code}"])
            if answer.output != "200" { failed.append(answer.output) }
            renewed = try await serial("www.shop.example")
        }
        #expect(renewed != first && renewed.hasPrefix("serial="), "renewed: \(first) then \(renewed)")
        #expect(failed.isEmpty, "requests failed across the renewal: \(failed)")
        _ = await keptAlive.waitForExit()
        let codes = try String(contentsOfFile: work + "/kept-alive.log", encoding: .utf8)
            .split(separator: "\n").map { $0.split(separator: " ") }
        #expect(codes.count == 40 && codes.allSatisfy { $0.first == "200" }, "\(codes)")
        #expect(codes.dropFirst().allSatisfy { $0.last == "0" }, "one connection, never dropped: \(codes)")
        #expect(try await certs(daemon).components(separatedBy: "  issued  ").count >= 4, "three issued, listed")

        // Kept across a restart: served from disk at once, the same certificate and the same account.
        let accountKeys = daemon.data + "/acme"
        let account = try FileManager.default.contentsOfDirectory(atPath: accountKeys)
        #expect(account.count == 1, "one account key for the one CA: \(account)")
        let key = try String(contentsOfFile: accountKeys + "/" + account[0], encoding: .utf8)
        await daemon.stop(leavingApps: true)
        let restarted = try await DaemonHarness(arguments: arguments, restartingIn: daemon)
        #expect(try await serial("www.shop.example") == renewed)
        #expect(try await curl("www.shop.example").output.hasPrefix("hello from shop release v2"))
        #expect(try String(contentsOfFile: accountKeys + "/" + account[0], encoding: .utf8) == key)

        // A name whose DNS points elsewhere fails, said in one line, and is left out: the others keep their
        // certificate, issued again without it.
        try await pebble.point("bad.shop.example", at: "127.0.0.2")
        try await restarted.cli(["domains:add", "shop", "bad.shop.example"])
        try await waitUntil("the failed attempt is shown", timeout: .seconds(60)) {
            try await certs(restarted).contains("the ACME server could not check that this server answers for bad")
        }
        try await waitUntil("the certificate is issued again without the bad name", timeout: .seconds(60)) {
            let lines = try await certs(restarted).split(separator: "\n")
            guard let failure = lines.firstIndex(where: { $0.contains("failed") }) else { return false }
            return lines[..<failure].contains { $0.contains("  issued  ") && !$0.contains("bad.shop.example") }
        }
        let after = try await certs(restarted)
        #expect(try await covered(restarted) == ["www.shop.example", "api.shop.example"], "\(after)")
        #expect(
            after.split(separator: "\n").contains { $0.hasPrefix("Not covered") && $0.contains("bad.shop.example") },
            "\(after)"
        )
        #expect(try await curl("www.shop.example").output.hasPrefix("hello from shop release v2"))
        let log = try String(contentsOfFile: restarted.log, encoding: .utf8)
        #expect(log.contains("could not check that this server answers for bad.shop.example"))
    }
}
