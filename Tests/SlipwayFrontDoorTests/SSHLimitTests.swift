// Specifications for the SSH session limits: one key cannot hold so many sessions (4,000 `logs -f`, say) that
// everybody else's commands crawl, and the one refused is told why in one line.
import Foundation
import SlipwayBasics
import Testing

@testable import SlipwayFrontDoor

#if canImport(Glibc)
import Glibc
#endif

@Suite(.timeLimit(.minutes(2))) struct SSHLimitTests {
    @Test func sessionsAreCountedPerKeyAndPerConnectionAndFreedWhenTheyEnd() {
        let sessions = SSHSessions(limits: SSHLimits(sessionsPerKey: 2, sessionsPerConnection: 3))
        #expect(sessions.openSession(of: "ci", openOnConnection: 0) == nil)
        #expect(sessions.openSession(of: "ci", openOnConnection: 1) == nil)
        #expect(
            sessions.openSession(of: "ci", openOnConnection: 0)
                == "key \"ci\" already has 2 sessions open, the most one key may have; end some (a `logs -f`, say) and try again"
        )
        // Another key is not held back by this one.
        #expect(sessions.openSession(of: "alice", openOnConnection: 0) == nil)
        #expect(
            sessions.openSession(of: "alice", openOnConnection: 3)
                == "this connection already has 3 sessions open, the most one may have; end one, or open another connection"
        )
        sessions.closeSession(of: "ci")
        #expect(sessions.openSession(of: "ci", openOnConnection: 0) == nil)
    }

    @Test func theSessionOverAKeysLimitIsToldWhyAndTheNextOneRunsOnceAnotherEnds() async throws {
        try await ServerFixture.with(limits: SSHLimits(sessionsPerKey: 2)) { fixture in
            let started = fixture.directory + "/until-cancelled.started"
            let holders = try (0..<2).map { _ in
                try start("/usr/bin/ssh", fixture.sshArguments() + ["git@127.0.0.1", "until-cancelled"], stdin: .held)
            }
            defer { for holder in holders where holder.child.exitStatus == nil { holder.child.signalGroup(SIGKILL) } }
            // Both sessions are open once the second has started its command.
            for index in 0..<2 {
                for _ in 0..<400 where !FileManager.default.fileExists(atPath: started) {
                    try await Task.sleep(for: .milliseconds(25))
                }
                if index == 0 { try FileManager.default.removeItem(atPath: started) }
            }
            let refused = try await fixture.ssh(["git@127.0.0.1", "hello"])
            #expect(refused.code == 1, "\(refused)")
            #expect(
                refused.stderr
                    == "slipway: key \"tester\" already has 2 sessions open, the most one key may have; end some (a `logs -f`, say) and try again\n"
            )
            holders[0].child.signalGroup(SIGKILL)
            var answered: Outcome?
            for _ in 0..<100 {
                answered = try await fixture.ssh(["git@127.0.0.1", "hello"])
                if answered?.code == 3 { break }  // hello's own status
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(answered?.code == 3, "\(String(describing: answered))")
        }
    }
}
