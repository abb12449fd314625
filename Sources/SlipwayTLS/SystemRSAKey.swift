// SystemRSAKey: an RSA certificate's key signs with the system's OpenSSL instead of the BoringSSL inside
// swift-nio-ssl, on CPUs where that is faster. A full handshake is mostly the server's one signature, and OpenSSL 3
// signs RSA 2048 with AVX-512 IFMA, which BoringSSL does not use: 242 µs against 561 µs here. Without IFMA, OpenSSL
// takes 575 µs, so BoringSSL keeps the key there. ECDSA keys always stay with BoringSSL.
import CSlipwayRSA
import NIOCore
import NIOSSL

// @unchecked: the only state is the OpenSSL key, read once in init and never changed after; OpenSSL 3 lets any
// number of threads sign with one key at once, and it is freed only in deinit, when no one can hold it.
final class SystemRSAKey: NIOSSLCustomPrivateKey, Hashable, @unchecked Sendable {
    private let key: OpaquePointer
    private let signatureSize: Int

    /// Whether this CPU lets OpenSSL sign RSA faster than BoringSSL.
    static let isFaster = slipway_rsa_system_is_faster() != 0

    /// The key to serve `pem` with: this one where it is faster and `pem` is an RSA key, else nil (BoringSSL's).
    static func serving(_ pem: String) -> NIOSSLPrivateKey? {
        guard isFaster, let key = SystemRSAKey(pem: pem) else { return nil }
        return NIOSSLPrivateKey(customPrivateKey: key)
    }

    /// Nil when `pem` is not an RSA private key OpenSSL can read without a passphrase.
    init?(pem: String) {
        guard let key = pem.utf8CString.withUnsafeBufferPointer({ slipway_rsa_key_read($0.baseAddress, $0.count - 1) })
        else { return nil }
        self.key = key
        self.signatureSize = slipway_rsa_key_size(key)
    }

    deinit { slipway_rsa_key_free(key) }

    let signatureAlgorithms: [SignatureAlgorithm] = [
        .rsaPssRsaeSha256, .rsaPssRsaeSha384, .rsaPssRsaeSha512,
        .rsaPkcs1Sha256, .rsaPkcs1Sha384, .rsaPkcs1Sha512, .rsaPkcs1Sha1,
    ]

    func sign(channel: any Channel, algorithm: SignatureAlgorithm, data: ByteBuffer) -> EventLoopFuture<ByteBuffer> {
        answer(on: channel, signature(algorithm, of: Array(data.readableBytesView)))
    }

    func decrypt(channel: any Channel, data: ByteBuffer) -> EventLoopFuture<ByteBuffer> {
        answer(on: channel, rawDecryption(of: Array(data.readableBytesView)))
    }

    /// `data` hashed and signed as the TLS signature scheme `algorithm` asks; nil if OpenSSL refused.
    func signature(_ algorithm: SignatureAlgorithm, of data: [UInt8]) -> [UInt8]? {
        operation { output in
            slipway_rsa_sign(key, algorithm.rawValue, data, data.count, output.baseAddress, output.count)
        }
    }

    /// Raw RSA decryption (TLS 1.2's RSA key exchange); nil if OpenSSL refused.
    func rawDecryption(of data: [UInt8]) -> [UInt8]? {
        operation { output in
            slipway_rsa_decrypt_raw(key, data, data.count, output.baseAddress, output.count)
        }
    }

    /// Runs one key operation into a buffer of the key's size; a length of 0 is OpenSSL's failure.
    private func operation(_ run: (UnsafeMutableBufferPointer<UInt8>) -> Int) -> [UInt8]? {
        var written = 0
        let output = [UInt8](unsafeUninitializedCapacity: signatureSize) { buffer, count in
            written = run(buffer)
            count = written
        }
        return written > 0 ? output : nil
    }

    private func answer(on channel: any Channel, _ bytes: [UInt8]?) -> EventLoopFuture<ByteBuffer> {
        guard let bytes else { return channel.eventLoop.makeFailedFuture(KeyOperationFailed()) }
        return channel.eventLoop.makeSucceededFuture(channel.allocator.buffer(bytes: bytes))
    }

    static func == (lhs: SystemRSAKey, rhs: SystemRSAKey) -> Bool { lhs === rhs }
    func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

/// OpenSSL refused a signature or decryption; the handshake fails with this and the connection closes.
struct KeyOperationFailed: Error, CustomStringConvertible {
    var description: String { "the system's OpenSSL could not use the certificate's RSA key for this handshake" }
}
