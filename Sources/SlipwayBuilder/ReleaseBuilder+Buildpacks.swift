// Which buildpacks build a tree, and the copy of each the build works with: every line of `.buildpacks` in order
// (else BUILDPACK_URL), each fetched or copied into the build's scratch folder, or without a pin the first shipped
// pack whose bin/detect accepts the tree. A pack's copy is its own to write (Heroku's `export` file goes there),
// and what it exports is the environment of the packs after it.
import Foundation
import SlipwayBasics

/// One pack of a build: its copy in the build's scratch folder, and the name its bin/detect gave.
struct Buildpack: Sendable {
    var path: String
    var name: String
}

extension ReleaseBuilder {
    /// More packs than any real app chains; a hostile `.buildpacks` does not make a build clone hundreds.
    static let maximumBuildpacks = 8

    /// The pinned packs in order (`.buildpacks` lines, else the BUILDPACK_URL config var), each of which must accept
    /// the tree; without a pin, the first shipped pack whose bin/detect exits 0.
    func chooseBuildpacks(
        _ request: BuildRequest,
        scratch: String,
        environment: [String: String],
        output: @escaping @Sendable (String) -> Void
    ) async throws(BuildError) -> [Buildpack] {
        let pinFile = try PushedFile.read(".buildpacks", in: request.releaseDirectory)
        var pins = pinFile.map(Self.pins(inBuildpacksFile:)) ?? []
        if pins.isEmpty, let url = request.config["BUILDPACK_URL"], !url.isEmpty { pins = [url] }
        guard pins.count <= Self.maximumBuildpacks else {
            throw .tooManyBuildpacks(pins.count, limit: Self.maximumBuildpacks)
        }
        var packs: [Buildpack] = []
        for (index, pin) in pins.enumerated() {
            let copy = scratch + "/buildpacks/\(index + 1)"
            try await fetch(pin, into: copy, for: request, environment: environment, output: output)
            guard let name = try await detect(copy, request, environment) else {
                throw .pinnedBuildpackDoesNotApply(pin)
            }
            packs.append(Buildpack(path: copy, name: name))
        }
        if !packs.isEmpty { return packs }
        for pack in Self.shippedOrder {
            let path = buildpacksDirectory + "/" + pack
            guard let name = try await detect(path, request, environment) else { continue }
            let copy = scratch + "/buildpacks/1"
            try await copyPack(path, to: copy)
            return [Buildpack(path: copy, name: name)]
        }
        throw .noBuildpackDetected(tried: Self.shippedOrder)
    }

    /// The lines of a `.buildpacks` file that are neither blank nor `#` comments, trimmed.
    static func pins(inBuildpacksFile data: Data) -> [String] {
        String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    /// Puts the pack a pin names at `destination`: a shipped pack by name or a directory by path, copied; a git URL
    /// (`URL#ref` pins a branch or tag, as on Heroku), cloned shallow.
    private func fetch(
        _ pin: String,
        into destination: String,
        for request: BuildRequest,
        environment: [String: String],
        output: @escaping @Sendable (String) -> Void
    ) async throws(BuildError) {
        let isURL = pin.contains("://") || pin.hasPrefix("git@")
        guard isURL else {
            let path = pin.hasPrefix("/") ? pin : buildpacksDirectory + "/" + pin
            guard FileManager.default.isExecutableFile(atPath: path + "/bin/detect") else {
                throw .pinnedBuildpackMissing(pin)
            }
            // Resolved, so that no link or `..` leads into the data directory, where other apps' files are.
            let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            let data = URL(fileURLWithPath: request.dataDirectory).resolvingSymlinksInPath().path
            guard resolved != data, !resolved.hasPrefix(data + "/") else { throw .pinnedBuildpackMissing(pin) }
            try await copyPack(resolved, to: destination)
            return
        }
        let parts = pin.split(separator: "#", maxSplits: 1).map(String.init)
        var arguments = ["clone", "--quiet", "--depth", "1"]
        if parts.count == 2 { arguments += ["--branch", parts[1]] }
        arguments += [parts[0], destination]
        output("-----> Fetching buildpack \(pin)")
        do {
            try FileManager.default.createDirectory(
                atPath: (destination as NSString).deletingLastPathComponent,
                withIntermediateDirectories: true
            )
            let (status, text) = try await launcher.output(
                of: Command("git", arguments, environment: environment, markers: request.markers),
                for: .build(request.app, AppFiles(writable: [(destination as NSString).deletingLastPathComponent]))
            )
            guard status.succeeded else { throw BuildError.buildpackFetchFailed(pin, output: text) }
        } catch let error as BuildError {
            throw error
        } catch {
            throw .buildpackFetchFailed(pin, output: error.userMessage)
        }
    }

    private func copyPack(_ path: String, to destination: String) async throws(BuildError) {
        do {
            try FileManager.default.createDirectory(
                atPath: (destination as NSString).deletingLastPathComponent,
                withIntermediateDirectories: true
            )
        } catch {
            throw .couldNotPrepare(error.userMessage)
        }
        try await launcher.copy(["-R", "--preserve=mode", path, destination], what: "the buildpack")
    }

    /// The pack's display name when its bin/detect accepts the tree.
    private func detect(
        _ buildpack: String,
        _ request: BuildRequest,
        _ environment: [String: String]
    )
        async throws(BuildError) -> String?
    {
        guard FileManager.default.isExecutableFile(atPath: buildpack + "/bin/detect") else { return nil }
        do {
            let (status, text) = try await runScript("detect", of: buildpack, request, environment)
            guard status.succeeded else { return nil }
            let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
            return name.isEmpty ? (buildpack as NSString).lastPathComponent : name
        } catch {
            throw .couldNotPrepare(error.userMessage)
        }
    }

    /// The environment after sourcing the pack's `export` file (if it wrote one) in a shell that starts from
    /// `environment`, in the app's sandbox: what the next pack's compile starts from.
    func exported(
        by pack: Buildpack,
        _ request: BuildRequest,
        _ environment: [String: String]
    ) async throws(BuildError) -> [String: String] {
        let script = pack.path + "/export"
        guard FileManager.default.fileExists(atPath: script) else { return environment }
        let text: String
        do {
            let status: ExitStatus
            (status, text) = try await launcher.output(
                of: Command(
                    "/bin/bash",
                    ["-c", ". \"$0\" >/dev/null 2>&1 </dev/null; env -0", script],
                    environment: environment,
                    workingDirectory: request.releaseDirectory,
                    markers: request.markers
                ),
                for: .build(request.app, request.files(readOnly: [pack.path])),
                keptBytesEachEnd: 256 * 1024
            )
            guard status.succeeded else { throw BuildError.exportFailed(buildpack: pack.name, "it \(status)") }
        } catch let error as BuildError {
            throw error
        } catch {
            throw .exportFailed(buildpack: pack.name, error.userMessage)
        }
        var result: [String: String] = [:]
        for entry in text.split(separator: "\0") {
            guard let equals = entry.firstIndex(of: "=") else { continue }
            let name = String(entry[..<equals])
            // The shell's own bookkeeping, and the markers a direct launch puts in every environment, are not exports.
            guard name.isEnvironmentVariableName, !["PWD", "OLDPWD", "SHLVL", "_"].contains(name),
                environment[name] != nil || request.markers[name] == nil
            else { continue }
            result[name] = String(entry[entry.index(after: equals)...])
        }
        return result
    }
}
