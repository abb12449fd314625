// The store's JSON columns are typed in the code; rows an earlier version wrote as JSON text read the same.
import Foundation
import GRDB
import SlipwayBasics
import Testing

@testable import SlipwayStore

@Suite struct JSONColumnTests {
    @Test("rows written as JSON text, with the schema's defaults, read as typed maps and lists")
    func earlierRowsReadAsTypedValues() throws {
        let store = try AppDatabase.inMemory()
        try store.write { db in
            try db.execute(sql: "INSERT INTO app (name, deployBranch, createdAt) VALUES ('old', 'main', '2024-01-01')")
            try db.execute(
                sql: """
                    INSERT INTO release (appName, number, status, description, processTypes, buildNumber, config,
                      buildLog, createdAt, cause)
                    VALUES ('old', 2, 'live', 'Deploy', '{"web":"npm start","worker":"node w.js"}', 2,
                      '{"A":"1"}', '', '2024-01-01', 'local')
                    """
            )
            try db.execute(
                sql: """
                    INSERT INTO accessKey (name, role, publicKey, fingerprint, apps, createdAt)
                    VALUES ('ci', 'deploy', 'ssh-ed25519 AAAA', 'SHA256:x', '["old"]', '2024-01-01')
                    """
            )
        }
        let old = try AppName(validating: "old")
        #expect(try store.app(old).scale(of: "web") == 1)
        let live = try #require(try store.liveRelease(of: old))
        #expect(live.processTypeCommands == ["web": "npm start", "worker": "node w.js"])
        #expect(live.config == ["A": "1"])
        #expect(try store.key(named: "ci")?.appNames == ["old"])

        try store.setScale(3, of: "worker", for: old)
        #expect(try store.app(old).scale(of: "worker") == 3)
        #expect(try store.app(old).scale(of: "web") == 1)
    }
}
