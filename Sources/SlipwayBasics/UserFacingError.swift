// UserFacingError: the protocol every module's error enum conforms to. Its description is the
// one line a user sees: what happened and what to do.

/// An error whose `description` is a complete sentence for the person at the other end.
public protocol UserFacingError: Error, CustomStringConvertible, Sendable {}

/// A bug in Slipway rather than something the user did.
public struct InternalError: UserFacingError {
    public var what: String

    public init(_ what: String) { self.what = what }

    public var description: String { "internal error: \(what) (this is a bug in Slipway; please report it)" }
}

extension Error {
    /// The sentence to show for any error: ours carry their own, others are described as they are.
    public var userMessage: String {
        if let error = self as? any UserFacingError { return error.description }
        return String(describing: self)
    }
}
