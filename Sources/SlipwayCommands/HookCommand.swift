// `slipway hook pre-receive|post-receive`: run by git in an app's bare repository while it receives a push (the
// pushed objects still in quarantine) and after it accepted one. Asks the daemon to deploy each updated ref (at
// the stage the app's `git:atomic` says) and relays its output, which git shows as `remote:` lines; a non-zero
// exit of pre-receive rejects the push.
import ArgumentParser
import Foundation
import Logging
import SlipwayBasics
import SlipwayFrontDoor
import SlipwayProxy

struct HookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hook",
        abstract: "Run a git hook of an app repository (installed by apps:create).",
        shouldDisplay: false
    )

    enum Hook: String, ExpressibleByArgument, CaseIterable {
        case preReceive = "pre-receive"
        case postReceive = "post-receive"
    }

    @Argument(help: "The hook: pre-receive or post-receive.") var hook: Hook

    func run() throws {
        // git runs hooks of a bare repository inside it: <data>/repos/<app>.git
        let repository = URL(fileURLWithPath: ProcessInfo.processInfo.environment["GIT_DIR"] ?? ".")
            .standardizedFileURL.resolvingSymlinksInPath()
        let name = repository.deletingPathExtension().lastPathComponent
        let data = DataDirectory(root: repository.deletingLastPathComponent().deletingLastPathComponent().path)
        var status: Int32 = 0
        while let line = readLine() {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count == 3 else { continue }
            let result = try ControlClient.send(
                .push(
                    app: name,
                    ref: fields[2],
                    revision: fields[1],
                    key: ProcessInfo.processInfo.environment["SLIPWAY_KEY"],
                    // git says where it keeps the objects of a push it has not accepted yet (git 2.11 and later).
                    quarantine: hook == .preReceive
                        ? ProcessInfo.processInfo.environment["GIT_QUARANTINE_PATH"] ?? "" : nil
                ),
                socketPath: data.controlSocket
            )
            status = max(status, result)
        }
        if status != 0 { throw ExitCode(status) }
    }
}

struct ServeStaticCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve-static",
        abstract: "Serve a folder of files over HTTP (used by the static buildpack)."
    )

    @Option(help: "Port to listen on.") var port: Int
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Argument(help: "The folder to serve.") var root: String

    func run() async throws {
        try await StaticSite.serve(
            root: DataLocation.absolute(root),
            // Instances run in their release tree, so the working directory is the app.
            within: FileManager.default.currentDirectoryPath,
            host: host,
            port: port,
            logger: Logger(label: "slipway.serve-static")
        )
    }
}
