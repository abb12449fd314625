// TestCA: a private certificate authority made with the real openssl tool: a root, an intermediate it signs, and
// leaf certificates the intermediate signs for given host names, as PEM files in a folder.
import Foundation
import SlipwayBasics

public struct TestCA: Sendable {
    public let folder: String
    public var rootPath: String { folder + "/root.pem" }
    public var intermediatePath: String { folder + "/intermediate.pem" }

    public init(in folder: String) async throws {
        self.folder = folder
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n".write(
            toFile: folder + "/ca.ext",
            atomically: true,
            encoding: .utf8
        )
        try await openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", folder + "/root.key"])
        try await openssl([
            "req", "-x509", "-new", "-key", folder + "/root.key", "-subj", "/CN=Slipway Test Root", "-days", "30",
            "-out", rootPath,
        ])
        try await openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", folder + "/intermediate.key"])
        try await openssl([
            "req", "-new", "-key", folder + "/intermediate.key", "-subj", "/CN=Slipway Test Intermediate",
            "-out", folder + "/intermediate.csr",
        ])
        try await openssl([
            "x509", "-req", "-in", folder + "/intermediate.csr", "-CA", rootPath, "-CAkey", folder + "/root.key",
            "-CAcreateserial", "-days", "30", "-extfile", folder + "/ca.ext", "-out", intermediatePath,
        ])
    }

    /// A leaf's key: ECDSA P-256, or RSA 2048 as most given certificates still have.
    public enum KeyType: Sendable { case ecdsa, rsa }

    /// A leaf for `names`, signed by the intermediate: its own PEM, its key's path, and the full chain (leaf,
    /// intermediate and root) as one file's path.
    public func leaf(
        _ name: String,
        names: [String],
        key keyType: KeyType = .ecdsa
    ) async throws -> (certificate: String, key: String, fullChain: String) {
        let base = folder + "/" + name
        try ("subjectAltName=" + names.map { "DNS:" + $0 }.joined(separator: ",") + "\n").write(
            toFile: base + ".ext",
            atomically: true,
            encoding: .utf8
        )
        // PKCS#8, as certbot and most tools write keys.
        switch keyType {
        case .ecdsa:
            try await openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", base + ".ec.key"])
            try await openssl(["pkcs8", "-topk8", "-nocrypt", "-in", base + ".ec.key", "-out", base + ".key"])
        case .rsa:
            try await openssl([
                "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", base + ".key",
            ])
        }
        try await openssl(["req", "-new", "-key", base + ".key", "-subj", "/CN=\(names[0])", "-out", base + ".csr"])
        try await openssl([
            "x509", "-req", "-in", base + ".csr", "-CA", intermediatePath, "-CAkey", folder + "/intermediate.key",
            "-CAcreateserial", "-days", "10", "-extfile", base + ".ext", "-out", base + ".pem",
        ])
        let chain = try [base + ".pem", intermediatePath, rootPath].map {
            try String(contentsOfFile: $0, encoding: .utf8)
        }
        try chain.joined().write(toFile: base + ".fullchain.pem", atomically: true, encoding: .utf8)
        return (base + ".pem", base + ".key", base + ".fullchain.pem")
    }

    private func openssl(_ arguments: [String]) async throws {
        let made = try await run("openssl", arguments)
        guard made.status.succeeded else { throw TestCAError.openssl(arguments.first ?? "", made.output) }
    }
}

public enum TestCAError: Error {
    case openssl(String, String)
}
