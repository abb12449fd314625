#include "CSlipwayRSA.h"

#include <limits.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

int slipway_rsa_system_is_faster(void) {
#if defined(__x86_64__)
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned int ifma = 1u << 21, vl = 1u << 31;
    if ((ebx & (ifma | vl)) != (ifma | vl)) return 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 27))) return 0; /* OSXSAVE */
    unsigned int low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    return (low & 0xE6) == 0xE6; /* SSE, AVX and the three AVX-512 state components */
#else
    return 0;
#endif
}

struct slipway_rsa_key {
    EVP_PKEY *pkey;
};

// An encrypted key is refused rather than asked for on a terminal the daemon does not have.
static int no_passphrase(char *buffer, int size, int writing, void *user) {
    (void)buffer; (void)size; (void)writing; (void)user;
    return -1;
}

slipway_rsa_key *slipway_rsa_key_read(const char *pem, size_t length) {
    if (length > INT_MAX) return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)length);
    if (bio == NULL) return NULL;
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (pkey == NULL) return NULL;
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    slipway_rsa_key *key = OPENSSL_malloc(sizeof(*key));
    if (key == NULL) {
        EVP_PKEY_free(pkey);
        return NULL;
    }
    key->pkey = pkey;
    return key;
}

void slipway_rsa_key_free(slipway_rsa_key *key) {
    if (key == NULL) return;
    EVP_PKEY_free(key->pkey);
    OPENSSL_free(key);
}

size_t slipway_rsa_key_size(const slipway_rsa_key *key) { return (size_t)EVP_PKEY_get_size(key->pkey); }

size_t slipway_rsa_sign(const slipway_rsa_key *key, uint16_t scheme, const uint8_t *data, size_t length,
                        uint8_t *signature, size_t capacity) {
    const EVP_MD *md;
    int pss;
    switch (scheme) {
    case 0x0201: md = EVP_sha1(); pss = 0; break;
    case 0x0401: md = EVP_sha256(); pss = 0; break;
    case 0x0501: md = EVP_sha384(); pss = 0; break;
    case 0x0601: md = EVP_sha512(); pss = 0; break;
    case 0x0804: md = EVP_sha256(); pss = 1; break;
    case 0x0805: md = EVP_sha384(); pss = 1; break;
    case 0x0806: md = EVP_sha512(); pss = 1; break;
    default: return 0;
    }
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    if (context == NULL) return 0;
    size_t written = capacity;
    EVP_PKEY_CTX *operation = NULL;
    int ok = EVP_DigestSignInit(context, &operation, md, NULL, key->pkey) == 1;
    if (ok && pss) {
        ok = EVP_PKEY_CTX_set_rsa_padding(operation, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(operation, RSA_PSS_SALTLEN_DIGEST) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(operation, md) == 1;
    } else if (ok) {
        ok = EVP_PKEY_CTX_set_rsa_padding(operation, RSA_PKCS1_PADDING) == 1;
    }
    ok = ok && EVP_DigestSign(context, signature, &written, data, length) == 1;
    EVP_MD_CTX_free(context);
    return ok ? written : 0;
}

size_t slipway_rsa_decrypt_raw(const slipway_rsa_key *key, const uint8_t *data, size_t length, uint8_t *plain,
                               size_t capacity) {
    /* As BoringSSL: a ciphertext is exactly the modulus long, never a shorter number. */
    if (length != slipway_rsa_key_size(key)) return 0;
    EVP_PKEY_CTX *context = EVP_PKEY_CTX_new(key->pkey, NULL);
    if (context == NULL) return 0;
    size_t written = capacity;
    int ok = EVP_PKEY_decrypt_init(context) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(context, RSA_NO_PADDING) == 1 &&
             EVP_PKEY_decrypt(context, plain, &written, data, length) == 1;
    EVP_PKEY_CTX_free(context);
    return ok ? written : 0;
}
