// AppName, ReleaseVersion and config var names: the identifiers users type, validated at the edge.

/// An app's name: also its repository name, its directory and its default host label.
public struct AppName: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
    public let rawValue: String

    public init(validating name: String) throws(NameError) {
        let bytes = Array(name.utf8)
        let isLower = { (byte: UInt8) in byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") }
        let isDigit = { (byte: UInt8) in byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        guard let first = bytes.first, isLower(first), bytes.count <= 30,
            bytes.allSatisfy({ isLower($0) || isDigit($0) || $0 == UInt8(ascii: "-") })
        else { throw .invalidAppName(name) }
        rawValue = name
    }

    public var description: String { rawValue }

    public static func < (lhs: AppName, rhs: AppName) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        try self.init(validating: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// A release number as users write it: `v3` or `3`.
public struct ReleaseVersion: Sendable, Hashable, CustomStringConvertible {
    public let number: Int

    public init(_ number: Int) { self.number = number }

    public init(parsing text: String) throws(NameError) {
        let digits = text.hasPrefix("v") ? text.dropFirst() : Substring(text)
        guard let number = Int(digits), number > 0 else { throw .invalidRelease(text) }
        self.number = number
    }

    public var description: String { "v\(number)" }
}

public enum NameError: UserFacingError {
    case invalidAppName(String)
    case invalidRelease(String)

    public var description: String {
        switch self {
        case .invalidAppName(let name):
            "invalid app name \"\(name)\": use 1-30 lowercase letters, digits and dashes, starting with a letter"
        case .invalidRelease(let text):
            "invalid release \"\(text)\": write it as v3 or 3"
        }
    }
}

extension String {
    /// A config var name that can be an environment variable: letters, digits and `_`, not starting with a digit.
    public var isEnvironmentVariableName: Bool {
        guard let first, first == "_" || (first.isASCII && first.isLetter) else { return false }
        return allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }
}
