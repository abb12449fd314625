// Router: which app answers a Host, which UpstreamSet is live for each app, the atomic switch
// between sets, the claim that ties every request to exactly one set, and the watchers told of each switch.
import NIOHTTP1
import SlipwayTLS
import Synchronization

/// Host -> app -> live UpstreamSet. Readers see an immutable snapshot; changes replace it in one step.
public final class Router: Sendable {
    private let table = Mutex(RouteTable())

    /// How one app's requests are routed.
    private struct Route {
        let app: String
        var live: UpstreamSet?
        var inMaintenance = false
        /// Where the app's Slipway endpoints answer.
        var endpointPrefix = Router.defaultEndpointPrefix
        /// A cookie pins each client to one instance.
        var sticky = false
        var https = HTTPSPolicy.off
    }

    /// A value, so a change is built aside and swapped in whole under the lock.
    private struct RouteTable {
        var apps: [String: Route] = [:]
        var hostsByApp: [String: [String]] = [:]
        /// Each host's route, copied in: a request costs one lookup, and a change rewrites the app's hosts.
        var routeByHost: [String: Route] = [:]
        /// Per app, the open event streams and long polls waiting for its next release.
        var watchers: [String: [Int: ReleaseWatcher]] = [:]
        var nextWatcher = 0
        /// Where plain-HTTP requests are redirected to for apps that want HTTPS; nil: no HTTPS listener.
        var httpsPort: Int?
        /// The HTTP-01 challenges the ACME CA is checking now: token -> key authorization.
        var challenges: [String: String] = [:]

        /// Changes the app's route (making it if it is new) and every copy of it under its hosts.
        mutating func change(_ app: String, _ body: (inout Route) -> Void) {
            var route = apps[app] ?? Route(app: app)
            body(&route)
            apps[app] = route
            for host in hostsByApp[app] ?? [] { routeByHost[host] = route }
        }
    }

    /// Where the version endpoint, the event stream and client.js answer unless an app chose another path.
    public static let defaultEndpointPrefix = "/_slipway/"

    /// The cookie that pins a client of an app with sticky sessions to one instance of its live release.
    public static let stickyCookieName = "slipway_instance"

    public init() {}

    /// Makes `hosts` (lowercased, no port) route to `app`, replacing the app's earlier hosts and taking them
    /// from any other app that had them.
    /// An app with hosts but no live set answers 503.
    public func setHosts(_ hosts: [String], for app: String) {
        let normalized = hosts.map(Router.normalize(host:)).filter { !$0.isEmpty }
        table.withLock { table in
            var next = table
            for host in next.hostsByApp[app] ?? [] { next.routeByHost.removeValue(forKey: host) }
            for host in normalized {
                if let other = next.routeByHost[host]?.app, other != app {
                    next.hostsByApp[other]?.removeAll { $0 == host }
                }
            }
            next.hostsByApp[app] = normalized
            next.change(app) { _ in }
            table = next
        }
    }

    /// How the app's plain-HTTP requests are answered when it wants HTTPS (`proxy:https`).
    public func setHTTPSPolicy(_ policy: HTTPSPolicy, for app: String) {
        table.withLock { $0.change(app) { $0.https = policy } }
    }

    /// The port of the HTTPS listener, which redirects name.
    public func setHTTPSPort(_ port: Int?) {
        table.withLock { $0.httpsPort = port }
    }

    /// While on, the app's hosts answer 503 with a maintenance page; its live set keeps running.
    public func setMaintenance(_ on: Bool, for app: String) {
        table.withLock { $0.change(app) { $0.inMaintenance = on } }
    }

    /// The path under which the app's Slipway endpoints answer (requests under it never reach the app);
    /// nil puts them back at `defaultEndpointPrefix`.
    public func setEndpointPrefix(_ prefix: String?, for app: String) {
        table.withLock { $0.change(app) { $0.endpointPrefix = prefix ?? Router.defaultEndpointPrefix } }
    }

    /// While on, a cookie pins each client to the instance of the live release that first answered it; after a
    /// switch the client's next request pins it to an instance of the new release.
    public func setStickySessions(_ on: Bool, for app: String) {
        table.withLock { $0.change(app) { $0.sticky = on } }
    }

