// ACMEAccountKeys: the ACME account keys, one per CA, kept in a folder of the data directory. The same key finds the
// same account again, so the key is all that is kept of an account.
import Foundation

public struct ACMEAccountKeys: Sendable {
    public let folder: String

    public init(folder: String) { self.folder = folder }

    /// The account key for the ACME CA at `directory`, made and kept on first use: the same key is the same account.
    public func accountKey(for directory: String) throws -> AccountKey {
        // The CA's URL as a file name: its letters and digits, the rest as `_`.
        let name = String(
            directory.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) ? Character($0) : "_" }
        )
        let path = folder + "/" + name + ".pem"
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            return try AccountKey(pemRepresentation: text)
        }
        try FileManager.default.createDirectory(
            atPath: folder,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        let key = AccountKey()
        guard
            FileManager.default.createFile(
                atPath: path,
                contents: Data(key.pemRepresentation.utf8),
                attributes: [.posixPermissions: 0o600]
            )
        else { throw CertificateError.unreadable("the ACME account key at \(path)") }
        return key
    }
}
