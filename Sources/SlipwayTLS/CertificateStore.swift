// CertificateStore: each app's certificate, given (`certs:add`) or got from the ACME CA, kept as files in a folder of
// the data directory: `<app>/fullchain.pem`, `<app>/privkey.pem` (0600 like everything there) and `<app>/source`.
import Foundation
import SlipwayBasics

public struct CertificateStore: Sendable {
    public let folder: String

    public init(folder: String) { self.folder = folder }

    private func chainPath(_ app: String) -> String { folder + "/" + app + "/fullchain.pem" }
    private func keyPath(_ app: String) -> String { folder + "/" + app + "/privkey.pem" }
    private func sourcePath(_ app: String) -> String { folder + "/" + app + "/source" }

    public func save(_ bundle: CertificateBundle, from source: CertificateSource, for app: String) throws {
        try FileManager.default.createDirectory(
            atPath: folder + "/" + app,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        for (path, text) in [
            (keyPath(app), bundle.keyPEM), (chainPath(app), bundle.chainPEM), (sourcePath(app), source.rawValue),
        ] {
            // Each file whole or not at all (a full disk throws, not a half key); the folder is 0700 meanwhile.
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
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

    /// Where the app's certificate came from (one kept before there were others was given).
    public func source(app: String) -> CertificateSource {
        (try? String(contentsOfFile: sourcePath(app), encoding: .utf8)).flatMap(CertificateSource.init) ?? .given
    }
}

public enum CertificateSource: String, Sendable {
    /// `certs:add`: the admin renews it.
    case given
    /// The ACME CA: Slipway renews it.
    case acme
}
