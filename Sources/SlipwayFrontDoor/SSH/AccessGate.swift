// AccessGate: what an SSH key may run, for the embedded server and `slipway ssh-command` alike.
// A command line is split into words without a shell (nothing is expanded or executed), then it
// is either git's own transport for an app's repository or an admin command for the dispatcher.
import Foundation
import SlipwayBasics
import SlipwayDeployer
import SlipwayStore

public struct AccessGate: SSHGate {
    private let store: AppDatabase
    private let dispatcher: CommandDispatcher
    private let settings: DeploySettings

    /// The user name every SSH remote uses: `git@host:app`.
    public static let user = "git"

    public init(store: AppDatabase, dispatcher: CommandDispatcher, settings: DeploySettings) {
        self.store = store
        self.dispatcher = dispatcher
        self.settings = settings
    }

    public func keyName(for publicKey: String, user: String) async -> String? {
        guard user == Self.user else { return nil }
        return (try? store.key(withPublicKey: publicKey))?.name
    }

    public func plan(for commandLine: String, keyName: String, environment: [String: String]) async -> SSHPlan {
        guard let key = try? store.key(named: keyName) else {
            return .refuse(
                message: "slipway: key \"\(keyName)\" is not known (any more); ask an admin to add it",
                status: 1
            )
        }
        let caller = Caller.key(key)
        let words: [String]
        do {
            words = try CommandLineWords.split(commandLine)
        } catch {
            return .refuse(message: "slipway: " + error.userMessage, status: 1)
        }
        if let service = words.first, service == "git-receive-pack" || service == "git-upload-pack" {
            return gitPlan(
                service: service,
                arguments: Array(words.dropFirst()),
                caller: caller,
                environment: environment
            )
        }
        return await dispatcher.plan(words, caller: caller)
    }

    /// `git-receive-pack 'shop.git'`: the app's bare repository, if the key may push (or fetch).
    private func gitPlan(
        service: String,
        arguments: [String],
        caller: Caller,
        environment: [String: String]
    )
        -> SSHPlan
    {
        guard arguments.count == 1, let app = Self.app(inRepositoryPath: arguments[0]) else {
            let path = arguments.joined(separator: " ")
            return .refuse(
                message:
                    "slipway: \"\(path)\" is not an app repository; use a remote like git@HOST:APP (for example git@host:shop)",
                status: 1
            )
        }
        do {
            // Authorization first: a key must not learn which apps it may not see exist.
            try caller.authorizeRepository(of: app, receive: service == "git-receive-pack")
            _ = try store.app(app)
        } catch {
            return .refuse(message: "slipway: " + error.userMessage, status: 1)
        }
        var programEnvironment = settings.platformEnvironment
        programEnvironment["GIT_PROTOCOL"] = environment["GIT_PROTOCOL"]
        // The post-receive hook passes it on, so the release records who pushed.
        programEnvironment["SLIPWAY_KEY"] = caller.name
        return .program(Command(service, [settings.data.repository(app)], environment: programEnvironment))
    }

    /// `shop`, `shop.git`, `/shop.git`, `~/shop.git/` name the app `shop`; anything else (a path
    /// with folders, `..`, an invalid name) names none.
    public static func app(inRepositoryPath path: String) -> AppName? {
        var name = Substring(path)
        if name.hasPrefix("~/") { name = name.dropFirst(2) }
        while name.hasPrefix("/") { name = name.dropFirst() }
        if name.hasSuffix("/") { name = name.dropLast() }
        if name.hasSuffix(".git") { name = name.dropLast(4) }
        return try? AppName(validating: String(name))
    }
}

public enum CommandLineError: UserFacingError, Equatable {
    case tooLong(Int)
    case controlCharacter
    case unterminatedQuote

    public var description: String {
        switch self {
        case .tooLong(let limit): "the command line is longer than \(limit) bytes; shorten it"
        case .controlCharacter: "the command line contains a newline or control character; send one command per line"
        case .unterminatedQuote: "the command line has an unterminated quote; close it"
        }
    }
}

/// Splits a command line into words as a POSIX shell would split a simple command, and does
/// nothing else: quotes ('…', "…") and backslashes group and escape; `;`, `|`, `$`, `*`, backticks
/// and the like are ordinary characters.
public enum CommandLineWords {
    public static let maximumLength = 4096

    public static func split(_ line: String) throws -> [String] {
        guard line.utf8.count <= maximumLength else { throw CommandLineError.tooLong(maximumLength) }
        guard !line.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && $0 != "\t" })
        else { throw CommandLineError.controlCharacter }
        var words: [String] = []
        var word: String?
        var quote: Character?
        var escaped = false
        for character in line {
            if escaped {
                word = (word ?? "") + String(character)
                escaped = false
            } else if let open = quote {
                if character == open {
                    quote = nil
                } else if open == "\"" && character == "\\" {
                    escaped = true
                } else {
                    word = (word ?? "") + String(character)
                }
            } else if character == " " || character == "\t" {
                if let finished = word { words.append(finished) }
                word = nil
            } else if character == "'" || character == "\"" {
                quote = character
                word = word ?? ""
            } else if character == "\\" {
                escaped = true
            } else {
                word = (word ?? "") + String(character)
            }
        }
        guard quote == nil, !escaped else { throw CommandLineError.unterminatedQuote }
        if let word { words.append(word) }
        return words
    }
}
