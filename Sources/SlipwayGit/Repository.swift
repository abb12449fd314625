// SlipwayGit: the Swift face of libgit2. Opens and creates bare repositories, resolves the
// pushed commit, and checks it out into a fresh release directory. Nothing here touches
// paths outside the directories it is given.
import CLibGit2
import SlipwayBasics

#if canImport(Glibc)
import Glibc
#endif

public enum GitError: UserFacingError {
    case libgit2(operation: String, message: String)
    case unknownRevision(String)
    case targetNotEmpty(String)

    public var description: String {
        switch self {
        case .libgit2(let operation, let message): "git: could not \(operation): \(message)"
        case .unknownRevision(let revision):
            "git: \(revision) is not a commit in this repository; push it first or name an existing branch or commit"
        case .targetNotEmpty(let path):
            "git: \(path) already exists; a release is always checked out into a new directory"
        }
    }
}

/// The facts about a commit that a release records.
public struct CommitInfo: Sendable, Equatable {
    public var id: String
    public var summary: String
    public var author: String
}

/// A bare repository opened with libgit2. Not thread-safe: use it from one task and let it go.
public final class Repository {
    private let handle: OpaquePointer

    private static let initialized: Void = { _ = git_libgit2_init() }()

    /// Creates a bare repository whose HEAD names `branch` (the app's deploy branch).
    public static func createBare(at path: String, headBranch: String) throws(GitError) -> Repository {
        _ = initialized
        var pointer: OpaquePointer?
        try check(git_repository_init(&pointer, path, 1), "create the repository at \(path)")
        let repository = Repository(handle: pointer!)
        try check(git_repository_set_head(repository.handle, "refs/heads/\(headBranch)"), "set HEAD")
        try repository.keepPrivate()
        return repository
    }

    /// Makes git write this repository's files 0600 and folders 0700 whatever the umask of the push
    /// (`core.sharedRepository`): a push through OpenSSH, or a local one, brings the pusher's umask.
    public func keepPrivate() throws(GitError) {
        var config: OpaquePointer?
        try Self.check(git_repository_config(&config, handle), "read the repository's config")
        defer { git_config_free(config) }
        try Self.check(git_config_set_string(config, "core.sharedRepository", "0600"), "set core.sharedRepository")
    }

    /// Opens a bare repository (`open_bare` also skips the owner check, which misreports as a safe.directory error).
    public init(openBareAt path: String) throws(GitError) {
        _ = Self.initialized
        var pointer: OpaquePointer?
        try Self.check(git_repository_open_bare(&pointer, path), "open the repository at \(path)")
        handle = pointer!
    }

    private init(handle: OpaquePointer) { self.handle = handle }

    deinit { git_repository_free(handle) }

    /// Resolves a branch, tag or commit id to the commit it names.
    public func commit(_ revision: String) throws(GitError) -> CommitInfo {
        let commit = try lookupCommit(revision)
        defer { git_commit_free(commit) }
        let id = String(cString: git_oid_tostr_s(git_commit_id(commit)))
        let summary = git_commit_summary(commit).map { String(cString: $0) } ?? ""
        let author =
            git_commit_author(commit).map { signature in
                let name = String(cString: signature.pointee.name)
                let email = String(cString: signature.pointee.email)
                return "\(name) <\(email)>"
            } ?? ""
        return CommitInfo(id: id, summary: summary, author: author)
    }

    /// Writes the tree of `revision` into `directory`, which must not exist yet (its parent must): file modes and
    /// symlinks are kept, and the bare repository's index is left alone.
    public func checkout(_ revision: String, into directory: String) throws(GitError) {
        guard access(directory, F_OK) != 0 else { throw .targetNotEmpty(directory) }
        let commit = try lookupCommit(revision)
        defer { git_commit_free(commit) }
        var tree: OpaquePointer?
        try Self.check(git_commit_tree(&tree, commit), "read the tree of \(revision)")
        defer { git_tree_free(tree) }
        var options = git_checkout_options()
        git_checkout_options_init(&options, UInt32(GIT_CHECKOUT_OPTIONS_VERSION))
        // A fresh directory each time: checkout compares with HEAD, so reusing one leaves deleted files behind.
        options.checkout_strategy = GIT_CHECKOUT_FORCE.rawValue | GIT_CHECKOUT_DONT_WRITE_INDEX.rawValue
        let result = directory.withCString { path in
            options.target_directory = path
            return git_checkout_tree(handle, tree, &options)
        }
        try Self.check(result, "check out \(revision) into \(directory)")
    }

