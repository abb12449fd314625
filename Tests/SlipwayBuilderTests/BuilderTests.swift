import Foundation
import SlipwayBasics
import SlipwayGit
import SlipwayTestSupport
import Testing

@testable import SlipwayBuilder

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ProcfileTests {
    @Test func readsTypesAndCommandsSkippingCommentsAndBlankLines() throws {
        let types = try Procfile.parse("# processes\nweb: node server.js --port $PORT\n\nworker:python worker.py\n")
        #expect(types == ["web": "node server.js --port $PORT", "worker": "python worker.py"])
    }

    @Test func aMalformedLineNamesItsLineNumber() {
        let error = #expect(throws: BuildError.self) { try Procfile.parse("web: ok\nthis is not a process\n") }
        #expect(error?.description.contains("line 2") == true)
    }
}

@Suite struct PushedFileTests {
    @Test("app.json, Procfile and .buildpacks over 1 MiB, links and devices are refused, never read whole")
    func hostileFilesAreRefused() throws {
        let tree = try TemporaryDirectory("pushed")
        defer { tree.remove() }
        try Data(count: PushedFile.limit + 1).write(to: URL(fileURLWithPath: tree.path + "/app.json"))
        let large = #expect(throws: BuildError.self) { try HealthCheckPlan.read(fromReleaseDirectory: tree.path) }
        #expect(
            large?.description
                == "app.json is 1048577 bytes, more than the 1048576 allowed; make it smaller and push again"
        )
        try FileManager.default.removeItem(atPath: tree.path + "/app.json")
        // A link to the host's files or to a device, and a FIFO that would never end.
        try FileManager.default.createSymbolicLink(atPath: tree.path + "/app.json", withDestinationPath: "/dev/zero")
        try FileManager.default.createSymbolicLink(atPath: tree.path + "/Procfile", withDestinationPath: "/etc/passwd")
        #expect(mkfifo(tree.path + "/.buildpacks", 0o600) == 0)
        for name in ["app.json", "Procfile", ".buildpacks"] {
            let error = #expect(throws: BuildError.self) { try PushedFile.read(name, in: tree.path) }
            #expect(error?.description == BuildError.pushedFileNotRegular(name).description)
        }
        #expect(try PushedFile.read("missing", in: tree.path) == nil)
        try Data("web: ok".utf8).write(to: URL(fileURLWithPath: tree.path + "/Plain"))
        #expect(try PushedFile.read("Plain", in: tree.path) == Data("web: ok".utf8))
    }
}

@Suite struct HealthCheckPlanTests {
    @Test func withoutAppJSONChecksRootTwiceInARowWithin120Seconds() throws {
        let plan = try HealthCheckPlan.parse(appJSON: Data("{}".utf8))
        #expect(plan.isDefault)
        #expect(plan.checks.first?.path == "/")
        #expect(plan.checks.first?.passesInARow == 2)
        #expect(plan.checks.first?.upgradeRequiredPasses == true)
        #expect(plan.checks.first?.deadline == .seconds(120))
    }

