// CertificateStore: the certificates given to apps (`certs:add`), kept as files in a folder of the data directory:
// `<app>/fullchain.pem` and `<app>/privkey.pem`, the key 0600 like everything there.
import Foundation
import SlipwayBasics

public struct CertificateStore: Sendable {
    public let folder: String

    public init(folder: String) { self.folder = folder }

    private func chainPath(_ app: String) -> String { folder + "/" + app + "/fullchain.pem" }
    private func keyPath(_ app: String) -> String { folder + "/" + app + "/privkey.pem" }

    public func save(_ bundle: CertificateBundle, for app: String) throws {
        try FileManager.default.createDirectory(
            atPath: folder + "/" + app,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        for (path, text) in [(keyPath(app), bundle.keyPEM), (chainPath(app), bundle.chainPEM)] {
            FileManager.default.createFile(
                atPath: path,
                contents: Data(text.utf8),
                attributes: [.posixPermissions: 0o600]
            )
        }
    }

    public func remove(app: String) {
        try? FileManager.default.removeItem(atPath: folder + "/" + app)
    }

    /// The app's certificate as kept, checked again (an expired one is still loaded: it is the app's until replaced).
    public func load(app: String) -> CertificateBundle? {
        guard let chain = try? String(contentsOfFile: chainPath(app), encoding: .utf8),
            let key = try? String(contentsOfFile: keyPath(app), encoding: .utf8)
        else { return nil }
        return try? CertificateBundle(chainPEM: chain, keyPEM: key, roots: [], checkingChainAndDates: false)
    }
}