    /// The atomic switch: from now on every new request to the app's hosts claims `set`.
    /// Watchers hear of it when it brings another release. Returns the set it replaced, for the caller to drain.
    @discardableResult
    public func activate(_ set: UpstreamSet, for app: String) -> UpstreamSet? {
        let (replaced, watchers) = table.withLock { table in
            let replaced = table.apps[app]?.live
            table.change(app) { $0.live = set }
            let isNews = replaced?.release.release != set.release.release
            return (replaced, isNews ? Array(table.watchers[app, default: [:]].values) : [])
        }
        for watcher in watchers { watcher(.live(set.release)) }
        return replaced
    }

    /// At shutdown, once nothing new is accepted: requests in flight on every app's live set finish, for at most
    /// `timeout` (the rest are answered 504), and its WebSockets are closed at once, each with 1001 going away
    /// saying the server is restarting.
    public func finishInFlight(within timeout: Duration) async {
        let sets = table.withLock { $0.apps.values.compactMap(\.live) }
        await withTaskGroup(of: Void.self) { group in
            for set in sets {
                group.addTask { _ = await set.drain(timeout: timeout, webSocketWindow: .zero, because: .shutdown) }
            }
        }
    }

    /// Forgets the app and its hosts and ends its watches; returns its live set, if any, for the caller to drain.
    public func remove(app: String) -> UpstreamSet? {
        let (removed, watchers) = table.withLock { table in
            var next = table
            let route = next.apps.removeValue(forKey: app)
            for host in next.hostsByApp.removeValue(forKey: app) ?? [] { next.routeByHost.removeValue(forKey: host) }
            let watchers = next.watchers.removeValue(forKey: app)
            table = next
            return (route?.live, watchers)
        }
        for watcher in (watchers ?? [:]).values { watcher(.ended) }
        return removed
    }

    /// Tells `watcher` of every release that goes live for `app` from now on. The release live at this moment is
    /// read under the same lock as `activate`'s switch, so no switch falls between the two.
    func watch(app: String, _ watcher: @escaping ReleaseWatcher) -> (id: Int, live: ReleaseStamp?) {
        table.withLock { table in
            table.nextWatcher += 1
            table.watchers[app, default: [:]][table.nextWatcher] = watcher
            return (table.nextWatcher, table.apps[app]?.live?.release)
        }
    }

    /// How many clients wait to hear of the app's next release (event streams and long polls).
    func watching(app: String) -> Int {
        table.withLock { $0.watchers[app]?.count ?? 0 }
    }

    func unwatch(app: String, id: Int) {
        table.withLock { table in
            table.watchers[app]?.removeValue(forKey: id)
            if table.watchers[app]?.isEmpty == true { table.watchers.removeValue(forKey: app) }
        }
    }

    /// Ends every watch, so event streams and long polls finish when the proxy stops.
    func endWatches() {
        let watchers = table.withLock { table in
            defer { table.watchers.removeAll() }
            return table.watchers.values.flatMap(\.values)
        }
        for watcher in watchers { watcher(.ended) }
    }

    public func liveSet(for app: String) -> UpstreamSet? {
        table.withLock { $0.apps[app]?.live }
    }

