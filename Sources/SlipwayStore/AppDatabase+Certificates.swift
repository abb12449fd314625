// Each attempt to get an app a certificate from its ACME CA, kept so that `certs APP` can tell what happened.
import Foundation
import GRDB
import SlipwayBasics

public struct CertificateAttempt: Sendable, Codable, Equatable, FetchableRecord, MutablePersistableRecord {
    public var id: Int64?
    public var appName: String
    public var at: Date
    /// The names asked for, comma-separated.
    public var names: String
    public var succeeded: Bool
    /// The name the CA could not check, when that is why it failed.
    public var rejectedName: String?
    /// What came of it: the new certificate's expiry, or the CA's refusal.
    public var message: String

    public static let databaseTableName = "certificateAttempt"

    public init(
        app: AppName,
        at: Date,
        names: [String],
        succeeded: Bool,
        rejectedName: String? = nil,
        message: String
    ) {
        self.appName = app.rawValue
        self.at = at
        self.names = names.joined(separator: ", ")
        self.succeeded = succeeded
        self.rejectedName = rejectedName
        self.message = message
    }

    public var nameList: [String] { names.components(separatedBy: ", ") }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension AppDatabase {
    /// Attempts kept per app: the newest ones.
    public static let keptCertificateAttempts = 20

    public func recordCertificateAttempt(_ attempt: CertificateAttempt) throws {
        try write { db in
            var attempt = attempt
            try attempt.insert(db)
            try db.execute(
                sql: "DELETE FROM certificateAttempt WHERE appName = ? AND id NOT IN "
                    + "(SELECT id FROM certificateAttempt WHERE appName = ? ORDER BY id DESC LIMIT ?)",
                arguments: [attempt.appName, attempt.appName, Self.keptCertificateAttempts]
            )
        }
    }

    /// The app's newest attempts, newest first.
    public func certificateAttempts(
        of app: AppName,
        limit: Int = keptCertificateAttempts
    ) throws -> [CertificateAttempt] {
        try read { db in
            try CertificateAttempt
                .filter(Column("appName") == app.rawValue)
                .order(Column("id").desc)
                .limit(limit)
                .fetchAll(db)
        }
    }
}
