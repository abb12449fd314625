// Who may come in over SSH (access keys) and where apps answer (domains, maintenance, endpoint prefix).
import Foundation
import GRDB
import SlipwayBasics

public enum AccessError: UserFacingError {
    case keyNameTaken(String)
    case keyAlreadyAdded(existing: String)
    case unknownKey(String)
    case domainTaken(String, app: String)
    case unknownDomain(String, AppName)

    public var description: String {
        switch self {
        case .keyNameTaken(let name): "a key named \"\(name)\" already exists; remove it first or choose another name"
        case .keyAlreadyAdded(let existing):
            "this public key is already added as \"\(existing)\"; remove that one first to change its role"
        case .unknownKey(let name): "no key named \"\(name)\"; run `slipway keys` to list them"
        case .domainTaken(let domain, let app): "\(domain) already belongs to \(app); remove it there first"
        case .unknownDomain(let domain, let app):
            "\(app) has no domain \(domain); run `slipway domains \(app)` to list them"
        }
    }
}

extension AppDatabase {
    // MARK: Access keys

    public func addKey(_ key: AccessKey) throws {
        try write { db in
            if try AccessKey.fetchOne(db, key: key.name) != nil { throw AccessError.keyNameTaken(key.name) }
            if let existing = try AccessKey.filter(Column("publicKey") == key.publicKey).fetchOne(db) {
                throw AccessError.keyAlreadyAdded(existing: existing.name)
            }
            try key.insert(db)
        }
    }

    public func removeKey(named name: String) throws {
        try write { db in
            guard try AccessKey.deleteOne(db, key: name) else { throw AccessError.unknownKey(name) }
        }
    }

    /// Allows (or no longer allows) the key `name` `permission`.
    public func setKeyPermission(_ permission: KeyPermission, allowed: Bool, for name: String) throws {
        try write { db in
            guard var key = try AccessKey.fetchOne(db, key: name) else { throw AccessError.unknownKey(name) }
            key.allows.removeAll { $0 == permission }
            if allowed { key.allows.append(permission) }
            try key.update(db)
        }
    }

    public func keys() throws -> [AccessKey] {
        try read { db in try AccessKey.order(Column("name")).fetchAll(db) }
    }

    public func key(named name: String) throws -> AccessKey? {
        try read { db in try AccessKey.fetchOne(db, key: name) }
    }

    /// The key whose public half is `publicKey` (`type base64`, no comment).
    public func key(withPublicKey publicKey: String) throws -> AccessKey? {
        try read { db in try AccessKey.filter(Column("publicKey") == publicKey).fetchOne(db) }
    }

    // MARK: Domains and maintenance

    /// `hostname` (lowercased) routes to `app` from now on.
    public func addDomain(_ hostname: String, to app: AppName) throws {
        try write { db in
            guard try App.fetchOne(db, key: app.rawValue) != nil else { throw StoreError.unknownApp(app.rawValue) }
            if let existing = try Domain.fetchOne(db, key: hostname) {
                if existing.appName == app.rawValue { return }
                throw AccessError.domainTaken(hostname, app: existing.appName)
            }
            try Domain(hostname: hostname, appName: app.rawValue).insert(db)
        }
    }

    public func removeDomain(_ hostname: String, from app: AppName) throws {
        try write { db in
            let deleted = try Domain.filter(Column("hostname") == hostname && Column("appName") == app.rawValue)
                .deleteAll(db)
            guard deleted > 0 else { throw AccessError.unknownDomain(hostname, app) }
        }
    }

    public func domains(of app: AppName) throws -> [String] {
        try read { db in
            try Domain.filter(Column("appName") == app.rawValue).order(Column("hostname")).fetchAll(db).map(\.hostname)
        }
    }

    public func setMaintenance(_ on: Bool, for app: AppName) throws {
        try updateApp(app) { $0.maintenance = on }
    }

    public func setKeepReleases(_ count: Int?, for app: AppName) throws {
        try updateApp(app) { $0.keepReleases = count }
    }

    public func setWorkersOverlap(_ on: Bool, for app: AppName) throws {
        try updateApp(app) { $0.workersOverlap = on }
    }

    public func setEndpointPrefix(_ prefix: String?, for app: AppName) throws {
        try updateApp(app) { $0.endpointPrefix = prefix }
    }

    public func setDrainTimeout(_ seconds: Int?, for app: AppName) throws {
        try updateApp(app) { $0.drainTimeout = seconds }
    }

    public func setStickySessions(_ on: Bool, for app: AppName) throws {
        try updateApp(app) { $0.stickySessions = on }
    }

    public func setHTTPSMode(_ mode: HTTPSMode, hstsMaxAge: Int?, for app: AppName) throws {
        try updateApp(app) {
            $0.httpsMode = mode
            $0.hstsMaxAge = hstsMaxAge
        }
    }

    public func setAtomicPushes(_ on: Bool, for app: AppName) throws {
        try updateApp(app) { $0.atomicPushes = on }
    }

    /// Changes one app's record in a transaction.
    func updateApp(_ app: AppName, _ change: @escaping @Sendable (inout App) -> Void) throws {
        try write { db in
            guard var record = try App.fetchOne(db, key: app.rawValue) else {
                throw StoreError.unknownApp(app.rawValue)
            }
            change(&record)
            try record.update(db)
        }
    }

    /// Forgets the app: its releases, events, config, instances and domains go with it; deploy
    /// keys stop listing it.
    public func destroyApp(_ app: AppName) throws {
        try write { db in
            guard try App.deleteOne(db, key: app.rawValue) else { throw StoreError.unknownApp(app.rawValue) }
            for var key in try AccessKey.fetchAll(db) where key.appNames.contains(app.rawValue) {
                key.appNames.removeAll { $0 == app.rawValue }
                try key.update(db)
            }
        }
    }
}
