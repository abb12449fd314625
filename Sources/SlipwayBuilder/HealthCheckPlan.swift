// HealthCheckPlan: how a new web instance proves it is ready, read from app.json's
// `healthchecks.web` with Dokku's keys and meaning so apps written for Dokku work unchanged.
import Foundation

/// One HTTP check of a new instance.
public struct HealthCheck: Sendable, Equatable {
    public var name: String
    public var path: String
    /// Tries before the check fails.
    public var attempts: Int
    /// Pause between tries.
    public var wait: Duration
    /// Limit of one try.
    public var timeout: Duration
    public var initialDelay: Duration
    /// A substring the body must contain.
    public var content: String?
    /// Consecutive passes required (the default check wants two in a row).
    public var passesInARow: Int
    /// A limit on the whole check, however slow its tries (the default check's startup deadline).
    public var deadline: Duration?
    /// Dokku's `listening`: the check passes when the port accepts a TCP connection; no request is sent.
    public var listening = false
    /// The default check counts `426 Upgrade Required` as up: a WebSocket-only server answers a plain GET so.
    public var upgradeRequiredPasses = false
}

public struct HealthCheckPlan: Sendable, Equatable {
    public var checks: [HealthCheck]
    /// Keys Dokku knows and Slipway does not act on yet: shown to the pusher, never silently ignored.
    public var warnings: [String]
    /// True when the app configured nothing and the default check applies.
    public var isDefault: Bool

    /// With no configured check: GET / every second until two passes in a row (a 426 counts: a WebSocket-only
    /// server is up), within 120 s; its deadline, not a number of tries, bounds it.
    public static let standard = HealthCheckPlan(
        checks: [
            HealthCheck(
                name: "default",
                path: "/",
                attempts: .max,
                wait: .seconds(1),
                timeout: .seconds(5),
                initialDelay: .zero,
                content: nil,
                passesInARow: 2,
                deadline: .seconds(120),
                upgradeRequiredPasses: true
            )
        ],
        warnings: [],
        isDefault: true
    )

    private static let actedOn: Set<String> = [
        "type", "name", "description", "path", "attempts", "wait", "timeout", "initialDelay", "content", "scheme",
        "listening",
    ]
    private static let notYetActedOn: Set<String> = [
        "command", "uptime", "onFailure", "httpHeaders", "port", "warn",
    ]

    /// The plan of a checked-out release: its app.json, or the standard plan without one.
    public static func read(fromReleaseDirectory directory: String) throws(BuildError) -> HealthCheckPlan {
        guard let data = try PushedFile.read("app.json", in: directory) else { return .standard }
        return try parse(appJSON: data)
    }

