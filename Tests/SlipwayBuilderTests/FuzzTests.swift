// Fuzzing the files of a pushed tree the daemon reads itself, and a pinned buildpack's bin/release output: every
// input is parsed or refused with one line, never a trap (a trap here took every app's proxy down with it).
import Foundation
import SlipwayBasics
import SlipwayTestSupport
import Testing

@testable import SlipwayBuilder

@Suite struct BuilderFuzzTests {
    @Test("app.json: parsed or refused with one line, and every number in a plan is in range")
    func appJSON() {
        let seeds = [
            #"{"healthchecks": {"web": [{"type": "startup", "name": "ready", "path": "/health", "attempts": 4, "wait": 2, "timeout": 3, "initialDelay": 1, "content": "ok"}]}}"#,
            #"{"healthchecks": {"web": [{"path": "/", "uptime": 5, "listening": true}], "worker": []}}"#,
            #"{"name": "app", "scripts": {"dokku": {"predeploy": "x"}}, "healthchecks": {}}"#,
        ]
        for input in Fuzzing.inputs(from: seeds, extra: ["attempts", "initialDelay", "timeout", "wait", "web"]) {
            do {
                let plan = try HealthCheckPlan.parse(appJSON: Data(input))
                for check in plan.checks where !plan.isDefault {
                    #expect((1...100).contains(check.attempts))
                    #expect(check.initialDelay <= .seconds(600) && check.wait <= .seconds(300))
                    #expect(check.timeout <= .seconds(300) && check.path.hasPrefix("/"))
                }
            } catch {
                #expect(!error.description.contains("\n"), "\(error)")
            }
        }
    }

    @Test("app.json env: parsed or refused with one line; every name a variable name, every value bounded")
    func appJSONEnv() {
        let seeds = [
            #"{"env": {"A": "plain", "B": {"value": "v", "description": "d"}, "C": {"generator": "secret"}}}"#,
            #"{"env": {"D": {"required": false}, "E": {"required": true, "description": "needed"}}}"#,
        ]
        for input in Fuzzing.inputs(from: seeds, extra: ["generator", "required", "value", "secret"]) {
            do {
                for entry in try ConfigDefaults.parse(appJSON: Data(input)) {
                    #expect(entry.name.isEnvironmentVariableName)
                    if case .value(let value) = entry.source { #expect(value.utf8.count <= 32 * 1024) }
                }
            } catch {
                #expect(!error.description.contains("\n"), "\(error)")
            }
        }
    }

    @Test("Procfile: parsed or refused with the number of its bad line")
    func procfile() {
        let seeds = ["web: node server.js --port $PORT\nworker: python worker.py\n", "# c\n\nrelease: sh migrate.sh\n"]
        for input in Fuzzing.inputs(from: seeds) {
            do {
                let types = try Procfile.parse(String(decoding: input, as: UTF8.self))
                #expect(types.allSatisfy { !$0.key.isEmpty && !$0.value.isEmpty })
            } catch {
                #expect(error.description.hasPrefix("the Procfile's line "), "\(error)")
            }
        }
    }

    @Test(".buildpacks: each pin is one trimmed line that is no comment")
    func buildpacksFile() {
        let seeds = ["# pinned\nhttps://github.com/heroku/heroku-buildpack-nodejs#v200\n", "nodejs\n\nprocfile\n"]
        for input in Fuzzing.inputs(from: seeds) {
            for pin in ReleaseBuilder.pins(inBuildpacksFile: Data(input)) {
                #expect(!pin.isEmpty && !pin.hasPrefix("#") && !pin.contains("\n"))
            }
        }
    }

    @Test("bin/release YAML whose mapping keys are not scalars is read, not a trap in Yams (found by fuzzing)")
    func nonScalarKeys() throws {
        #expect(try ReleaseBuilder.processTypes(fromReleaseYAML: "? [a]\n: b\n", buildpack: "x") == [:])
        let yaml = "default_process_types:\n  ? [web]\n  : x\n  worker: run\n"
        #expect(try ReleaseBuilder.processTypes(fromReleaseYAML: yaml, buildpack: "x") == ["worker": "run"])
    }

    @Test("a buildpack's bin/release YAML: process types or one line saying it is not YAML")
    func releaseYAML() {
        let seeds = ["---\naddons: []\ndefault_process_types:\n  web: npm start\n  worker: node worker.js\n", "{}"]
        for input in Fuzzing.inputs(from: seeds, extra: ["&a", "*a", "!!binary", "<<:", "- ", "  "]) {
            do {
                _ = try ReleaseBuilder.processTypes(
                    fromReleaseYAML: String(decoding: input, as: UTF8.self),
                    buildpack: "x"
                )
            } catch {
                #expect(error.description.hasPrefix("the x buildpack's bin/release failed: "), "\(error)")
            }
        }
    }
}
