// The HTTPS listener: each app's given certificate, chosen by the name the client asks for (SNI), checked by a real
// TLS client (curl) that trusts only the test's own CA; the app is told the request came over https.
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@Suite(.serialized) struct HTTPSTests {
    @Test func eachAppIsServedOverTLSWithItsOwnCertificateChosenBySNI() async throws {
        try await DaemonHarness.with { daemon, work in
            let ca = try await TestCA(in: work + "/ca")
            for app in ["shop", "blog"] {
                try await daemon.cli(["apps:create", app])
                try await commitFixture("node-hello", into: work + "/" + app, message: "v2")
                #expect(try await daemon.push(work + "/" + app, app: app).output.contains("\(app) v2 is live"))
            }
            func curl(
                _ host: String,
                _ path: String = "/",
                extra: [String] = []
            ) async throws -> (
                status: SlipwayBasics.ExitStatus, output: String
            ) {
                try await run(
                    "curl",
                    ["-sS", "--max-time", "10", "--cacert", ca.rootPath]
                        + extra
                        + [
                            "--resolve", "\(host):\(daemon.httpsPort):127.0.0.1",
                            "https://\(host):\(daemon.httpsPort)\(path)",
                        ]
                )
            }
            let before = try await curl("shop.localhost")
            #expect(!before.status.succeeded, "no certificate yet, no handshake: \(before.output)")

            let shop = try await ca.leaf("shop", names: ["shop.localhost"])
            let blog = try await ca.leaf("blog", names: ["blog.localhost", "www.blog.test"], key: .rsa)
            // certs:add names files on the server, which the daemon's user reads.
            try daemon.user.own(work + "/ca")
            let mismatched = try await daemon.cli(["certs:add", "shop", "--cert", shop.fullChain, "--key", blog.key])
            #expect(!mismatched.status.succeeded)
            #expect(mismatched.output.contains("slipway: the private key is not the key of the certificate"))
            let incomplete = try await daemon.cli(["certs:add", "shop", "--cert", shop.certificate, "--key", shop.key])
            #expect(incomplete.output.contains("the chain is incomplete"), "\(incomplete.output)")
            #expect(
                try await daemon.cli(["certs:add", "shop", "--cert", "fullchain.pem", "--key", shop.key]).output
                    .contains("give --cert and --key as absolute paths")
            )

            let added = try await daemon.cli(["certs:add", "shop", "--cert", shop.fullChain, "--key", shop.key])
            #expect(added.status.succeeded, "\(added.output)")
            #expect(added.output.contains("Covers:   shop.localhost"), "\(added.output)")
            // The key is the daemon's alone: 0600, in a 0700 folder.
            let kept = daemon.data + "/certs/shop"
            for (path, mode) in [(kept, 0o700), (kept + "/privkey.pem", 0o600), (kept + "/fullchain.pem", 0o600)] {
                let attributes = try FileManager.default.attributesOfItem(atPath: path)
                #expect((attributes[.posixPermissions] as? Int) == mode, "\(path)")
            }
            #expect(
                try await daemon.cli(["certs:add", "blog", "--cert", blog.fullChain, "--key", blog.key]).status
                    .succeeded
            )

            let page = try await curl("shop.localhost")
            #expect(page.output.hasPrefix("hello from shop release v2"), "\(page.output)")
            #expect(try await curl("blog.localhost").output.hasPrefix("hello from blog release v2"))
            // blog's RSA key signs with the system's OpenSSL: each way a client can ask it to, checked by OpenSSL's
            // own client, which verifies the signature (PSS in TLS 1.3, PKCS#1 in TLS 1.2, and a decryption for
            // TLS 1.2's RSA key exchange).
            for asked in [
                ["-tls1_3", "-sigalgs", "rsa_pss_rsae_sha384"], ["-tls1_2", "-sigalgs", "RSA+SHA256"],
                ["-tls1_2", "-sigalgs", "RSA+SHA512"], ["-tls1_2", "-cipher", "AES128-GCM-SHA256"],
            ] {
                let answer = try await run(
                    "bash",
                    [
                        "-c",
                        #"printf 'GET / HTTP/1.1\r\nHost: blog.localhost\r\nConnection: close\r\n\r\n' | "#
                            + "timeout 10 openssl s_client -quiet -verify_return_error \(asked.joined(separator: " "))"
                            + " -connect 127.0.0.1:\(daemon.httpsPort) -servername blog.localhost -CAfile \(ca.rootPath)",
                    ]
                ).output
                #expect(answer.contains("hello from blog release v2"), "\(asked): \(answer)")
            }
            let headers = try await curl("shop.localhost", "/headers").output
            #expect(headers.contains("\"x-forwarded-proto\":\"https\""), "\(headers)")
            #expect(headers.contains("\"x-forwarded-port\":\"\(daemon.httpsPort)\""), "\(headers)")
            #expect(!(try await curl("nobody.localhost").status.succeeded), "a host no certificate covers")
            // Plain HTTP goes on as before, and says http.
            let plain = try HTTPConnection(port: daemon.port).get("/headers", host: "shop.localhost").body
            #expect(plain.contains("\"x-forwarded-proto\":\"http\""))

            // A WebSocket over TLS: the upgrade and an echoed frame, through openssl's own TLS client.
            let socket = try await run(
                "bash",
                [
                    "-c",
                    #"(printf 'GET /ws HTTP/1.1\r\nHost: shop.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"#
                        + #"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"#
                        + #"\x81\x86\x00\x00\x00\x00hello!'; sleep 1) | timeout 10 openssl s_client -quiet -no_ign_eof "#
                        + "-connect 127.0.0.1:\(daemon.httpsPort) -servername shop.localhost -CAfile \(ca.rootPath)",
                ]
            ).output
            #expect(socket.contains("HTTP/1.1 101 Switching Protocols"), "\(socket)")
            #expect(socket.contains("hello!"), "the frame came back over TLS: \(socket)")

            // Maintenance mode and sticky sessions over TLS as over plain HTTP; the pin cookie is Secure there.
            let secure = ["-sS", "-o", "/dev/null", "-D", "-", "--cacert", ca.rootPath]
            #expect(try await daemon.cli(["maintenance:on", "shop"]).status.succeeded)
            #expect(try await curl("shop.localhost", "/", extra: secure).output.hasPrefix("HTTP/2 503"))
            #expect(try await daemon.cli(["maintenance:off", "shop"]).status.succeeded)
            #expect(try await daemon.cli(["proxy:sticky", "shop", "on"]).status.succeeded)
            let pinned = try await curl("shop.localhost", "/", extra: secure).output
            #expect(pinned.contains("; HttpOnly; SameSite=Lax; Secure"), "\(pinned)")
            let plainPin = try HTTPConnection(port: daemon.port).get("/", host: "shop.localhost")
            #expect(plainPin.headers["set-cookie"]?.hasSuffix("SameSite=Lax") == true, "\(plainPin.headers)")
            #expect(try await daemon.cli(["proxy:sticky", "shop", "off"]).status.succeeded)

            // proxy:https: plain HTTP is redirected (but ACME challenges), and `only` adds HSTS over HTTPS.
            #expect(try await daemon.cli(["proxy:https", "shop", "redirect"]).output.contains("redirects plain-HTTP"))
            let redirected = try HTTPConnection(port: daemon.port).get("/a?b=1", host: "shop.localhost")
            #expect(redirected.status == 308, "\(redirected)")
            #expect(redirected.headers["location"] == "https://shop.localhost:\(daemon.httpsPort)/a?b=1")
            let challenge = try HTTPConnection(port: daemon.port).get(
                "/.well-known/acme-challenge/t",
                host: "shop.localhost"
            )
            #expect(challenge.status != 308, "the ACME challenge path stays on plain HTTP")
            #expect(try HTTPConnection(port: daemon.port).get("/", host: "blog.localhost").status == 200, "only shop")
            #expect(try await daemon.cli(["proxy:https", "shop", "only", "--max-age", "600"]).status.succeeded)
            let hsts = try await run(
                "curl",
                [
                    "-sS", "-o", "/dev/null", "-D", "-", "--cacert", ca.rootPath, "--resolve",
                    "shop.localhost:\(daemon.httpsPort):127.0.0.1", "https://shop.localhost:\(daemon.httpsPort)/",
                ]
            ).output.lowercased()
            #expect(hsts.contains("strict-transport-security: max-age=600"), "\(hsts)")
            #expect(!(try await daemon.cli(["proxy:https", "shop", "off", "--max-age", "5"]).status.succeeded))
            #expect(try await daemon.cli(["proxy:https", "shop", "off"]).status.succeeded)
            #expect(try HTTPConnection(port: daemon.port).get("/", host: "shop.localhost").status == 200)

            let shown = try await daemon.cli(["certs", "shop"]).output
            #expect(shown.contains("Names:    shop.localhost") && shown.contains("Expires:  "), "\(shown)")

            // Kept across a restart; removed, no handshake for it any more.
            await daemon.stop(leavingApps: true)
            let restarted = try await DaemonHarness(restartingIn: daemon)
            try await waitUntil("shop answers over HTTPS after the restart") {
                try await curl("shop.localhost").output.hasPrefix("hello from shop release v2")
            }
            #expect(try await restarted.cli(["certs:remove", "shop"]).status.succeeded)
            #expect(!(try await curl("shop.localhost").status.succeeded))
            #expect(try await curl("blog.localhost").status.succeeded)
        }
    }
}
