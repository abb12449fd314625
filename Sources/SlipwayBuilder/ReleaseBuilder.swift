// ReleaseBuilder: turns a pushed commit into a built release tree. Checks the commit out into a
// fresh `releases/<n>/`, picks its buildpacks (pinned, in order, or the first shipped one whose bin/detect accepts;
// see ReleaseBuilder+Buildpacks), runs each one's bin/compile with a copy of the app's cache (kept only when the
// build succeeds, see BuildCache) and its config, and reads the process types from the last pack's bin/release and
// the Procfile. It never touches routing, instances or the `current` link.
import Foundation
import SlipwayBasics
import SlipwayGit
import Yams

/// Everything a build needs to know.
public struct BuildRequest: Sendable {
    public var app: AppName
    public var repository: String
    public var revision: String
    public var releaseDirectory: String
    public var cacheDirectory: String
    public var config: [String: String]
    /// The environment the buildpack scripts run in (PATH, HOME, ...), before config vars.
    public var baseEnvironment: [String: String]
    /// What tells a later daemon whose build a process is (see `Command.markers`).
    public var markers: [String: String]
    /// The daemon's data directory: a pin may not name a pack inside it, where other apps' files are.
    public var dataDirectory: String

    public init(
        app: AppName,
        repository: String,
        revision: String,
        releaseDirectory: String,
        cacheDirectory: String,
        config: [String: String],
        baseEnvironment: [String: String],
        markers: [String: String],
        dataDirectory: String
    ) {
        self.app = app
        self.repository = repository
        self.revision = revision
        self.releaseDirectory = releaseDirectory
        self.cacheDirectory = cacheDirectory
        self.config = config
        self.baseEnvironment = baseEnvironment
        self.markers = markers
        self.dataDirectory = dataDirectory
    }

    /// What `bin/detect` and `bin/release` work on: the tree, and `readOnly` besides.
    func files(readOnly: [String]) -> AppFiles {
        AppFiles(writable: [releaseDirectory], readOnly: readOnly)
    }
}

/// A built release tree, ready to boot.
public struct BuiltRelease: Sendable {
    public var buildpack: String
    public var processTypes: [String: String]
    public var healthChecks: HealthCheckPlan
}

public struct ReleaseBuilder: Sendable {
    /// The shipped buildpacks, tried in this order.
    public static let shippedOrder = ["nodejs", "python", "static", "procfile"]
    let buildpacksDirectory: String
    let launcher: any Launcher

    public init(buildpacksDirectory: String, launcher: any Launcher) {
        self.buildpacksDirectory = buildpacksDirectory
        self.launcher = launcher
    }

    /// Checks `request.revision` out into `request.releaseDirectory` (which must not exist yet).
    public func checkout(_ request: BuildRequest) throws(BuildError) -> CommitInfo {
        do {
            let repository = try Repository(openBareAt: request.repository)
            let commit = try repository.commit(request.revision)
            try FileManager.default.createDirectory(
                atPath: (request.releaseDirectory as NSString).deletingLastPathComponent,
                withIntermediateDirectories: true
            )
            try repository.checkout(commit.id, into: request.releaseDirectory)
            return commit
        } catch let error as GitError {
            throw .checkout(error)
        } catch {
            throw .couldNotPrepare(error.localizedDescription)
        }
    }

    /// A build's scratch folder is its release tree's path with this suffix.
    public static let scratchSuffix = ".scratch"

    /// Detects, compiles and releases the checked-out tree, streaming buildpack output to `output`.
    public func build(
        _ request: BuildRequest,
        output: @escaping @Sendable (String) -> Void
    ) async throws(BuildError)
        -> BuiltRelease
    {
        let buildDirectory = request.releaseDirectory
        let healthChecks = try HealthCheckPlan.read(fromReleaseDirectory: buildDirectory)
        // Beside the tree, not in /tmp: it holds the config vars (ENV_DIR), so it is the daemon user's only, and a
        // daemon killed mid-build leaves it where the next start removes it (see `scratchSuffix`).
        let scratch = buildDirectory + Self.scratchSuffix
        try? FileManager.default.removeItem(atPath: scratch)
        do {
            try FileManager.default.createDirectory(
                atPath: scratch,
                withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700]
            )
        } catch {
            throw .couldNotPrepare(error.localizedDescription)
        }
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var environment = request.baseEnvironment.merging(
            request.config.filter { $0.key.isEnvironmentVariableName },
            uniquingKeysWith: { _, config in config }
        )
        // Heroku's HOME is the app's tree (/app) at build and at run time; `.profile.d` scripts rely on it.
        environment["HOME"] = buildDirectory
        let packs = try await chooseBuildpacks(request, scratch: scratch, environment: environment, output: output)
        if packs.count == 1 { output("-----> \(packs[0].name) app detected") }

