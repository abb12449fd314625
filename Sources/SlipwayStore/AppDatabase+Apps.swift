// Apps: created with their v1 "Initial release", their process scale, and looked up by name.
import Foundation
import GRDB
import SlipwayBasics

extension AppDatabase {
    /// Records a new app and its v1 "Initial release", as Heroku does.
    public func createApp(_ name: AppName, deployBranch: String = "main", cause: String = "local") throws -> App {
        try write { db in
            guard try App.fetchOne(db, key: name.rawValue) == nil else { throw StoreError.appExists(name) }
            let app = App(name: name.rawValue, deployBranch: deployBranch, formation: ["web": 1], createdAt: Date())
            try app.insert(db)
            let initial = Release(
                id: NewRelease.unassigned,
                appName: name.rawValue,
                number: 1,
                status: .initial,
                description: "Initial release",
                commitID: nil,
                commitAuthor: nil,
                buildpack: nil,
                processTypes: nil,
                buildNumber: nil,
                config: [:],
                failureReason: nil,
                buildLog: "",
                createdAt: app.createdAt,
                finishedAt: app.createdAt,
                cause: cause
            )
            _ = try NewRelease.insert(initial, db)
            return app
        }
    }

    /// How many instances of `type` each release of `app` runs.
    public func setScale(_ count: Int, of type: String, for app: AppName) throws {
        try updateApp(app) { record in
            record.formation[type] = count
        }
    }

    public func apps() throws -> [App] {
        try read { db in try App.order(Column("name")).fetchAll(db) }
    }

    /// Records the host user `app`'s processes run as.
    public func setUserName(_ userName: String, of app: AppName) throws {
        try updateApp(app) { $0.userName = userName }
    }

    /// Sets (or, with nil, removes) the limits of `type`'s instances (`*`: every type's) of `app`.
    public func setLimits(_ limits: ProcessLimits?, of type: String, for app: AppName) throws {
        try updateApp(app) { $0.limits[type] = limits.flatMap { $0.isEmpty ? nil : $0 } }
    }

    /// The host users recorded for apps, by app.
    public func userNames() throws -> [AppName: String] {
        try read { db in
            var names: [AppName: String] = [:]
            for app in try App.filter(Column("userName") != nil).fetchAll(db) { names[app.appName] = app.userName }
            return names
        }
    }

    public func app(_ name: AppName) throws -> App {
        try read { db in
            guard let app = try App.fetchOne(db, key: name.rawValue) else { throw StoreError.unknownApp(name.rawValue) }
            return app
        }
    }
}
