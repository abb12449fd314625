// CertificateKeeper: with an ACME account set (`--acme-email`), every app gets a certificate for its hosts from the
// CA without a command: for a new app, a new domain, and at start; and it is renewed two thirds through its life
// (RenewalSchedule). A failure is recorded (`certs APP`, the daemon log) and tried again with backoff, while the
// certificate that still works keeps being served. An app with a given certificate (`certs:add`) is left alone.
import Foundation
import Logging
import SlipwayBasics
import SlipwayStore
import SlipwayTLS

public actor CertificateKeeper {
    let client: ACMEClient
    let deployer: Deployer
    let store: AppDatabase
    let kept: CertificateStore
    let served: ServedCertificates
    let responders: ChallengeResponders
    let schedule: RenewalSchedule
    let logger: Logger
    /// The pass loop's sleep, which `wake` ends early.
    private var sleeper: CheckedContinuation<Void, Never>?
    private var woken = false

    public init(
        client: ACMEClient,
        deployer: Deployer,
        store: AppDatabase,
        responders: ChallengeResponders,
        schedule: RenewalSchedule = RenewalSchedule(),
        logger: Logger
    ) {
        self.client = client
        self.deployer = deployer
        self.store = store
        self.kept = deployer.certificateStore
        self.served = deployer.certificates
        self.responders = responders
        self.schedule = schedule
        self.logger = logger
    }

    /// Passes over the apps until cancelled, each time sleeping until the next certificate is due (at most an
    /// hour, so that a clock jump is noticed) or an app's hosts change.
    public func run() async {
        while !Task.isCancelled {
            let next = await pass()
            await sleep(seconds: min(3600, max(1, next.timeIntervalSinceNow)))
        }
        await client.shutdown()
    }

    /// An app's hosts changed (or its certificate was taken away): look again now.
    public func wake() {
        if let sleeper {
            self.sleeper = nil
            sleeper.resume()
        } else {
            woken = true
        }
    }

    private func sleep(seconds: TimeInterval) async {
        guard !woken else {
            woken = false
            return
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: .seconds(seconds))
            await self?.wake()
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { sleeper = $0 }
        } onCancel: {
            Task { await self.wake() }
        }
        timer.cancel()
        woken = false
    }

    /// Asks for every certificate due now; returns when the next one is due.
    func pass() async -> Date {
        guard let apps = try? store.apps() else { return Date().addingTimeInterval(60) }
        var next = Date.distantFuture
        for app in apps where !Task.isCancelled {
            let name = app.appName
            guard let hosts = try? await deployer.hosts(of: name) else { continue }
            let names = ACMENames.eligible(hosts)
            let certificate = kept.load(app: name.rawValue)
            guard !names.isEmpty, isACMEs(name, certificate: certificate) else { continue }
            let attempts = (try? store.certificateAttempts(of: name)) ?? []
            let plan = schedule.next(.init(names: names, certificate: certificate, attempts: attempts), now: Date())
            guard plan.at <= Date() else {
                next = min(next, plan.at)
                continue
            }
            await attempt(name, names: plan.names)
            next = Date()  // the next pass works out when this app is due again
        }
        return next
    }

    /// Whether the app's certificate is the keeper's to get: it has none, or the one it has came from the CA (a given
    /// one is the admin's).
    private func isACMEs(_ app: AppName, certificate: CertificateBundle?) -> Bool {
        certificate == nil || kept.source(app: app.rawValue) == .acme
    }

    /// Asks for `names`; a name the CA could not check is recorded and left out, and the rest asked for again.
    private func attempt(_ app: AppName, names: [String]) async {
        var names = names
        while !names.isEmpty, !Task.isCancelled {
            let metadata: Logger.Metadata = [
                "app.name": "\(app)", "certificate.names": "\(names)", "acme.directory": "\(client.directoryURL)",
            ]
            logger.info("asking the ACME CA for a certificate", metadata: metadata)
            var outcome = CertificateAttempt(app: app, at: Date(), names: names, succeeded: false, message: "")
            do {
                let bundle = try await client.issue(for: names, answeringWith: responders)
                // Given one (or destroyed) meanwhile: the admin's word wins.
                guard (try? store.app(app)) != nil, isACMEs(app, certificate: kept.load(app: app.rawValue)) else {
                    return
                }
                try served.serve(bundle, for: app.rawValue)
                try kept.save(bundle, from: .acme, for: app.rawValue)
                outcome.succeeded = true
                outcome.message = "issued by \(bundle.issuer), expires \(bundle.notValidAfter.formatted(.iso8601))"
                logger.info(
                    "certificate issued",
                    metadata: metadata.merging(["certificate.expires": "\(bundle.notValidAfter)"]) { $1 }
                )
            } catch {
                // The daemon stopping cancelled the request: not the CA's failure.
                guard !Task.isCancelled else { return }
                outcome.message = error.userMessage
                if case ACMEError.validationFailed(let host, _, _) = error { outcome.rejectedName = host }
                logger.warning("\(error.userMessage)", metadata: metadata)
            }
            outcome.at = Date()
            do {
                try store.recordCertificateAttempt(outcome)
            } catch {
                logger.error("could not record a certificate attempt: \(error.userMessage)", metadata: metadata)
            }
            guard let rejected = outcome.rejectedName else { return }
            names.removeAll { $0 == rejected }
        }
    }
}

/// Which of an app's hosts a public CA can issue for: names with a dot, not `localhost` nor under it, not an address.
public enum ACMENames {
    public static func eligible(_ hosts: [String]) -> [String] {
        var seen = Set<String>()
        return hosts.filter { host in
            let labels = host.split(separator: ".")
            guard labels.count >= 2, labels.last != "localhost", !host.hasPrefix("*"),
                labels.last?.allSatisfy(\.isNumber) == false, !host.contains(":")
            else { return false }
            return seen.insert(host).inserted
        }
    }
}
