// The command about an app's storage, the folder its processes keep files in across deploys (SLIPWAY_STORAGE).
import ArgumentParser
import Foundation
import SlipwayBasics
import SlipwayDeployer
import SlipwayStore

public struct StorageCommand: AdminCommand {
    public static let configuration = CommandConfiguration(
        commandName: "storage",
        abstract: "Show where the app's storage (SLIPWAY_STORAGE) is and how much it holds."
    )
    @OptionGroup public var connection: ConnectionOptions
    @Argument(help: "The app.") var app: AppName
    @Flag(help: "Print JSON.") var json = false

    public init() {}

    struct Summary: Encodable {
        var path: String
        var files: Int
        var bytes: Int64
    }

    public func run(in context: CommandContext) async throws {
        _ = try context.store.app(app)
        let path = context.settings.data.storage(app)
        let usage = DiskUsage.of(path)
        if json {
            context.output.print(try JSON.encode(Summary(path: path, files: usage.files, bytes: usage.bytes)))
            return
        }
        context.output.print("=== \(app) storage")
        context.output.print("Path:  \(path) (SLIPWAY_STORAGE; kept across deploys, rollbacks and restarts)")
        context.output.print("Size:  \(usage.bytes) bytes in \(usage.files) file\(usage.files == 1 ? "" : "s")")
    }
}