    /// Sets `key` in the repository's config, or removes it (nil).
    public func setConfig(_ key: String, to value: String?) throws(GitError) {
        var config: OpaquePointer?
        try Self.check(git_repository_config(&config, handle), "read the repository's config")
        defer { git_config_free(config) }
        guard let value else {
            let removed = git_config_delete_entry(config, key)
            if removed != GIT_ENOTFOUND.rawValue { try Self.check(removed, "remove \(key)") }
            return
        }
        try Self.check(git_config_set_string(config, key, value), "set \(key)")
    }

    /// Points `branch` at `target`, if it still points at `expected` (nil: if it does not exist yet), as git
    /// would have at the end of a push it accepted.
    public func updateBranch(_ branch: String, from expected: String?, to target: String) throws(GitError) {
        let name = "refs/heads/" + branch
        var targetID = git_oid()
        try Self.check(git_oid_fromstr(&targetID, target), "read the commit id \(target)")
        var updated: OpaquePointer?
        if let expected {
            var expectedID = git_oid()
            try Self.check(git_oid_fromstr(&expectedID, expected), "read the commit id \(expected)")
            try Self.check(
                git_reference_create_matching(&updated, handle, name, &targetID, 1, &expectedID, "slipway: deployed"),
                "move \(branch) to \(target.prefix(7))"
            )
        } else {
            try Self.check(
                git_reference_create(&updated, handle, name, &targetID, 0, "slipway: deployed"),
                "create \(branch)"
            )
        }
        git_reference_free(updated)
    }

    /// Points `branch` back at `target` (a commit id; nil deletes the branch), if it still points at `expected`:
    /// a push that came meanwhile is never undone.
    public func moveBranch(_ branch: String, from expected: String, to target: String?) throws(GitError) {
        let name = "refs/heads/" + branch
        var current = git_oid()
        guard git_reference_name_to_id(&current, handle, name) == 0,
            String(cString: git_oid_tostr_s(&current)) == expected
        else { return }
        guard let target else {
            var reference: OpaquePointer?
            try Self.check(git_reference_lookup(&reference, handle, name), "look up \(branch)")
            defer { git_reference_free(reference) }
            try Self.check(git_reference_delete(reference), "delete \(branch)")
            return
        }
        var targetID = git_oid()
        try Self.check(git_oid_fromstr(&targetID, target), "read the commit id \(target)")
        var moved: OpaquePointer?
        try Self.check(
            git_reference_create_matching(&moved, handle, name, &targetID, 1, &current, "slipway: the deploy failed"),
            "move \(branch) back to \(target.prefix(7))"
        )
        git_reference_free(moved)
    }

    private func lookupCommit(_ revision: String) throws(GitError) -> OpaquePointer {
        var object: OpaquePointer?
        guard git_revparse_single(&object, handle, revision) == 0, let object else {
            throw .unknownRevision(revision)
        }
        defer { git_object_free(object) }
        var peeled: OpaquePointer?
        guard git_object_peel(&peeled, object, GIT_OBJECT_COMMIT) == 0, let peeled else {
            throw .unknownRevision(revision)
        }
        return peeled
    }

    private static func check(_ result: Int32, _ operation: String) throws(GitError) {
        guard result < 0 else { return }
        let message = git_error_last().map { String(cString: $0.pointee.message) } ?? "error \(result)"
        throw .libgit2(operation: operation, message: message)
    }
}