    /// Picks the live set for a Host header and claims an upstream of it, under the lock `activate` takes:
    /// so a request belongs either to the set that is live after a switch or to the drain of the one before.
    /// A path under the app's endpoint prefix claims nothing: the proxy answers it itself, even in maintenance.
    /// For an app with sticky sessions, the client's pin cookie (`stickyCookie`, read only then) picks the instance.
    func claim(
        host: String,
        path: Substring,
        overTLS: Bool = false,
        stickyCookie: @autoclosure () -> Substring?,
        onDrainDeadline cutOff: DrainCutOff
    ) -> Claim {
        let host = Router.normalize(host: host)
        return table.withLock { table in
            if !overTLS, !table.challenges.isEmpty, path.utf8.starts(with: Router.acmeChallengePrefix.utf8),
                let answer = table.challenges[String(path.utf8.dropFirst(Router.acmeChallengePrefix.utf8.count))!]
            {
                return .challengeAnswer(answer)
            }
            guard let route = table.routeByHost[host] else { return .unknownHost(host) }
            let app = route.app
            // An ACME challenge is answered over plain HTTP, as its CA asks it.
            if !overTLS, route.https != .off, let port = table.httpsPort,
                !path.utf8.starts(with: Router.acmeChallengePrefix.utf8)
            {
                return .redirectToHTTPS(host: host, port: port)
            }
            // Compared as bytes: a prefix is ASCII, and Character comparison would cost every request.
            if path.utf8.starts(with: route.endpointPrefix.utf8) {
                let name = Substring(path.utf8.dropFirst(route.endpointPrefix.utf8.count))
                return .endpoint(app: app, name: String(name), live: route.live)
            }
            guard !route.inMaintenance else { return .maintenance(app: app) }
            guard let set = route.live else { return .noLiveRelease(app: app) }
            let hsts = overTLS ? route.https.strictTransportSecurity : nil
            guard route.sticky else {
                return .claimed(app: app, set.claim(pin: nil, sticky: false, onDrainDeadline: cutOff), hsts: hsts)
            }
            let pin = stickyCookie().flatMap(set.pinnedInstance(cookieValue:))
            return .claimed(app: app, set.claim(pin: pin, sticky: true, onDrainDeadline: cutOff), hsts: hsts)
        }
    }

    enum Claim {
        case unknownHost(String)
        case noLiveRelease(app: String)
        case maintenance(app: String)
        /// A Slipway endpoint (`version`, `events`, `client.js`) under the app's prefix.
        case endpoint(app: String, name: String, live: UpstreamSet?)
        /// `hsts`: the max-age of the `Strict-Transport-Security` its answers carry, if any.
        case claimed(app: String, UpstreamClaim, hsts: Int?)
        /// A plain-HTTP request of an app that wants HTTPS.
        case redirectToHTTPS(host: String, port: Int)
        /// The ACME CA checking a challenge: the key authorization is the answer.
        case challengeAnswer(String)
    }

    static let acmeChallengePrefix = "/.well-known/acme-challenge/"

    /// `Example.COM:8080` and `example.com.` both route as `example.com`; IPv6 literals keep their brackets.
    static func normalize(host: String) -> String {
        // Every request passes here: a host already in routing form (lowercase, no port, no trailing dot,
        // no spaces) is returned as it is, without a copy.
        if host.utf8.last != UInt8(ascii: "."),
            !host.utf8.contains(where: { $0 == UInt8(ascii: ":") || $0 <= 0x20 || (0x41...0x5A).contains($0) })
        {
            return host
        }
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

extension StringProtocol where UTF8View: BidirectionalCollection {
    /// Without the spaces and tabs at either end. Headers pass here on every request, so it works on the UTF-8
    /// bytes: spaces and tabs are single bytes, so the first byte kept starts a character, and the end is right
    /// after a character's last byte.
    func trimmingWhitespace() -> String {
        let bytes = utf8
        func isWhitespace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let first = bytes.firstIndex(where: { !isWhitespace($0) }),
            let last = bytes.lastIndex(where: { !isWhitespace($0) })
        else { return "" }
        return String(self[first..<bytes.index(after: last)])
    }
}

/// What an app wants of plain HTTP once it has HTTPS (`proxy:https`).
public enum HTTPSPolicy: Sendable, Equatable {
    /// Plain HTTP is answered as ever.
    case off
    /// Plain-HTTP requests are redirected to https with 308 (the ACME challenge path excepted).
    case redirect
    /// Redirected too, and answers over HTTPS carry `Strict-Transport-Security: max-age=N`.
    case only(maxAge: Int)

    var strictTransportSecurity: Int? {
        if case .only(let maxAge) = self { maxAge } else { nil }
    }
}

extension Router: HTTPChallengeResponder {
    public func answerChallenge(token: String, with keyAuthorization: String) {
        table.withLock { $0.challenges[token] = keyAuthorization }
    }

    public func withdrawChallenge(token: String) {
        _ = table.withLock { $0.challenges.removeValue(forKey: token) }
    }
}
