// Specifications for `slipway serve-static`: files under the root, types by extension, nothing outside.
import Foundation
import NIOCore
import SlipwayTestSupport
import Testing

@testable import SlipwayProxy

@Suite("The static site server", .timeLimit(.minutes(1)))
struct StaticSiteTests {
    /// A site folder with a secret beside it (outside the root) and a symlink pointing at that secret.
    final class SiteFolder {
        let base: URL
        var root: String { base.appendingPathComponent("site").path }

        init() throws {
            base = FileManager.default.temporaryDirectory.appendingPathComponent("slipway-static-\(UUID().uuidString)")
            let site = base.appendingPathComponent("site")
            try FileManager.default.createDirectory(
                at: site.appendingPathComponent("docs"),
                withIntermediateDirectories: true
            )
            try "<h1>home</h1>".write(to: site.appendingPathComponent("index.html"), atomically: true, encoding: .utf8)
            try "body{}".write(to: site.appendingPathComponent("style.css"), atomically: true, encoding: .utf8)
            try "<p>docs</p>".write(
                to: site.appendingPathComponent("docs/index.html"),
                atomically: true,
                encoding: .utf8
            )
            try "secret".write(to: base.appendingPathComponent("secret.txt"), atomically: true, encoding: .utf8)
            try FileManager.default.createSymbolicLink(
                atPath: site.appendingPathComponent("leak.txt").path,
                withDestinationPath: base.appendingPathComponent("secret.txt").path
            )
        }

        deinit { try? FileManager.default.removeItem(at: base) }
    }

    private func withSite(_ body: (SiteFolder, TestClient) async throws -> Void) async throws {
        let folder = try SiteFolder()
        let listener = try await StaticSite.listen(
            root: folder.root,
            within: folder.base.path,
            host: "127.0.0.1",
            port: 0,
            logger: ProxyHarness.quietLogger,
            group: TestLoops.group
        )
        let client = try await TestClient.connect(port: listener.localAddress!.port!)
        do {
            try await body(folder, client)
        } catch {
            await client.close()
            try? await listener.close()
            throw error
        }
        await client.close()
        try? await listener.close()
    }

    @Test("/ serves index.html as HTML, and a folder serves its own index.html")
    func servesIndex() async throws {
        try await withSite { _, client in
            let home = try await client.get("/", host: "site.test")
            #expect(home.status == 200)
            #expect(home.body == "<h1>home</h1>")
            #expect(home.header("Content-Type") == "text/html; charset=utf-8")
            #expect(try await client.get("/docs/", host: "site.test").body == "<p>docs</p>")
        }
    }

    @Test("files get a Content-Type by extension")
    func contentTypes() async throws {
        try await withSite { _, client in
            let css = try await client.get("/style.css?v=2", host: "site.test")
            #expect(css.status == 200)
            #expect(css.body == "body{}")
            #expect(css.header("Content-Type") == "text/css; charset=utf-8")
        }
        #expect(StaticSite.contentType(forPath: "/a/app.JS") == "text/javascript; charset=utf-8")
        #expect(StaticSite.contentType(forPath: "/logo.svg") == "image/svg+xml")
        #expect(StaticSite.contentType(forPath: "/LICENSE") == "application/octet-stream")
    }

    @Test("a missing file gets 404")
    func missingFile() async throws {
        try await withSite { _, client in
            let missing = try await client.get("/nope.html", host: "site.test")
            #expect(missing.status == 404)
            #expect(missing.body == "Nothing is served at /nope.html.\n")
        }
    }

    @Test("paths that climb out of the root are refused, however they are spelled")
    func refusesEscapes() async throws {
        try await withSite { _, client in
            for path in ["/../secret.txt", "/docs/../../secret.txt", "/%2e%2e/secret.txt", "/leak.txt"] {
                let response = try await client.get(path, host: "site.test")
                #expect(response.status == 403, "\(path)")
                #expect(!response.body.contains("secret"), "\(path)")
            }
        }
    }

    @Test("serve returns once its task is cancelled, and its port is closed")
    func serveStopsOnCancel() async throws {
        let folder = try SiteFolder()
        let port = freePort()
        let serving = Task {
            try await StaticSite.serve(
                root: folder.root,
                within: folder.base.path,
                host: "127.0.0.1",
                port: port,
                logger: ProxyHarness.quietLogger
            )
        }
        var answered = false
        for _ in 0..<200 where !answered {
            if let client = try? await TestClient.connect(port: port) {
                await client.close()
                answered = true
            } else {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        #expect(answered, "it listened")
        serving.cancel()
        try await serving.value
        let after = try? await TestClient.connect(port: port)
        #expect(after == nil, "nothing listens any more")
        await after?.close()
    }

    @Test("a missing root folder is a clear error")
    func missingRoot() async throws {
        await #expect(throws: ProxyError.staticRootMissing(path: "/nonexistent/slipway-site")) {
            try await StaticSite.serve(
                root: "/nonexistent/slipway-site",
                within: "/nonexistent",
                host: "127.0.0.1",
                port: 0,
                logger: ProxyHarness.quietLogger
            )
        }
    }

    @Test("a root that leads out of the app through a symbolic link is refused before anything is served")
    func rootOutsideTheApp() async throws {
        let folder = try SiteFolder()
        let app = folder.base.appendingPathComponent("app").path
        try FileManager.default.createDirectory(atPath: app, withIntermediateDirectories: true)
        // `pub` points at what stands for the data directory: the folder holding secret.txt.
        try FileManager.default.createSymbolicLink(atPath: app + "/pub", withDestinationPath: folder.base.path)
        await #expect(throws: ProxyError.staticRootOutsideApp(path: app + "/pub/.", resolved: folder.base.path)) {
            try await StaticSite.serve(
                root: app + "/pub/.",
                within: app,
                host: "127.0.0.1",
                port: 0,
                logger: ProxyHarness.quietLogger
            )
        }
    }
}
