// `slipway hook post-receive|proc-receive`: run by git in an app's bare repository. post-receive runs after git
// accepted a push: it asks the daemon to deploy each updated ref and relays its output, which git shows as
// `remote:` lines. proc-receive runs for an app with `git:atomic on` while git receives a push of its deploy
// branch: it speaks git's pkt-line protocol on stdin and stdout (so the deploy's output goes to stderr), has the
// daemon deploy the pushed commit and move the branch, and answers `ok`, or `ng` with the reason the pusher sees.
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
        case postReceive = "post-receive"
        case procReceive = "proc-receive"
    }

    @Argument(help: "The hook: post-receive or proc-receive.") var hook: Hook

    func run() throws {
        // git runs hooks of a bare repository inside it: <data>/repos/<app>.git
        let repository = URL(fileURLWithPath: ProcessInfo.processInfo.environment["GIT_DIR"] ?? ".")
            .standardizedFileURL.resolvingSymlinksInPath()
        let name = repository.deletingPathExtension().lastPathComponent
        let data = DataDirectory(root: repository.deletingLastPathComponent().deletingLastPathComponent().path)
        let key = ProcessInfo.processInfo.environment["SLIPWAY_KEY"]
        switch hook {
        case .postReceive:
            var status: Int32 = 0
            while let line = readLine() {
                let fields = line.split(separator: " ").map(String.init)
                guard fields.count == 3 else { continue }
                let request = ControlRequest.push(app: name, ref: fields[2], revision: fields[1], key: key)
                status = max(status, try ControlClient.send(request, socketPath: data.controlSocket))
            }
            if status != 0 { throw ExitCode(status) }
        case .procReceive:
            try ProcReceive.run { command in
                var rejection = "deploy failed; see the deploy's output above"
                let request = ControlRequest.pushing(
                    app: name,
                    ref: command.ref,
                    previous: command.previous,
                    revision: command.revision,
                    key: key
                )
                let status = try ControlClient.send(
                    request,
                    socketPath: data.controlSocket,
                    standardOutput: .standardError
                ) { rejection = $0 }
                return status == 0 ? nil : rejection
            }
        }
    }
}

/// git's proc-receive protocol (version 1) on stdin and stdout, in pkt-lines: the version, then the commands
/// (`old new ref`), then one report per command (`ok REF` or `ng REF REASON`).
enum ProcReceive {
    struct Update {
        /// nil: the branch is new.
        var previous: String?
        var revision: String
        var ref: String
    }

    enum ProtocolError: UserFacingError {
        case malformed(String)

        var description: String {
            switch self {
            case .malformed(let what): "proc-receive: git sent \(what); is this git 2.29 or newer?"
            }
        }
    }

    /// Answers each update with `decide`: nil accepts it, a reason rejects it.
    static func run(_ decide: (Update) throws -> String?) throws {
        let version = try readUntilFlush()
        guard version.first?.hasPrefix("version=1") == true else {
            throw ProtocolError.malformed("no version 1 first")
        }
        write("version=1\0")
        flush()
        var updates: [Update] = []
        for line in try readUntilFlush() {
            let fields = line.split(separator: " ")
            guard fields.count == 3 else { throw ProtocolError.malformed("a command that is not `old new ref`") }
            let previous = fields[0].allSatisfy { $0 == "0" } ? nil : String(fields[0])
            updates.append(Update(previous: previous, revision: String(fields[1]), ref: String(fields[2])))
        }
        for update in updates {
            if let reason = try decide(update) {
                write("ng \(update.ref) \(reason.replacingOccurrences(of: "\n", with: " "))\n")
            } else {
                write("ok \(update.ref)\n")
            }
        }
        flush()
    }

    /// The pkt-lines up to the next flush-pkt, each without its trailing newline.
    private static func readUntilFlush() throws -> [String] {
        var lines: [String] = []
        while true {
            guard let header = read(4), let length = Int(String(decoding: header, as: UTF8.self), radix: 16) else {
                throw ProtocolError.malformed("a pkt-line without a length")
            }
            if length == 0 { return lines }
            guard length > 4, length <= 65520, let payload = read(length - 4) else {
                throw ProtocolError.malformed("a pkt-line of a wrong length")
            }
            var line = String(decoding: payload, as: UTF8.self)
            if line.hasSuffix("\n") { line.removeLast() }
            lines.append(line)
        }
    }

    private static func read(_ count: Int) -> Data? {
        var data = Data()
        while data.count < count {
            guard let chunk = try? FileHandle.standardInput.read(upToCount: count - data.count), !chunk.isEmpty else {
                return nil
            }
            data.append(chunk)
        }
        return data
    }

    private static func write(_ payload: String) {
        let bytes = Data(payload.utf8)
        FileHandle.standardOutput.write(Data(String(format: "%04x", bytes.count + 4).utf8) + bytes)
    }

    private static func flush() { FileHandle.standardOutput.write(Data("0000".utf8)) }
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
