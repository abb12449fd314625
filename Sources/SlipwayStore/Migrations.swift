// The store's schema, one migration per released version; a released migration is never edited.
import Foundation
import GRDB
import SlipwayBasics

extension AppDatabase {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1 apps, releases, deploy events, config, instances") { db in
            try db.create(table: "app") { t in
                t.primaryKey("name", .text)
                t.column("deployBranch", .text).notNull()
                t.column("formation", .text).notNull().defaults(to: #"{"web":1}"#)
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "release") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("app", onDelete: .cascade).notNull()
                t.column("number", .integer).notNull()
                t.column("status", .text).notNull()
                t.column("description", .text).notNull()
                t.column("commitID", .text)
                t.column("commitAuthor", .text)
                t.column("buildpack", .text)
                t.column("processTypes", .text)
                t.column("buildNumber", .integer)
                t.column("config", .text).notNull().defaults(to: "{}")
                t.column("failureReason", .text)
                t.column("buildLog", .text).notNull().defaults(to: "")
                t.column("createdAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
                t.uniqueKey(["appName", "number"])
            }
            try db.create(table: "deployEvent") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("release", onDelete: .cascade).notNull()
                t.column("step", .text).notNull()
                t.column("outcome", .text).notNull()
                t.column("detail", .text)
                t.column("startedAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
            }
            try db.create(table: "configVar") { t in
                t.belongsTo("app", onDelete: .cascade).notNull()
                t.column("key", .text).notNull()
                t.column("value", .text).notNull()
                t.primaryKey(["appName", "key"])
            }
            try db.create(table: "instance") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("app", onDelete: .cascade).notNull()
                t.column("releaseNumber", .integer).notNull()
                t.column("processType", .text).notNull()
                t.column("pid", .integer).notNull()
                t.column("port", .integer)
                t.column("status", .text).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("stoppedAt", .datetime)
            }
        }
        migrator.registerMigration("v2 keys, domains, maintenance, release causes, per-app retention") { db in
            try db.create(table: "accessKey") { t in
                t.primaryKey("name", .text)
                t.column("role", .text).notNull()
                t.column("publicKey", .text).notNull().unique()
                t.column("fingerprint", .text).notNull()
                t.column("apps", .text).notNull().defaults(to: "[]")
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "domain") { t in
                t.primaryKey("hostname", .text)
                t.belongsTo("app", onDelete: .cascade).notNull()
            }
            try db.alter(table: "app") { t in
                t.add(column: "maintenance", .boolean).notNull().defaults(to: false)
                t.add(column: "keepReleases", .integer)
                t.add(column: "workersOverlap", .boolean).notNull().defaults(to: false)
            }
            try db.alter(table: "release") { t in
                t.add(column: "cause", .text).notNull().defaults(to: "local")
            }
            try db.create(table: "promotion") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("sourceRelease", inTable: "release", onDelete: .setNull)
                t.belongsTo("targetRelease", inTable: "release", onDelete: .cascade).notNull()
                t.column("sourceApp", .text).notNull()
                t.column("sourceNumber", .integer).notNull()
                t.column("targetApp", .text).notNull()
                t.column("targetNumber", .integer).notNull()
            }
        }
        migrator.registerMigration("v3 endpoint prefix") { db in
            try db.alter(table: "app") { t in
                t.add(column: "endpointPrefix", .text)
            }
        }
        migrator.registerMigration("v4 per-app drain timeout, sticky sessions") { db in
            try db.alter(table: "app") { t in
                t.add(column: "drainTimeout", .integer)
                t.add(column: "stickySessions", .boolean).notNull().defaults(to: false)
            }
        }
        migrator.registerMigration("v5 instance identity for adoption") { db in
            try db.alter(table: "instance") { t in
                t.add(column: "processIndex", .integer).notNull().defaults(to: 1)
                t.add(column: "startTime", .integer)
                t.add(column: "exitReason", .text)
            }
        }
        migrator.registerMigration("v6 a host user per app") { db in
            try db.alter(table: "app") { t in t.add(column: "userName", .text) }
        }
        migrator.registerMigration("v7 limits per app and process type") { db in
            try db.alter(table: "app") { t in t.add(column: "limits", .text).notNull().defaults(to: "{}") }
        }
        migrator.registerMigration("v8 atomic pushes") { db in
            try db.alter(table: "app") { t in t.add(column: "atomicPushes", .boolean).notNull().defaults(to: false) }
        }
        migrator.registerMigration("v9 what a deploy key is allowed beyond its role") { db in
            try db.alter(table: "accessKey") { t in t.add(column: "allows", .text).notNull().defaults(to: "[]") }
        }
        migrator.registerMigration("v10 what plain HTTP does for an app with HTTPS") { db in
            try db.alter(table: "app") { t in
                t.add(column: "httpsMode", .text).notNull().defaults(to: "off")
                t.add(column: "hstsMaxAge", .integer)
            }
        }
        migrator.registerMigration("v11 certificate attempts") { db in
            try db.create(table: "certificateAttempt") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("app", onDelete: .cascade).notNull()
                t.column("at", .datetime).notNull()
                t.column("names", .text).notNull()
                t.column("succeeded", .boolean).notNull()
                t.column("rejectedName", .text)
                t.column("message", .text).notNull()
            }
        }
        migrator.registerMigration("v12 one-off commands in the background") { db in
            try db.create(table: "oneOffRun") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("app", onDelete: .cascade).notNull()
                t.column("pid", .integer).notNull()
                t.column("startTime", .integer).notNull()
                t.column("releaseNumber", .integer).notNull()
                t.column("commandLine", .text).notNull()
                t.column("startedAt", .datetime).notNull()
            }
        }
        return migrator
    }
}
