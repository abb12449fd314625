// DeployerFixture: a deployer on an in-memory store and a scratch data directory whose launcher starts nothing,
// so that the deployer's own decisions are tested without git, buildpacks, processes or a daemon.
import Foundation
import Logging
import SlipwayBasics
import SlipwayProxy
import SlipwayStore
import SlipwaySupervisor
import SlipwayTestSupport

@testable import SlipwayDeployer

enum DeployerFixture {
    /// A launcher for tests in which no process may start: each start is refused with one line.
    struct NoProcesses: Launcher {
        struct Refused: UserFacingError {
            var description: String { "this test starts no process" }
        }

        func run(
            _ command: Command,
            for purpose: LaunchPurpose,
            grace: Duration,
            onLine: @escaping @Sendable (String) -> Void
        ) async throws -> SlipwayBasics.ExitStatus {
            throw Refused()
        }

        func start(_ command: Command, for purpose: LaunchPurpose, logFile: String) throws -> ChildProcess {
            throw Refused()
        }

        func command(_ command: Command, for purpose: LaunchPurpose) throws -> Command {
            throw Refused()
        }
    }

    static func deployer(
        data: DataDirectory,
        store: AppDatabase,
        keepReleases: Int,
        isolationWarning: String? = nil
    ) -> Deployer {
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let settings = DeploySettings(
            data: data,
            domain: "localhost",
            publicPort: 8080,
            hooksDirectory: packageRoot + "/hooks",
            buildpacksDirectory: packageRoot + "/buildpacks",
            drainTimeout: .seconds(1),
            webSocketCloseWindow: .zero,
            keepReleases: keepReleases,
            bootBatch: 1,
            maxBuilds: 1,
            buildTimeout: .seconds(1),
            livenessInterval: .zero,
            livenessFailures: 1,
            baseEnvironment: [:],
            platformEnvironment: [:],
            isolationWarning: isolationWarning
        )
        return Deployer(
            settings: settings,
            store: store,
            supervisor: Supervisor(stopGrace: .seconds(1), launcher: NoProcesses(), logger: logger),
            router: Router(),
            launcher: NoProcesses(),
            logger: logger
        )
    }

    /// App `shop` in an in-memory store with a scratch data directory, and a deployer on them; `remove()` after.
    struct Scene {
        let folder: TemporaryDirectory
        let data: DataDirectory
        let store: AppDatabase
        let shop: AppName
        let deployer: Deployer

        init(keepReleases: Int = 5, isolationWarning: String? = nil) throws {
            folder = try TemporaryDirectory("deployer")
            data = DataDirectory(root: folder.path)
            store = try AppDatabase.inMemory()
            shop = try AppName(validating: "shop")
            _ = try store.createApp(shop)
            deployer = DeployerFixture.deployer(
                data: data,
                store: store,
                keepReleases: keepReleases,
                isolationWarning: isolationWarning
            )
        }

        /// A new release of shop, built with a Procfile of `types`, recorded and not yet live.
        func builtRelease(types: [String: String] = ["web": "serve"]) throws -> Release {
            let release = try store.startRelease(
                of: shop,
                description: "Deploy",
                commitID: "c0ffee",
                author: "a",
                cause: "test"
            )
            return try store.recordBuild(of: release.id, buildpack: "x", processTypes: types)
        }

        func remove() { folder.remove() }
    }
}
