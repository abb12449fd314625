// What the admin commands share: the options every client accepts, the argument types, and the JSON and
// time formats of their output.
import ArgumentParser
import Foundation
import SlipwayBasics
import SlipwayDeployer
import SlipwayStore

/// Options every client command accepts; the daemon ignores them.
public struct ConnectionOptions: ParsableArguments, Sendable {
    @Option(name: .long, help: "The data directory of the daemon to talk to (default: $SLIPWAY_DATA or ~/.slipway).")
    public var data: String?

    public init() {}
}

extension AppName: ExpressibleByArgument {
    public init?(argument: String) { try? self.init(validating: argument) }
}

extension ReleaseVersion: ExpressibleByArgument {
    public init?(argument: String) { try? self.init(parsing: argument) }
}

enum JSON {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

enum Format {
    static func timestamp(_ date: Date) -> String {
        date.formatted(
            .iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: false)
                .timeSeparator(.colon)
        )
    }

    static func duration(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return seconds < 1 ? String(format: "%.0fms", seconds * 1000) : String(format: "%.1fs", seconds)
    }
}

/// `on` or `off`: a switch of an app's (`proxy:sticky`, `ps:overlap`, `git:atomic`).
enum Switch: String, ExpressibleByArgument, CaseIterable {
    case on, off
}
