// When certificates are asked for: at once when missing, two thirds through their life, after a backoff when the CA
// refused, and without a name the CA could not check until that name's own backoff has passed.
import Foundation
import SlipwayBasics
import SlipwayStore
import SlipwayTLS
import SlipwayTestSupport
import Testing

@testable import SlipwayDeployer

@Suite struct RenewalScheduleTests {
    let app = try! AppName(validating: "shop")

    func attempt(
        _ secondsAgo: TimeInterval,
        _ names: [String],
        ok: Bool,
        rejected: String? = nil,
        now: Date
    )
        -> CertificateAttempt
    {
        CertificateAttempt(
            app: app,
            at: now.addingTimeInterval(-secondsAgo),
            names: names,
            succeeded: ok,
            rejectedName: rejected,
            message: ""
        )
    }

    @Test func eachCaseIsAskedForWhenAnOperatorWouldExpect() async throws {
        let folder = try TemporaryDirectory("ca")
        defer { folder.remove() }
        let ca = try await TestCA(in: folder.path)
        let leaf = try await ca.leaf("shop", names: ["www.shop.example", "api.shop.example"])
        let bundle = try CertificateBundle(
            chainPEM: try String(contentsOfFile: leaf.fullChain, encoding: .utf8),
            keyPEM: try String(contentsOfFile: leaf.key, encoding: .utf8),
            roots: []
        )
        let schedule = RenewalSchedule()
        let now = Date()
        let both = ["www.shop.example", "api.shop.example"]
        func next(
            _ names: [String],
            _ certificate: CertificateBundle?,
            _ attempts: [CertificateAttempt] = []
        )
            -> RenewalSchedule.Next
        {
            schedule.next(.init(names: names, certificate: certificate, attempts: attempts), now: now)
        }

        #expect(next(both, nil).names == both)
        #expect(next(both, nil).at <= now, "no certificate: at once")
        let lifetime = bundle.notValidAfter.timeIntervalSince(bundle.notValidBefore)
        let renewal = next(both, bundle).at
        #expect(renewal <= bundle.notValidBefore.addingTimeInterval(lifetime * 2 / 3))
        #expect(renewal >= bundle.notValidBefore.addingTimeInterval(lifetime * (2.0 / 3 - 1.0 / 15)))
        #expect(next(both + ["new.shop.example"], bundle).at <= now, "a new name: at once")

        // The CA unreachable: the same names again after a minute, then two, …, never more than six hours.
        let down = [attempt(10, both, ok: false, now: now)]
        #expect(next(both, nil, down).at == now.addingTimeInterval(50))
        #expect(next(both, nil, down + down).at == now.addingTimeInterval(110))
        #expect(next(both, nil, Array(repeating: down[0], count: 40)).at == now.addingTimeInterval(6 * 3600 - 10))
        #expect(next(both + ["new.shop.example"], bundle, down).at <= now, "other names are not held back")
        #expect(next(both, nil, [attempt(5, both, ok: true, now: now)] + down).at <= now, "a success in between")

        // A name the CA could not check is left out for its backoff; the others are asked for at once.
        let bad = "bad.shop.example"
        let rejected = [attempt(10, both + [bad], ok: false, rejected: bad, now: now)]
        #expect(next(both + [bad], nil, rejected) == .init(names: both, at: .distantPast))
        #expect(next(both + [bad], bundle, rejected) == .init(names: both, at: now.addingTimeInterval(50)))
        let issuedWithout = [attempt(8, both, ok: true, now: now)] + rejected
        #expect(next(both + [bad], bundle, issuedWithout).names == both)
        #expect(next(both + [bad], bundle, issuedWithout).at == now.addingTimeInterval(50), "when bad is due again")
        let later = [
            attempt(70, both, ok: true, now: now), attempt(72, both + [bad], ok: false, rejected: bad, now: now),
        ]
        #expect(next(both + [bad], bundle, later) == .init(names: both + [bad], at: .distantPast))
        let twice = issuedWithout + [attempt(100, both + [bad], ok: false, rejected: bad, now: now)]
        #expect(next(both + [bad], bundle, twice).at == now.addingTimeInterval(110), "its backoff doubles")
        #expect(next([bad], nil, rejected).at == now.addingTimeInterval(50), "nothing else to ask for: wait")
    }

    @Test func onlyNamesAPublicCACanIssueForAreAskedFor() {
        #expect(
            ACMENames.eligible([
                "shop.localhost", "localhost", "www.shop.example", "www.shop.example", "intranet", "10.0.0.1",
                "*.shop.example", "[::1]", "api.shop.example",
            ]) == ["www.shop.example", "api.shop.example"]
        )
    }
}