    /// Reads app.json text; a missing `healthchecks.web` gives the standard plan.
    public static func parse(appJSON data: Data) throws(BuildError) -> HealthCheckPlan {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw .invalidAppJSON("it is not a JSON object")
        }
        guard let healthchecks = root["healthchecks"] else { return .standard }
        guard let byType = healthchecks as? [String: Any] else {
            throw .invalidAppJSON("\"healthchecks\" must map process types to lists of checks")
        }
        var warnings: [String] = []
        for type in byType.keys.sorted() where type != "web" {
            warnings.append("healthchecks for the \(type) process type are not run yet (only web is checked)")
        }
        guard let entries = byType["web"] else {
            return HealthCheckPlan(checks: standard.checks, warnings: warnings, isDefault: true)
        }
        guard let list = entries as? [[String: Any]] else {
            throw .invalidAppJSON("\"healthchecks.web\" must be a list of checks")
        }
        var checks: [HealthCheck] = []
        for (index, entry) in list.enumerated() {
            let label = ((entry["name"] as? String) ?? "check \(index + 1)").shortenedForOneLine
            for key in entry.keys.sorted() where !actedOn.contains(key) {
                guard notYetActedOn.contains(key) else {
                    throw .invalidAppJSON(
                        "healthchecks.web \"\(label)\" has the unknown key \"\(key.shortenedForOneLine)\""
                    )
                }
                warnings.append("healthchecks.web \"\(label)\": \"\(key)\" is accepted but not acted on yet")
            }
            let type = (entry["type"] as? String) ?? "startup"
            guard ["startup", "liveness", "readiness"].contains(type) else {
                throw .invalidAppJSON(
                    "healthchecks.web \"\(label)\" has the unknown type \"\(type.shortenedForOneLine)\""
                )
            }
            if type != "startup" {
                warnings.append("healthchecks.web \"\(label)\": \(type) checks are not run yet (startup checks are)")
                continue
            }
            if let scheme = entry["scheme"] as? String, scheme != "http" {
                warnings.append("healthchecks.web \"\(label)\": scheme \(scheme) is not supported; checking over http")
            }
            let path = (entry["path"] as? String) ?? "/"
            guard path.hasPrefix("/"), path.utf8.count <= 2048, path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                throw .invalidAppJSON(
                    "healthchecks.web \"\(label)\": \"path\" must start with / and be at most 2048 visible ASCII characters"
                )
            }
            checks.append(
                HealthCheck(
                    name: label,
                    path: path,
                    attempts: try number(entry, .attempts, label),
                    wait: .seconds(try number(entry, .wait, label)),
                    timeout: .seconds(try number(entry, .timeout, label)),
                    initialDelay: .seconds(try number(entry, .initialDelay, label)),
                    content: entry["content"] as? String,
                    passesInARow: 1,
                    deadline: nil,
                    listening: entry["listening"] as? Bool == true
                )
            )
            if checks.last?.listening == true, entry["content"] != nil || entry["path"] != nil {
                warnings.append(
                    "healthchecks.web \"\(label)\": a listening check only connects; its path and content are not used"
                )
            }
        }
        if checks.isEmpty { return HealthCheckPlan(checks: standard.checks, warnings: warnings, isDefault: true) }
        return HealthCheckPlan(checks: checks, warnings: warnings, isDefault: false)
    }

    /// The numeric keys of a check: Dokku's defaults, and the range Slipway accepts for each. An out-of-range
    /// value is refused, not clamped: a deploy must not wait an hour, or overflow a duration, on one typo.
    enum NumericKey: String, CaseIterable {
        case attempts, wait, timeout, initialDelay

        var defaultValue: Int {
            switch self {
            case .attempts: 3
            case .wait, .timeout: 5
            case .initialDelay: 0
            }
        }

        var range: ClosedRange<Int> {
            switch self {
            case .attempts: 1...100
            case .wait: 0...300
            case .timeout: 1...300
            case .initialDelay: 0...600
            }
        }

        var unit: String { self == .attempts ? "tries" : "seconds" }
    }

    private static func number(
        _ entry: [String: Any],
        _ key: NumericKey,
        _ label: String
    )
        throws(BuildError) -> Int
    {
        guard let raw = entry[key.rawValue] else { return key.defaultValue }
        // JSON true and false are NSNumbers too, of C type char (bool on Darwin): only a whole number in range is taken.
        guard let number = raw as? NSNumber, !["c", "B"].contains(String(cString: number.objCType)),
            let value = Int(exactly: number.doubleValue), key.range.contains(value)
        else {
            throw .invalidAppJSON(
                "healthchecks.web \"\(label)\": \"\(key.rawValue)\" is \(describe(raw)); it must be a whole number "
                    + "of \(key.unit) from \(key.range.lowerBound) to \(key.range.upperBound)"
            )
        }
        return value
    }

    /// A value from app.json as the pusher wrote it, shortened so one line stays one line.
    private static func describe(_ value: Any) -> String {
        let text =
            (try? JSONSerialization.data(withJSONObject: [value], options: [.fragmentsAllowed]))
            .map { String(decoding: $0.dropFirst().dropLast(), as: UTF8.self) } ?? "\(value)"
        return text.shortenedForOneLine
    }
}

extension String {
    /// A value a pusher wrote, cut short enough to quote in one line of an error.
    var shortenedForOneLine: String {
        let visible = String(unicodeScalars.map { $0.value < 0x20 ? " " : Character($0) })
        return visible.count > 60 ? String(visible.prefix(60)) + "…" : visible
    }
}
