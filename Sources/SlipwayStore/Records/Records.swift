// The records the store keeps: one struct per table, plus the read models that join them.
import Foundation
import GRDB
import SlipwayBasics

/// An app: its repository, its releases and its config belong to it.
public struct App: Sendable, Codable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "app"
    public var name: String
    public var deployBranch: String
    /// Process type -> how many instances each release runs (a JSON column).
    public var formation: [String: Int]
    public var createdAt: Date
    /// While on, the proxy answers the app's hosts with a maintenance page instead of the app.
    public var maintenance: Bool = false
    /// How many built trees this app keeps; nil: the daemon's default.
    public var keepReleases: Int?
    /// Whether a new release's workers start before the old ones stop (off: stop first, so two
    /// copies of a queue worker never run at once).
    public var workersOverlap: Bool = false
    /// Where the proxy answers the app's version endpoint, event stream and client.js; nil: `/_slipway/`.
    public var endpointPrefix: String?
    /// Seconds an old release gets to finish its requests after a switch; nil: the daemon's --drain-timeout.
    public var drainTimeout: Int?
    /// Whether a cookie pins each client to one instance of the live release.
    public var stickySessions: Bool = false
    /// The host user the app's processes run as when the daemon runs as root (allocated at its first process).
    public var userName: String?
    /// Whether a push deploys while it is received (`git:atomic`): a failed deploy rejects it, and the deploy branch
    /// moves only once the release is live.
    public var atomicPushes: Bool = false
    /// What plain HTTP does once the app has HTTPS (`proxy:https`).
    public var httpsMode: HTTPSMode = .off
    /// The `Strict-Transport-Security` max-age of `only`, in seconds; nil: a year.
    public var hstsMaxAge: Int?
    /// The limits of each instance, by process type (`*`: every type; a type's own win key by key). A JSON column.
    public var limits: [String: ProcessLimits] = [:]

    public var appName: AppName { try! AppName(validating: name) }  // only valid names are ever stored

    /// The limits each instance of `type` runs under, if any.
    public func limits(of type: String) -> ProcessLimits? {
        let merged = (limits["*"] ?? ProcessLimits()).overridden(by: limits[type] ?? ProcessLimits())
        return merged.isEmpty ? nil : merged
    }

    /// How many instances of `type` run: web one unless scaled, other types none unless scaled (as on Heroku).
    public func scale(of type: String) -> Int {
        formation[type] ?? (type == "web" ? 1 : 0)
    }
}

/// Where a release is in its life.
public enum ReleaseStatus: String, Sendable, Codable, DatabaseValueConvertible, CaseIterable {
    /// Heroku's v1: the app exists, nothing was ever built.
    case initial
    case building
    /// Built; instances booting and being health-checked.
    case deploying
    case live
    case retired
    case failed
}

public struct Release: Sendable, Codable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "release"
    /// Assigned by SQLite when the release is inserted (`NewRelease`): every release the store hands out has it.
    public var id: Int64
    public var appName: String
    public var number: Int
    public var status: ReleaseStatus
    public var description: String
    public var commitID: String?
    public var commitAuthor: String?
    public var buildpack: String?
    /// Process type -> command, once built (a JSON column).
    public var processTypes: [String: String]?
    /// The release whose built tree this one runs: itself for a deploy, an older one for a rollback.
    public var buildNumber: Int?
    /// The config vars this release runs with (a JSON column): what a rollback to it restores.
    public var config: [String: String]
    public var failureReason: String?
    public var buildLog: String
    public var createdAt: Date
    public var finishedAt: Date?
    /// Who made this release: the name of the SSH key, or `local` for the host's own user.
    public var cause: String

    public var version: ReleaseVersion { ReleaseVersion(number) }

    /// The release directory holding this release's built tree, once there is one.
    public var tree: ReleaseVersion? { buildNumber.map(ReleaseVersion.init) }

    public var processTypeCommands: [String: String] { processTypes ?? [:] }

}

/// A release on its way into its table: every column but the id, which SQLite assigns. The only way the store
/// inserts a release, so no release with a made-up id is ever saved or handed out.
struct NewRelease: MutablePersistableRecord {
    static let databaseTableName = Release.databaseTableName
    /// The release's id until SQLite assigns one; never stored.
    static let unassigned: Int64 = 0
    private(set) var release: Release

    init(_ release: Release) {
        self.release = release
        self.release.id = Self.unassigned
    }

    func encode(to container: inout PersistenceContainer) throws {
        try release.encode(to: &container)
        container["id"] = nil
    }

    mutating func didInsert(_ inserted: InsertionSuccess) { release.id = inserted.rowID }

    /// Inserts the release and returns it with its id.
    static func insert(_ release: Release, _ db: Database) throws -> Release {
        var new = NewRelease(release)
        try new.insert(db)
        return new.release
    }
}