    @Test func readsDokkusKeysWithDokkusMeaning() throws {
        let json = """
            {"healthchecks": {"web": [{"type": "startup", "name": "ready", "path": "/health",
              "attempts": 4, "wait": 2, "timeout": 3, "initialDelay": 1, "content": "ok"}]}}
            """
        let plan = try HealthCheckPlan.parse(appJSON: Data(json.utf8))
        #expect(!plan.isDefault)
        #expect(plan.warnings.isEmpty)
        #expect(
            plan.checks == [
                HealthCheck(
                    name: "ready",
                    path: "/health",
                    attempts: 4,
                    wait: .seconds(2),
                    timeout: .seconds(3),
                    initialDelay: .seconds(1),
                    content: "ok",
                    passesInARow: 1,
                    deadline: nil
                )
            ]
        )
    }

    @Test func dokkuKeysNotActedOnYetAreWarnedAboutNeverIgnored() throws {
        let json = #"{"healthchecks": {"web": [{"path": "/", "uptime": 5, "listening": true}], "worker": []}}"#
        let plan = try HealthCheckPlan.parse(appJSON: Data(json.utf8))
        #expect(plan.warnings.count == 3)
        #expect(plan.warnings.contains { $0.contains("\"uptime\" is accepted but not acted on yet") })
        #expect(plan.warnings.contains { $0.contains("a listening check only connects; its path and content") })
        #expect(plan.warnings.contains { $0.contains("worker") })
        #expect(plan.checks.first?.listening == true)
    }

    @Test func aKeyDokkuDoesNotKnowIsAnError() {
        let json = #"{"healthchecks": {"web": [{"path": "/", "retries": 5}]}}"#
        let error = #expect(throws: BuildError.self) { try HealthCheckPlan.parse(appJSON: Data(json.utf8)) }
        #expect(error?.description.contains("unknown key \"retries\"") == true)
    }

    /// app.json with one web check made of `fields`.
    private func plan(_ fields: String) throws -> HealthCheckPlan {
        try HealthCheckPlan.parse(
            appJSON: Data((##"{"healthchecks": {"web": [{"name": "up", "## + fields + "}]}}").utf8)
        )
    }

    @Test("a number out of its range is refused with the key, the value and the range (it crashed the daemon)")
    func outOfRangeNumbersAreRefused() {
        let cases: [(String, String)] = [
            (
                #""initialDelay": 9223372036854775807"#,
                #""initialDelay" is 9223372036854775807; it must be a whole number of seconds from 0 to 600"#
            ),
            (#""attempts": 0"#, #""attempts" is 0; it must be a whole number of tries from 1 to 100"#),
            (#""wait": -1"#, #""wait" is -1; it must be a whole number of seconds from 0 to 300"#),
            (#""timeout": 2.5"#, #""timeout" is 2.5; it must be a whole number of seconds from 1 to 300"#),
            (#""timeout": true"#, #""timeout" is true; it must be a whole number of seconds from 1 to 300"#),
            (#""wait": "5""#, #""wait" is "5"; it must be a whole number of seconds from 0 to 300"#),
            (#""attempts": 1e300"#, #""attempts" is 1e+300; it must be a whole number of tries from 1 to 100"#),
        ]
        for (field, sentence) in cases {
            let error = #expect(throws: BuildError.self) { try plan(field) }
            #expect(
                error?.description == #"app.json is invalid: healthchecks.web "up": "# + sentence
                    + "; fix it and push again"
            )
        }
    }

    @Test func theEdgesOfEachRangeAreAccepted() throws {
        let check = try #require(
            try plan(#""attempts": 100, "wait": 0, "timeout": 300, "initialDelay": 600"#).checks.first
        )
        #expect(check.attempts == 100 && check.wait == .zero && check.timeout == .seconds(300))
        #expect(check.initialDelay == .seconds(600))
    }

    @Test func aPathMustBeAnAbsolutePathOfVisibleCharacters() {
        for path in ["health", "/a b", #"/\u0000"#, "/" + String(repeating: "a", count: 3000)] {
            #expect(throws: BuildError.self) { try plan(#""path": ""# + path + #"""#) }
        }
    }

    @Test func malformedJSONIsAnError() {
        #expect(throws: BuildError.self) { try HealthCheckPlan.parse(appJSON: Data("{not json".utf8)) }
    }
}

@Suite struct ReleaseBuilderTests {
    @Test func readsDefaultProcessTypesFromBinReleaseYAML() throws {
        let yaml = "---\naddons: []\ndefault_process_types:\n  web: npm start\n  worker: node worker.js\n"
        #expect(
            try ReleaseBuilder.processTypes(fromReleaseYAML: yaml, buildpack: "x")
                == ["web": "npm start", "worker": "node worker.js"]
        )
        #expect(
            try ReleaseBuilder.processTypes(fromReleaseYAML: "---\ndefault_process_types: {}\n", buildpack: "x") == [:]
        )
    }

    /// Pushes a fixture into a bare repository and builds it with the shipped buildpacks.
    private func build(
        _ fixtureName: String,
        config: [String: String] = [:],
        in directory: TemporaryDirectory
    )
        async throws -> (BuiltRelease, String)
    {
        let bare = directory.path + "/app.git"
        _ = try Repository.createBare(at: bare, headBranch: "main")
        let work = directory.path + "/work"
        try await commitFixture(fixtureName, into: work, message: "fixture")
        try await run("git", ["push", "--quiet", bare, "main"], in: work)
        let request = BuildRequest(
            app: try AppName(validating: "app"),
            repository: bare,
            revision: "main",
            releaseDirectory: directory.path + "/releases/2",
            cacheDirectory: directory.path + "/cache",
            config: config,
            baseEnvironment: [
                "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": directory.path,
            ],
            markers: ["SLIPWAY_APP": "app"],
            dataDirectory: directory.path + "/data"
        )
        let builder = ReleaseBuilder(buildpacksDirectory: packageRoot + "/buildpacks", launcher: DirectLauncher())
        _ = try builder.checkout(request)
        let output = Transcript()
        let built = try await builder.build(request) { output.append($0) }
        return (built, output.text)
    }

    @Test func detectsNodeAndMergesTheDefaultWebCommand() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (built, output) = try await build("node-hello", in: directory)
        #expect(built.buildpack == "Node.js")
        #expect(built.processTypes["web"] == "npm start")
        #expect(output.contains("-----> Node.js app detected"))
    }

    @Test func theProcfileWinsOverTheBuildpackAndAppJSONIsRead() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (built, _) = try await build("healthcheck-app", in: directory)
        #expect(built.processTypes["web"] == "node server.js")
        #expect(built.healthChecks.checks.first?.path == "/health")
    }

    @Test func noBuildpackNamesWhatItTried() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let error = await #expect(throws: BuildError.self) { try await build("no-buildpack", in: directory) }
        #expect(
            error?.description.contains("no buildpack detected this app (tried nodejs, python, static, procfile)")
                == true
        )
    }

    @Test func aFailingCompileShowsItsOutputAndExitStatus() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let error = await #expect(throws: BuildError.self) { try await build("build-fails", in: directory) }
        #expect(error?.description.contains("compile exited with status") == true)
    }

    @Test func configVarsReachTheBuildAsEnvDirFiles() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let pack = directory.path + "/pack"
        try FileManager.default.createDirectory(atPath: pack + "/bin", withIntermediateDirectories: true)
        let scripts = [
            "detect": "#!/bin/sh\necho Custom\n",
            "compile": "#!/bin/sh\necho \"       greeting=$(cat \"$3/GREETING\") cache=$2\"\n",
            "release": "#!/bin/sh\necho '---'\necho 'default_process_types:'\necho '  web: ./serve'\n",
        ]
        for (name, text) in scripts {
            try text.write(toFile: pack + "/bin/" + name, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: pack + "/bin/" + name)
        }
        let (built, output) = try await build(
            "no-buildpack",
            config: ["BUILDPACK_URL": pack, "GREETING": "hello"],
            in: directory
        )
        #expect(built.buildpack == "Custom")
        #expect(built.processTypes == ["web": "./serve"])
        // The cache a build gets is its own copy, in its scratch folder (see BuildCache).
        #expect(output.contains("greeting=hello cache=\(directory.path)/releases/2.scratch/cache"), "\(output)")
    }

    @Test func aPinMayNotNameAPackInsideTheDataDirectoryWhereOtherAppsFilesAre() async throws {
        // Another app's tree that happens to hold a bin/detect, named directly, through a link and through `..`.
        for way in ["directly", "link", "dots"] {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let pack = directory.path + "/data/apps/beta/releases/3"
            try FileManager.default.createDirectory(atPath: pack + "/bin", withIntermediateDirectories: true)
            try "#!/bin/sh\necho Beta\n".write(toFile: pack + "/bin/detect", atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: pack + "/bin/detect")
            try FileManager.default.createSymbolicLink(atPath: directory.path + "/innocent", withDestinationPath: pack)
            try FileManager.default.createDirectory(atPath: directory.path + "/pack", withIntermediateDirectories: true)
            let pin = [
                "directly": pack, "link": directory.path + "/innocent",
                "dots": directory.path + "/pack/../data/apps/beta/releases/3",
            ][way]!
            let error = await #expect(throws: BuildError.self) {
                try await build("no-buildpack", config: ["BUILDPACK_URL": pin], in: directory)
            }
            #expect(
                error?.description == "the pinned buildpack \(pin) does not exist; fix .buildpacks or BUILDPACK_URL"
            )
        }
    }

    @Test func aBuildKeepsWhatItCachedOnlyWhenItSucceeds() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let pack = directory.path + "/pack"
        try FileManager.default.createDirectory(atPath: pack + "/bin", withIntermediateDirectories: true)
        let scripts = [
            "detect": "#!/bin/sh\necho Cached\n",
            // Says what the cache held, adds to it, and fails when the tree says so.
            "compile": """
            #!/bin/sh
            echo "       cache had: $(ls "$2" | tr '\\n' ' ')"
            echo kept > "$2/from-$(basename "$1")"
            if [ -f "$1/FAIL" ]; then exit 1; fi
            """,
            "release": "#!/bin/sh\necho '---'\necho 'default_process_types:'\necho '  web: ./serve'\n",
        ]
        for (name, text) in scripts {
            try text.write(toFile: pack + "/bin/" + name, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: pack + "/bin/" + name)
        }
        let bare = directory.path + "/app.git"
        _ = try Repository.createBare(at: bare, headBranch: "main")
        let work = directory.path + "/work"
        try await commitFixture("no-buildpack", into: work, message: "v2")
        let builder = ReleaseBuilder(buildpacksDirectory: packageRoot + "/buildpacks", launcher: DirectLauncher())
        var said: [Int: String] = [:]
        for (release, fails) in [(2, false), (3, true), (4, false)] {
            if fails { try "".write(toFile: work + "/FAIL", atomically: true, encoding: .utf8) }
            if !fails { try? FileManager.default.removeItem(atPath: work + "/FAIL") }
            try await run("git", ["add", "--all"], in: work)
            try await run("git", ["commit", "--quiet", "--allow-empty", "-m", "v\(release)"], in: work)
            try await run("git", ["push", "--quiet", "--force", bare, "main"], in: work)
            let request = BuildRequest(
                app: try AppName(validating: "app"),
                repository: bare,
                revision: "main",
                releaseDirectory: directory.path + "/releases/\(release)",
                cacheDirectory: directory.path + "/cache",
                config: ["BUILDPACK_URL": pack],
                baseEnvironment: ["PATH": "/usr/bin:/bin"],
                markers: [:],
                dataDirectory: directory.path + "/data"
            )
            _ = try builder.checkout(request)
            let output = Transcript()
            do {
                _ = try await builder.build(request) { output.append($0) }
                #expect(!fails, "v\(release) built")
            } catch {
                #expect(fails, "v\(release): \(error)")
            }
            said[release] = output.text
        }
        #expect(said[3]?.contains("cache had: from-2") == true, "\(said[3] ?? "")")
        // v3 failed after writing to its copy: v4 sees only what v2 kept.
        #expect(
            said[4]?.contains("cache had: from-2") == true && said[4]?.contains("from-3") == false,
            "\(said[4] ?? "")"
        )
        let kept = try FileManager.default.contentsOfDirectory(atPath: directory.path + "/cache").sorted()
        #expect(kept == ["from-2", "from-4"])
    }
}

