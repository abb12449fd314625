// Router: which app answers a Host, which UpstreamSet is live for each app, the atomic switch
// between sets, and the claim that ties every request to exactly one set.
import Synchronization

/// Host -> app -> live UpstreamSet. Readers see an immutable snapshot; changes replace it in one step.
public final class Router: Sendable {
    private let table = Mutex(RouteTable())

    /// A value, so a change is built aside and swapped in whole under the lock.
    private struct RouteTable {
        var appByHost: [String: String] = [:]
        var liveSets: [String: UpstreamSet] = [:]
        var inMaintenance: Set<String> = []
    }

    public init() {}

    /// Makes `hosts` (lowercased, no port) route to `app`, replacing the app's earlier hosts.
    /// An app with hosts but no live set answers 503.
    public func setHosts(_ hosts: [String], for app: String) {
        let normalized = hosts.map(Router.normalize(host:)).filter { !$0.isEmpty }
        table.withLock { table in
            var next = table
            next.appByHost = next.appByHost.filter { $0.value != app }
            for host in normalized { next.appByHost[host] = app }
            table = next
        }
    }

    /// While on, the app's hosts answer 503 with a maintenance page; its live set keeps running.
    public func setMaintenance(_ on: Bool, for app: String) {
        table.withLock { table in
            if on { table.inMaintenance.insert(app) } else { table.inMaintenance.remove(app) }
        }
    }

    /// The atomic switch: from now on every new request to the app's hosts claims `set`.
    /// Returns the set it replaced, for the caller to drain.
    @discardableResult
    public func activate(_ set: UpstreamSet, for app: String) -> UpstreamSet? {
        table.withLock { table in
            let replaced = table.liveSets[app]
            table.liveSets[app] = set
            return replaced
        }
    }

    /// Forgets the app and its hosts; returns its live set, if any, for the caller to drain.
    public func remove(app: String) -> UpstreamSet? {
        table.withLock { table in
            var next = table
            next.appByHost = next.appByHost.filter { $0.value != app }
            next.inMaintenance.remove(app)
            let removed = next.liveSets.removeValue(forKey: app)
            table = next
            return removed
        }
    }

    public func liveSet(for app: String) -> UpstreamSet? {
        table.withLock { $0.liveSets[app] }
    }

    /// Looks a Host header up without claiming anything (the version endpoint needs no upstream).
    func lookup(host: String) -> Route {
        let host = Router.normalize(host: host)
        return table.withLock { table in
            guard let app = table.appByHost[host] else { return .unknownHost(host) }
            guard let set = table.liveSets[app] else { return .noLiveRelease(app: app) }
            return .live(app: app, set: set)
        }
    }

    /// Picks the live set for a Host header and claims an upstream of it, under the lock `activate` takes:
    /// so a request belongs either to the set that is live after a switch or to the drain of the one before.
    func claim(host: String, onDrainDeadline cancel: @escaping @Sendable () -> Void) -> Claim {
        let host = Router.normalize(host: host)
        return table.withLock { table in
            guard let app = table.appByHost[host] else { return .unknownHost(host) }
            guard !table.inMaintenance.contains(app) else { return .maintenance(app: app) }
            guard let set = table.liveSets[app] else { return .noLiveRelease(app: app) }
            return .claimed(app: app, set.claim(onDrainDeadline: cancel))
        }
    }

    enum Route {
        case unknownHost(String)
        case noLiveRelease(app: String)
        case live(app: String, set: UpstreamSet)
    }

    enum Claim {
        case unknownHost(String)
        case noLiveRelease(app: String)
        case maintenance(app: String)
        case claimed(app: String, UpstreamClaim)
    }

    /// `Example.COM:8080` and `example.com.` both route as `example.com`; IPv6 literals keep their brackets.
    static func normalize(host: String) -> String {
        var host = host.trimmingWhitespace().lowercased()
        if host.hasPrefix("[") {
            if let close = host.firstIndex(of: "]") { host = String(host[...close]) }
        } else if let colon = host.lastIndex(of: ":") {
            host = String(host[..<colon])
        }
        while host.hasSuffix(".") { host.removeLast() }
        return host
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let trimmed = self.drop(while: { $0 == " " || $0 == "\t" })
        return String(trimmed.reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
