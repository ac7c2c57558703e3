/*
 * A plain OpenSSL program (Debian's libcrypto, not Node's) that uses the signer engine the way
 * OpenSSL hosts do, for test/softhsm/tls-engine.test.ts: load it through the dynamic engine, sign,
 * free that ENGINE entirely, then find the engine again by its path and sign again. OpenSSL frees an
 * ENGINE's key methods with it, so the second signature shows the methods of the second ENGINE are
 * its own. Prints one line per signature: the RSA-PSS (SHA-256, salt 32) signature of "abc" in hex.
 * Usage: tls-engine-host <engine .so path> <key identifier>
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <stdio.h>
#include <string.h>

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

static int sign_abc(ENGINE *engine, const char *identifier)
{
    EVP_PKEY *key = ENGINE_load_private_key(engine, identifier, NULL, NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *ctx = NULL;
    unsigned char sig[1024];
    size_t len = sizeof sig;
    int ok = key != NULL && md != NULL && EVP_DigestSignInit(md, &ctx, EVP_sha256(), NULL, key) > 0 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0 && EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_DIGEST) > 0 &&
             EVP_DigestSign(md, sig, &len, (const unsigned char *)"abc", 3) > 0;
    if (ok) {
        for (size_t i = 0; i < len; i++)
            printf("%02x", sig[i]);
        printf("\n");
    } else {
        ERR_print_errors_fp(stderr);
    }
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    ENGINE *dynamic = ENGINE_by_id("dynamic");
    if (dynamic == NULL || !ENGINE_ctrl_cmd_string(dynamic, "SO_PATH", argv[1], 0) || !ENGINE_ctrl_cmd_string(dynamic, "LOAD", NULL, 0) ||
        !ENGINE_init(dynamic) || !sign_abc(dynamic, argv[2]))
        return 1;
    ENGINE_finish(dynamic);
    ENGINE_free(dynamic);
    /* Whatever was freed with that ENGINE gets reused now. */
    void *reuse[256];
    for (int i = 0; i < 256; i++)
        memset(reuse[i] = OPENSSL_malloc(256), 0x41, 256);
    ENGINE *listed = ENGINE_by_id(argv[1]);
    int ok = listed != NULL && ENGINE_init(listed) && sign_abc(listed, argv[2]);
    for (int i = 0; i < 256; i++)
        OPENSSL_free(reuse[i]);
    if (listed != NULL) {
        ENGINE_finish(listed);
        ENGINE_free(listed);
    }
    return ok ? 0 : 1;
}