/// What a key may do: `admin` everything, `deploy` push to and read its own apps.
public enum KeyRole: String, Sendable, Codable, DatabaseValueConvertible, CaseIterable {
    case admin, deploy
}

/// What plain HTTP does for an app with HTTPS: nothing new, a redirect, or a redirect and HSTS.
public enum HTTPSMode: String, Sendable, Codable, DatabaseValueConvertible, CaseIterable {
    case off, redirect, only
}

/// What an admin may allow a deploy key beyond its role (`keys:allow`).
public enum KeyPermission: String, Sendable, Codable, CaseIterable {
    /// `run`: one-off commands in its apps, which reach their config (secrets included) and storage.
    case run
}

/// A public key allowed in over SSH, by name.
public struct AccessKey: Sendable, Codable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "accessKey"
    public var name: String
    public var role: KeyRole
    /// The OpenSSH public-key line without its comment: `ssh-ed25519 AAAA…`.
    public var publicKey: String
    /// `SHA256:…`, as `ssh-keygen -lf` prints it.
    public var fingerprint: String
    /// The apps a deploy key may reach (a JSON column); empty for admins.
    public var appNames: [String]
    public var createdAt: Date
    /// What an admin allowed this deploy key beyond its role (a JSON column).
    public var allows: [KeyPermission] = []

    enum CodingKeys: String, CodingKey {
        case name, role, publicKey, fingerprint, createdAt, allows
        case appNames = "apps"
    }

    public init(name: String, role: KeyRole, publicKey: String, fingerprint: String, apps: [AppName]) {
        self.name = name
        self.role = role
        self.publicKey = publicKey
        self.fingerprint = fingerprint
        self.appNames = apps.map(\.rawValue)
        createdAt = Date()
    }
}

/// A hostname an app answers besides its default `<app>.<domain>`.
struct Domain: Sendable, Codable, Equatable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "domain"
    var hostname: String
    var appName: String
}

/// The steps of a deploy, in the order they run.
public enum DeployStep: String, Sendable, Codable, DatabaseValueConvertible, CaseIterable {
    case checkout, build, release, boot, health, `switch`, drain
}

public enum StepOutcome: String, Sendable, Codable, DatabaseValueConvertible {
    case running, succeeded, failed
}

/// One step of one deploy, with its timestamps.
public struct DeployEvent: Sendable, Codable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "deployEvent"
    public var id: Int64?
    public var releaseID: Int64
    public var step: DeployStep
    public var outcome: StepOutcome
    public var detail: String?
    public var startedAt: Date
    public var finishedAt: Date?

    public var duration: Duration? {
        finishedAt.map { .milliseconds(Int64(($0.timeIntervalSince(startedAt) * 1000).rounded())) }
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

public enum InstanceStatus: String, Sendable, Codable, DatabaseValueConvertible {
    /// `draining`: replaced by a newer release, finishing what it has under way before it stops.
    case booting, serving, draining, crashed, stopped
}

/// One running (or once running) process of a release.
public struct InstanceRecord: Sendable, Codable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "instance"
    public var id: Int64?
    public var appName: String
    public var releaseNumber: Int
    public var processType: String
    /// n of `web.n`: which of the type's instances this is.
    public var processIndex: Int
    public var pid: Int32
    /// When the process started, in clock ticks since boot: with the pid, how a later daemon knows it is still this instance.
    public var startTime: Int64?
    public var port: Int?
    public var status: InstanceStatus
    public var startedAt: Date
    public var stoppedAt: Date?
    /// How it ended, as `exited with status 1`.
    public var exitReason: String?

    public init(
        app: AppName,
        release: ReleaseVersion,
        processType: String,
        processIndex: Int,
        pid: Int32,
        startTime: UInt64?,
        port: Int?
    ) {
        appName = app.rawValue
        releaseNumber = release.number
        self.processType = processType
        self.processIndex = processIndex
        self.pid = pid
        self.startTime = startTime.map { Int64(clamping: $0) }
        self.port = port
        status = .booting
        startedAt = Date()
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// An instance of a release that keeps crashing: the supervisor restarts it with a growing delay.
public struct CrashLoop: Sendable, Equatable, CustomStringConvertible {
    /// This many exits within `window` seconds make a crash loop.
    public static let exits = 3
    public static let window: TimeInterval = 300

    /// `web.1`
    public var process: String
    public var exits: Int
    public var lastExit: String?

    public var description: String {
        "\(process) exited \(exits) times in the last \(Int(Self.window / 60)) minutes"
            + (lastExit.map { " (last: it \($0))" } ?? "") + "; it is restarted with a growing delay"
    }
}

/// A release with the steps of its deploy.
public struct ReleaseHistoryEntry: Sendable, Equatable {
    public var release: Release
    public var events: [DeployEvent]

    public func duration(of step: DeployStep) -> Duration? {
        events.last { $0.step == step }?.duration
    }
}
