// ConfigDefaults: app.json's `env` (Heroku's schema), the config vars an app declares it needs: a default value,
// a generated secret, or one the admin must set. Applied on an app's first deploy to the vars not set yet.
import Foundation
import SlipwayBasics

public struct ConfigDefault: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        /// `"value"`: this, unless set.
        case value(String)
        /// `"generator": "secret"`: a random value, made once.
        case secret
        /// Required (Heroku's default) with no value: the admin sets it, or the first deploy fails naming it.
        case required
        /// `"required": false` with no value: nothing to do.
        case optional
    }

    public var name: String
    public var source: Source
    public var description: String?

    /// 64 hex digits from the system's random source, as Heroku's secret generator makes.
    public static func secret() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }
}

public enum ConfigDefaults {
    /// More than any real app.json declares; keeps a hostile one from making the first deploy set thousands.
    static let maximumCount = 200
    /// A config value longer than this is no default anyone types.
    static let maximumValueBytes = 32 * 1024

    /// The `env` of the tree's app.json; none without one.
    public static func read(fromReleaseDirectory directory: String) throws(BuildError) -> [ConfigDefault] {
        guard let data = try PushedFile.read("app.json", in: directory) else { return [] }
        return try parse(appJSON: data)
    }

    public static func parse(appJSON data: Data) throws(BuildError) -> [ConfigDefault] {
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw .invalidAppJSON("it is not a JSON object")
        }
        guard let env = root["env"] else { return [] }
        guard let entries = env as? [String: Any] else {
            throw .invalidAppJSON("\"env\" must map config var names to values or objects")
        }
        guard entries.count <= maximumCount else {
            throw .invalidAppJSON("\"env\" declares \(entries.count) config vars; at most \(maximumCount) are taken")
        }
        return try entries.keys.sorted().map { name throws(BuildError) in
            let label = name.shortenedForOneLine
            guard name.isEnvironmentVariableName else {
                throw .invalidAppJSON("env: \"\(label)\" is not a config var name (letters, digits and _)")
            }
            switch entries[name] {
            case let value as String:
                return ConfigDefault(name: name, source: .value(try bounded(value, label)), description: nil)
            case let entry as [String: Any]:
                return try parse(entry, name: name, label: label)
            default:
                throw .invalidAppJSON("env: \"\(label)\" must be a string or an object")
            }
        }
    }

    private static func parse(_ entry: [String: Any], name: String, label: String) throws(BuildError) -> ConfigDefault {
        let description = (entry["description"] as? String)?.shortenedForOneLine
        if let value = entry["value"] {
            guard let value = value as? String else {
                throw .invalidAppJSON("env: \"\(label)\": \"value\" must be a string")
            }
            return ConfigDefault(name: name, source: .value(try bounded(value, label)), description: description)
        }
        if let generator = entry["generator"] {
            guard generator as? String == "secret" else {
                throw .invalidAppJSON("env: \"\(label)\": the only generator is \"secret\"")
            }
            return ConfigDefault(name: name, source: .secret, description: description)
        }
        let required: Bool
        switch entry["required"] {
        case nil: required = true
        // JSON true and false are NSNumbers of C type char (bool on Darwin); a number is not a flag.
        case let flag as NSNumber where ["c", "B"].contains(String(cString: flag.objCType)): required = flag.boolValue
        default: throw .invalidAppJSON("env: \"\(label)\": \"required\" must be true or false")
        }
        return ConfigDefault(name: name, source: required ? .required : .optional, description: description)
    }

    private static func bounded(_ value: String, _ label: String) throws(BuildError) -> String {
        guard value.utf8.count <= maximumValueBytes, !value.utf8.contains(0) else {
            throw .invalidAppJSON("env: \"\(label)\": the value must be at most 32 KiB, without NUL bytes")
        }
        return value
    }
}
