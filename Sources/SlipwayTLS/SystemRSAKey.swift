// SystemRSAKey: an RSA certificate's key signs with the system's OpenSSL instead of the BoringSSL inside
// swift-nio-ssl. A full handshake is mostly the server's one signature, and OpenSSL 3 signs RSA 2048 with AVX-512
// IFMA where the CPU has it, in about half of BoringSSL's time (`openssl speed rsa2048` beside the benchmarks'
// handshake cost). ECDSA keys stay with BoringSSL, which is as fast as OpenSSL for them.
import CSlipwayRSA
import NIOCore
import NIOSSL

// @unchecked: the only state is the OpenSSL key, read once in init and never changed after; OpenSSL 3 lets any
// number of threads sign with one key at once, and it is freed only in deinit, when no one can hold it.
final class SystemRSAKey: NIOSSLCustomPrivateKey, Hashable, @unchecked Sendable {
    private let key: OpaquePointer
    private let signatureSize: Int

    /// Nil when `pem` is not an RSA private key OpenSSL can read; that key is then served by BoringSSL.
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
        answer(on: channel) { output in
            data.withUnsafeReadableBytes { input in
                slipway_rsa_sign(
                    key,
                    algorithm.rawValue,
                    input.baseAddress,
                    input.count,
                    output.baseAddress,
                    output.count
                )
            }
        }
    }

    func decrypt(channel: any Channel, data: ByteBuffer) -> EventLoopFuture<ByteBuffer> {
        answer(on: channel) { output in
            data.withUnsafeReadableBytes { input in
                slipway_rsa_decrypt_raw(key, input.baseAddress, input.count, output.baseAddress, output.count)
            }
        }
    }

    /// Runs one key operation into a buffer of the key's size; a length of 0 is OpenSSL's failure.
    private func answer(
        on channel: any Channel,
        _ operation: (UnsafeMutableRawBufferPointer) -> Int
    ) -> EventLoopFuture<ByteBuffer> {
        var output = channel.allocator.buffer(capacity: signatureSize)
        let written = output.writeWithUnsafeMutableBytes(minimumWritableBytes: signatureSize) { buffer in
            operation(UnsafeMutableRawBufferPointer(rebasing: buffer[..<signatureSize]))
        }
        guard written > 0 else { return channel.eventLoop.makeFailedFuture(KeyOperationFailed()) }
        return channel.eventLoop.makeSucceededFuture(output)
    }

    static func == (lhs: SystemRSAKey, rhs: SystemRSAKey) -> Bool { lhs === rhs }
    func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}

/// OpenSSL refused a signature or decryption; the handshake fails with this and the connection closes.
struct KeyOperationFailed: Error, CustomStringConvertible {
    var description: String { "the system's OpenSSL could not use the certificate's RSA key for this handshake" }
}
