// RenewalSchedule: which of an app's names to ask the ACME CA for, and when. Decided from what is kept (the
// certificate, the app's names, the recent attempts) and the time, without sockets.
import Crypto
import Foundation
import SlipwayStore
import SlipwayTLS

public struct RenewalSchedule: Sendable {
    /// The wait after a first failure; it doubles with each failure in a row, up to `longestBackoff`.
    public var firstBackoff: Duration = .seconds(60)
    public var longestBackoff: Duration = .seconds(6 * 3600)

    public init() {}

    /// What the schedule is told of one app.
    public struct Situation: Sendable {
        /// The names the certificate should cover.
        public var names: [String]
        /// The certificate the CA gave last, if any.
        public var certificate: CertificateBundle?
        /// The app's recent attempts, newest first.
        public var attempts: [CertificateAttempt]
    }

    /// The names to ask for, and when.
    public struct Next: Sendable, Equatable {
        public var names: [String]
        public var at: Date
    }

    /// A name the CA could not check is left out until its own backoff has passed, so that one domain whose DNS
    /// points elsewhere does not keep the app's other names from their certificate. The others are asked for at once
    /// when the certificate is missing or does not cover them, and two thirds through its lifetime otherwise; after
    /// a failure of the whole request (the CA unreachable, say), not before the backoff.
    public func next(_ situation: Situation, now: Date) -> Next {
        var heldUntil: [String: Date] = [:]
        for name in situation.names {
            var rejections: [Date] = []
            for attempt in situation.attempts {
                if attempt.succeeded && attempt.nameList.contains(name) { break }
                if attempt.rejectedName == name { rejections.append(attempt.at) }
            }
            if let last = rejections.first {
                let retry = last.addingTimeInterval(backoff(afterFailures: rejections.count))
                if retry > now { heldUntil[name] = retry }
            }
        }
        let names = situation.names.filter { heldUntil[$0] == nil }
        var due =
            situation.certificate.flatMap { bundle in
                names.allSatisfy(bundle.covers) ? Self.renewalTime(of: bundle) : nil
            } ?? .distantPast
        let failures = situation.attempts.prefix { !$0.succeeded && $0.rejectedName == nil }
        if let last = failures.first, Set(last.nameList) == Set(names) {
            due = max(due, last.at.addingTimeInterval(backoff(afterFailures: failures.count)))
        }
        if names.isEmpty { due = .distantFuture }
        return Next(names: names, at: min(due, heldUntil.values.min() ?? .distantFuture))
    }

    /// Seconds to wait after `count` failures in a row.
    func backoff(afterFailures count: Int) -> TimeInterval {
        let first = Double(firstBackoff.components.seconds)
        let longest = Double(longestBackoff.components.seconds)
        return min(longest, first * pow(2, Double(min(max(count - 1, 0), 30))))
    }

    /// Two thirds through the lifetime, less up to a fifteenth of it: spread by a fraction drawn from the certificate
    /// itself, so that certificates issued together are not all renewed at once, and the same one always has the same.
    static func renewalTime(of bundle: CertificateBundle) -> Date {
        let lifetime = bundle.notValidAfter.timeIntervalSince(bundle.notValidBefore)
        let spread = Double(SHA256.hash(data: Data(bundle.chainPEM.utf8)).first { _ in true } ?? 0) / 256
        return bundle.notValidBefore.addingTimeInterval(lifetime * 2 / 3 - lifetime / 15 * spread)
    }
}