struct ConfigDefaultsTests {
    @Test func readsHerokusEnvSchema() throws {
        let json = """
            {"env": {"A": "plain", "B": {"value": "given", "description": "b"}, "C": {"generator": "secret"},
              "D": {"description": "needed"}, "E": {"required": false}, "F": {"required": true}}}
            """
        let defaults = try ConfigDefaults.parse(appJSON: Data(json.utf8))
        #expect(defaults.map(\.name) == ["A", "B", "C", "D", "E", "F"])
        #expect(defaults.map(\.source) == [.value("plain"), .value("given"), .secret, .required, .optional, .required])
        #expect(defaults[3].description == "needed")
        #expect(try ConfigDefaults.parse(appJSON: Data(#"{"name": "x"}"#.utf8)).isEmpty)
        let secret = ConfigDefault.secret()
        #expect(secret.count == 64 && secret != ConfigDefault.secret())
    }

    @Test func whatIsNotHerokusSchemaIsRefusedInOneLine() {
        let cases: [(String, String)] = [
            (#"{"env": []}"#, "\"env\" must map config var names"),
            (#"{"env": {"1X": "a"}}"#, "\"1X\" is not a config var name"),
            (#"{"env": {"X": 5}}"#, "\"X\" must be a string or an object"),
            (#"{"env": {"X": {"generator": "uuid"}}}"#, "the only generator is \"secret\""),
            (#"{"env": {"X": {"required": 1}}}"#, "\"required\" must be true or false"),
            (#"{"env": {"X": {"value": true}}}"#, "\"value\" must be a string"),
        ]
        for (json, says) in cases {
            let error = #expect(throws: BuildError.self) { try ConfigDefaults.parse(appJSON: Data(json.utf8)) }
            #expect(error?.description.contains(says) == true, "\(json): \(String(describing: error))")
        }
        let many = "{\"env\": {" + (0..<201).map { "\"V\($0)\": \"x\"" }.joined(separator: ",") + "}}"
        #expect(throws: BuildError.self) { try ConfigDefaults.parse(appJSON: Data(many.utf8)) }
    }
}
