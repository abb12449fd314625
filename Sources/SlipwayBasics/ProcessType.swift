// ProcessType: the names of an app's process types (`web`, `worker`, `release`), as a Procfile declares them.

public enum ProcessType {
    /// ASCII letters, digits, `_` and `-`, as Heroku takes them: safe in a file or control group name.
    public static func isValidName(_ name: some StringProtocol) -> Bool {
        !name.isEmpty && name.count <= 63
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }
}
