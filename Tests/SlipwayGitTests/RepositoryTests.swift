import Foundation
import SlipwayBasics
import SlipwayGit
import SlipwayTestSupport
import Testing

@Suite struct RepositoryTests {
    /// A bare repository created by us, filled by a real `git push` from a work tree.
    private func pushedRepository(_ directory: TemporaryDirectory) async throws -> (bare: String, work: String) {
        let bare = directory.path + "/app.git"
        _ = try Repository.createBare(at: bare, headBranch: "main")
        let work = directory.path + "/work"
        try FileManager.default.createDirectory(atPath: work + "/dir", withIntermediateDirectories: true)
        try "#!/bin/sh\necho run\n".write(toFile: work + "/run.sh", atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: work + "/run.sh")
        try "data\n".write(toFile: work + "/dir/file.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: work + "/link", withDestinationPath: "run.sh")
        try FileManager.default.createSymbolicLink(atPath: work + "/dirlink", withDestinationPath: "dir")
        try await run("git", ["init", "--quiet", "--initial-branch=main"], in: work)
        try await run("git", ["add", "--all"], in: work)
        try await run("git", ["commit", "--quiet", "-m", "First commit\n\nWith a body."], in: work)
        let (status, output) = try await run("git", ["push", "--quiet", bare, "main"], in: work)
        #expect(status.succeeded, "\(output)")
        return (bare, work)
    }

    @Test func readsTheCommitAPushBrought() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (bare, work) = try await pushedRepository(directory)
        let head = try await run("git", ["rev-parse", "HEAD"], in: work).output.trimmingCharacters(
            in: .whitespacesAndNewlines
        )
        let commit = try Repository(openBareAt: bare).commit("refs/heads/main")
        #expect(commit.id == head)
        #expect(commit.summary == "First commit")
        #expect(commit.author == "\(toolEnvironment["GIT_AUTHOR_NAME"]!) <\(toolEnvironment["GIT_AUTHOR_EMAIL"]!)>")
        #expect(try Repository(openBareAt: bare).commit(head).id == head)
    }

    @Test func checkoutKeepsModesAndSymlinksAndLeavesTheBareIndexAlone() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (bare, _) = try await pushedRepository(directory)
        try FileManager.default.createDirectory(atPath: directory.path + "/releases", withIntermediateDirectories: true)
        let target = directory.path + "/releases/2"
        try Repository(openBareAt: bare).checkout("main", into: target)
        let files = FileManager.default
        let mode = try files.attributesOfItem(atPath: target + "/run.sh")[.posixPermissions] as? Int
        #expect(mode == 0o755)
        #expect(try files.destinationOfSymbolicLink(atPath: target + "/link") == "run.sh")
        #expect(try files.destinationOfSymbolicLink(atPath: target + "/dirlink") == "dir")
        #expect(try String(contentsOfFile: target + "/dir/file.txt", encoding: .utf8) == "data\n")
        #expect(!files.fileExists(atPath: target + "/.git"))
        #expect(!files.fileExists(atPath: bare + "/index"))
    }

    @Test func refusesToCheckOutOverAnExistingDirectory() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (bare, _) = try await pushedRepository(directory)
        #expect(throws: GitError.self) { try Repository(openBareAt: bare).checkout("main", into: directory.path) }
    }

    @Test func anUnknownRevisionSaysWhatToDo() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (bare, _) = try await pushedRepository(directory)
        let error = #expect(throws: GitError.self) { try Repository(openBareAt: bare).commit("no-such-branch") }
        #expect(error?.description.contains("is not a commit in this repository") == true)
    }
}
