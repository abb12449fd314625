#ifndef CSLIPWAY_RSA_H
#define CSLIPWAY_RSA_H

#include <stddef.h>
#include <stdint.h>

/// An RSA private key held by the system's OpenSSL (libcrypto 3), which signs RSA 2048 with AVX-512 IFMA where the
/// CPU has it: about twice as fast as the BoringSSL that swift-nio-ssl brings, and an RSA signature is most of the
/// cost of a full TLS handshake. Never changed after it is read, so any thread may sign with it (OpenSSL 3 allows
/// concurrent operations on one key).
typedef struct slipway_rsa_key slipway_rsa_key;

/// Whether OpenSSL 3 signs RSA faster than BoringSSL here: the CPU has AVX-512 IFMA and VL and the kernel saves
/// AVX-512 state, the conditions of OpenSSL's RSAZ AVX-512 code. Elsewhere both run the same AVX2 code, and
/// BoringSSL is a little faster.
int slipway_rsa_system_is_faster(void);

/// Reads a PEM private key. NULL when it cannot be read or is not an RSA key.
slipway_rsa_key *slipway_rsa_key_read(const char *pem, size_t length);

void slipway_rsa_key_free(slipway_rsa_key *key);

/// The size of the key's signatures in bytes.
size_t slipway_rsa_key_size(const slipway_rsa_key *key);

/// Hashes and signs `data` as the TLS signature scheme `scheme` asks (RFC 8446 4.2.3: rsa_pkcs1_* or
/// rsa_pss_rsae_*). Returns the signature's length, or 0 for an unknown scheme, a too small `signature` or a failure.
size_t slipway_rsa_sign(const slipway_rsa_key *key, uint16_t scheme, const uint8_t *data, size_t length,
                        uint8_t *signature, size_t capacity);

/// Raw RSA decryption (no padding), as TLS 1.2's RSA key exchange asks of a key. Returns the length, or 0.
size_t slipway_rsa_decrypt_raw(const slipway_rsa_key *key, const uint8_t *data, size_t length, uint8_t *plain,
                               size_t capacity);

#endif
