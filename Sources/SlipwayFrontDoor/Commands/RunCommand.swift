// `run APP [--type TYPE] [--detach] -- COMMAND…`: a one-off command in the app's live release, as `heroku run` and
// `dokku run`. Attached, it is a program its client runs with its own stdin and output (the CLI becomes it, an SSH
// session relays it), and its exit status is the command's; detached, it runs in the background.
import ArgumentParser
import Foundation
import SlipwayBasics
import SlipwayDeployer
import SlipwayStore

public struct RunCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command in the app's live release, with its config, HOME and storage (a one-off process)."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Option(help: "The process type whose limits it runs under.") var type = "web"
    @Flag(help: "Run it in the background, its output in the app's logs (`logs APP --type run`).") var detach = false
    @Argument(
        parsing: .postTerminator,
        help: "The command, after --: several words run as exactly those words; one word is a shell command line."
    )
    var words: [String] = []

    public init() {}

    /// The shell command line bash runs: one word is one (`'ls | wc -l'`, as `heroku run` takes it); several words
    /// are quoted one by one, so the command gets exactly those arguments, however the client's shell or the SSH
    /// command line quoted them.
    var commandLine: String {
        words.count == 1
            ? words[0]
            : words.map { "'" + $0.replacingOccurrences(of: "'", with: #"'\''"#) + "'" }
                .joined(separator: " ")
    }

    public func validate() throws {
        guard !commandLine.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ValidationError("give the command to run after --, as in `run shop -- python manage.py migrate`")
        }
        // No control bytes: `ps` shows the command line to other admins' terminals, where an escape would act.
        guard commandLine.utf8.count <= 4096,
            !commandLine.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\t" })
        else {
            throw ValidationError("the command must be one line of at most 4 KiB, without control characters")
        }
        guard !type.isEmpty, type.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
        else { throw ValidationError("invalid process type \"\(type)\"") }
    }

    /// Attached, what the client runs; nil when it runs in the daemon (detached).
    func program(_ deployer: Deployer) async throws -> Command? {
        guard !detach else { return nil }
        return try await deployer.oneOffCommand(app: app, type: type, commandLine: commandLine)
    }

    public func run(in context: CommandContext) async throws {
        context.output.print(try await context.deployer.runDetached(app: app, type: type, commandLine: commandLine))
    }
}