        let environmentDirectory = scratch + "/env"
        let cache = BuildCache(kept: request.cacheDirectory, working: scratch + "/cache")
        try await cache.open(with: launcher)
        do {
            try FileManager.default.createDirectory(atPath: environmentDirectory, withIntermediateDirectories: true)
            for (key, value) in request.config where key.isEnvironmentVariableName {
                try value.write(toFile: environmentDirectory + "/" + key, atomically: true, encoding: .utf8)
            }
        } catch {
            throw .couldNotPrepare(error.localizedDescription)
        }
        for (index, pack) in packs.enumerated() {
            if packs.count > 1 { output("-----> Buildpack \(index + 1) of \(packs.count): \(pack.name)") }
            try await compile(
                pack,
                request,
                cache: cache.working,
                environmentDirectory: environmentDirectory,
                environment: environment,
                output: output
            )
            // What a pack exports (its `export` file) is the environment of the packs after it, as on Heroku.
            if index < packs.count - 1 { environment = try await exported(by: pack, request, environment) }
        }

        output("-----> Discovering process types")
        let last = packs[packs.count - 1]
        let defaults = try await defaultProcessTypes(last.path, name: last.name, request, environment)
        if !defaults.isEmpty {
            output("       Default types for buildpack -> \(defaults.keys.sorted().joined(separator: ", "))")
        }
        var processTypes = defaults
        if let procfile = try PushedFile.read("Procfile", in: buildDirectory) {
            let declared = try Procfile.parse(String(decoding: procfile, as: UTF8.self))
            output("       Procfile declares types     -> \(declared.keys.sorted().joined(separator: ", "))")
            processTypes.merge(declared, uniquingKeysWith: { _, procfileCommand in procfileCommand })
        }
        guard processTypes["web"] != nil else { throw .noWebProcess(types: Array(processTypes.keys)) }
        cache.keep()
        return BuiltRelease(
            buildpack: packs.map(\.name).joined(separator: ", "),
            processTypes: processTypes,
            healthChecks: healthChecks
        )
    }

    /// Runs one pack's bin/compile on the tree, with the cache and the pack's own copy writable (it may write its
    /// `export` file there).
    private func compile(
        _ pack: Buildpack,
        _ request: BuildRequest,
        cache: String,
        environmentDirectory: String,
        environment: [String: String],
        output: @escaping @Sendable (String) -> Void
    ) async throws(BuildError) {
        let buildDirectory = request.releaseDirectory
        let compile = Command(
            pack.path + "/bin/compile",
            [buildDirectory, cache, environmentDirectory],
            environment: environment,
            workingDirectory: buildDirectory,
            markers: request.markers
        )
        let files = AppFiles(writable: [buildDirectory, cache, pack.path], readOnly: [environmentDirectory])
        let status: ExitStatus
        do {
            status = try await launcher.run(
                compile,
                for: .build(request.app, files),
                grace: .seconds(5),
                onLine: output
            )
        } catch {
            throw .couldNotPrepare(error.userMessage)
        }
        guard status.succeeded else { throw .compileFailed(buildpack: pack.name, status) }
    }

    private func defaultProcessTypes(
        _ buildpack: String,
        name: String,
        _ request: BuildRequest,
        _ environment: [String: String]
    ) async throws(BuildError) -> [String: String] {
        guard FileManager.default.isExecutableFile(atPath: buildpack + "/bin/release") else { return [:] }
        let status: ExitStatus
        let text: String
        do {
            (status, text) = try await runScript("release", of: buildpack, request, environment)
        } catch {
            throw .releaseScriptFailed(buildpack: name, error.userMessage)
        }
        guard status.succeeded else { throw .releaseScriptFailed(buildpack: name, "it \(status)") }
        return try Self.processTypes(fromReleaseYAML: text, buildpack: name)
    }

    /// Runs the pack's `bin/detect` or `bin/release` on the tree, which they read and do not change the cache of.
    func runScript(
        _ name: String,
        of buildpack: String,
        _ request: BuildRequest,
        _ environment: [String: String]
    ) async throws -> (ExitStatus, String) {
        try await launcher.output(
            of: Command(
                buildpack + "/bin/" + name,
                [request.releaseDirectory],
                environment: environment,
                workingDirectory: request.releaseDirectory,
                markers: request.markers
            ),
            for: .build(request.app, request.files(readOnly: [buildpack]))
        )
    }

    /// `default_process_types` from bin/release's YAML. The YAML comes from a buildpack the app may pin, so it is
    /// walked as a tree of nodes: Yams' conversion to Swift values traps on a mapping key that is not a scalar.
    static func processTypes(fromReleaseYAML text: String, buildpack: String) throws(BuildError) -> [String: String] {
        let document: Node?
        do {
            document = try Yams.compose(yaml: text)
        } catch {
            throw .releaseScriptFailed(buildpack: buildpack, "its output is not YAML (\(error))")
        }
        guard let root = document?.mapping,
            let types = root.first(where: { $0.key.scalar?.string == "default_process_types" })?.value.mapping
        else { return [:] }
        var processTypes: [String: String] = [:]
        for (name, command) in types {
            if let name = name.scalar?.string, let command = command.scalar?.string { processTypes[name] = command }
        }
        return processTypes
    }
}
