/*
 * xrd-signer-engine: an OpenSSL ENGINE whose private keys stay in the signer daemon.
 *
 * Why an engine: Node's TLS (the OpenSSL 3.0 inside the node binary) takes a private key from an
 * ENGINE through `privateKeyEngine` / `privateKeyIdentifier`, and the key's methods are where
 * OpenSSL asks for the handshake signature. This engine answers by sending the digest to the
 * signer daemon over its Unix socket (docs/signer-protocol.md, opcode 40 `sign`), so the process
 * doing TLS never holds the key or the PIN. docs/tls.md explains the choice.
 *
 * Built against the OpenSSL 3.0 headers and deliberately NOT linked with libcrypto: every OpenSSL
 * symbol resolves from the process that loads us (the node executable exports its bundled OpenSSL),
 * so the engine works on the same library instance that owns the SSL objects. Linked with
 * `-z nodelete`: OpenSSL keeps our error strings and key methods after the dynamic engine that
 * loaded us is freed, so the code behind them must never be unmapped.
 *
 * Key identifier (what `ENGINE_load_private_key` gets):
 *   socket=<signer socket path>;key=<key id, hex>;spki=<base64 SubjectPublicKeyInfo DER>[;timeout=<ms>]
 * The public key travels in the identifier so that loading the key needs no signer call.
 *
 * Private-key operations supported, each one signer request on a short-lived connection:
 *   RSA PKCS#1 v1.5 over SHA-256/384/512   -> SHA{256,384,512}withRSA (the signer adds DigestInfo)
 *   RSA-PSS, MGF1 = digest, salt = digest  -> SHA{256,384,512}withRSAandMGF1 (rsa_pss_rsae_* in TLS)
 *   ECDSA over a 32/48/64-byte digest      -> SHA{256,384,512}withECDSA (DER signature)
 * Everything else (raw RSA, decryption, SHA-1) fails with a coded OpenSSL error; the TLS options in
 * src/tls/auth-key-tls.ts restrict the signature algorithms so OpenSSL never asks for those.
 *
 * The call is synchronous: OpenSSL's sign callback has no way to yield. It is bounded by the
 * timeout (default 2000 ms), which is also sent to the daemon as the request deadline, and for 5 s
 * after a signer missed one, by 100 ms (see HUNG_BACKOFF_MS).
 */
#define _GNU_SOURCE /* dladdr */
#define OPENSSL_SUPPRESS_DEPRECATED /* ENGINE and the RSA/EC_KEY method APIs are deprecated in 3.0 */

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <poll.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

static const char ENGINE_ID[] = "xrd-signer";
static const char ENGINE_NAME[] = "X-Road signer daemon keys (private key operations in the signer)";

#define DEFAULT_TIMEOUT_MS 2000
/* The daemon answers RequestTimeout itself at the deadline; we wait this much longer for that answer. */
#define ANSWER_GRACE_MS 250
#define MAX_ANSWER (64 * 1024)
#define PROTOCOL_VERSION 1
#define KIND_REQUEST 0
#define KIND_RESPONSE 1
#define KIND_ERROR 2
#define OPCODE_SIGN 40

typedef struct {
    char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char key_id[129];
    int timeout_ms;
} xrd_key;

/* Reasons of our OpenSSL error library; src/tls/auth-key-tls.ts reads the texts back. */
enum {
    R_BAD_IDENTIFIER = 100,
    R_SIGNER_UNREACHABLE,
    R_SIGNER_TIMEOUT,
    R_SIGNER_REFUSED,
    R_BAD_ANSWER,
    R_UNSUPPORTED,
    R_INTERNAL,
};

static ERR_STRING_DATA error_strings[] = {
    {0, "xrd signer engine"},
    {R_BAD_IDENTIFIER, "invalid key identifier"},
    {R_SIGNER_UNREACHABLE, "signer unreachable"},
    {R_SIGNER_TIMEOUT, "signer did not answer in time"},
    {R_SIGNER_REFUSED, "signer refused to sign"},
    {R_BAD_ANSWER, "malformed signer answer"},
    {R_UNSUPPORTED, "operation not supported by the signer"},
    {R_INTERNAL, "internal error"},
    {0, NULL},
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int initialised;
static int err_lib;
static int rsa_index = -1;
static int ec_index = -1;
static RSA_METHOD *rsa_method;
static EC_KEY_METHOD *ec_method;
static int engine_index = -1;
static pthread_mutex_t pkey_method_lock = PTHREAD_MUTEX_INITIALIZER;
static int (*default_rsa_pkey_sign_init)(EVP_PKEY_CTX *);
static int (*default_rsa_pkey_sign)(EVP_PKEY_CTX *, unsigned char *, size_t *, const unsigned char *, size_t);

static void raise_error(int reason, int line, const char *func, const char *fmt, ...)
{
    va_list args;
    ERR_new();
    ERR_set_debug("xrd-signer-engine.c", line, func);
    va_start(args, fmt);
    ERR_vset_error(err_lib, reason, fmt, args);
    va_end(args);
}
#define FAIL(reason, ...) raise_error(reason, __LINE__, __func__, __VA_ARGS__)

/* ---- the signer call ---------------------------------------------------------------------- */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 ready, 0 deadline passed, -1 error (errno set). */
static int wait_for(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/*
 * After the signer at a socket missed a deadline, calls to it for the next HUNG_BACKOFF_MS wait at
 * most HUNG_PROBE_MS: a hung signer then stalls the event loop for one full timeout, not for one
 * per handshake attempted, and a signer that has recovered is used again at once.
 */
#define HUNG_BACKOFF_MS 5000
#define HUNG_PROBE_MS 100
static pthread_mutex_t hung_lock = PTHREAD_MUTEX_INITIALIZER;
static char hung_socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
static long long hung_until;

/* One signer call: its deadline and whether it ran out. */
typedef struct {
    const xrd_key *key;
    int timeout_ms;
    int shortened;
    long long deadline;
    int timed_out;
} signer_call;

static void start_call(signer_call *call, const xrd_key *key)
{
    pthread_mutex_lock(&hung_lock);
    int recently_hung = strcmp(hung_socket, key->socket_path) == 0 && now_ms() < hung_until;
    pthread_mutex_unlock(&hung_lock);
    call->key = key;
    call->shortened = recently_hung && key->timeout_ms > HUNG_PROBE_MS;
    call->timeout_ms = call->shortened ? HUNG_PROBE_MS : key->timeout_ms;
    call->deadline = now_ms() + call->timeout_ms + ANSWER_GRACE_MS;
    call->timed_out = 0;
}

static void end_call(const signer_call *call, int answered)
{
    pthread_mutex_lock(&hung_lock);
    if (call->timed_out) {
        strcpy(hung_socket, call->key->socket_path);
        hung_until = now_ms() + HUNG_BACKOFF_MS;
    } else if (answered && strcmp(hung_socket, call->key->socket_path) == 0) {
        hung_until = 0;
    }
    pthread_mutex_unlock(&hung_lock);
}

static void fail_timeout(signer_call *call, const char *what)
{
    call->timed_out = 1;
    FAIL(R_SIGNER_TIMEOUT, "%s within %d ms%s", what, call->timeout_ms,
         call->shortened ? " (shortened: the signer missed a deadline less than 5 s ago)" : "");
}

static int connect_signer(signer_call *call)
{
    const char *path = call->key->socket_path;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        FAIL(R_INTERNAL, "socket: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0)
            return fd;
        /* A full listen backlog answers EAGAIN on a non-blocking Unix socket: retry until the deadline. */
        if ((errno == EAGAIN || errno == EINTR) && now_ms() < call->deadline) {
            poll(NULL, 0, 2);
            continue;
        }
        break;
    }
    if (errno == EAGAIN)
        fail_timeout(call, "connection not accepted");
    else
        FAIL(R_SIGNER_UNREACHABLE, "connect %s: %s", path, strerror(errno));
    close(fd);
    return -1;
}

static int send_all(signer_call *call, int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            FAIL(R_SIGNER_UNREACHABLE, "send: %s", strerror(errno));
            return 0;
        }
        int w = wait_for(fd, POLLOUT, call->deadline);
        if (w == 0) {
            fail_timeout(call, "request not taken");
            return 0;
        }
        if (w < 0) {
            FAIL(R_SIGNER_UNREACHABLE, "poll: %s", strerror(errno));
            return 0;
        }
    }
    return 1;
}

static int recv_all(signer_call *call, int fd, unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0) {
            FAIL(R_SIGNER_UNREACHABLE, "signer closed the connection before answering");
            return 0;
        }
        if (errno != EAGAIN && errno != EINTR) {
            FAIL(R_SIGNER_UNREACHABLE, "recv: %s", strerror(errno));
            return 0;
        }
        int w = wait_for(fd, POLLIN, call->deadline);
        if (w == 0) {
            fail_timeout(call, "no answer");
            return 0;
        }
        if (w < 0) {
            FAIL(R_SIGNER_UNREACHABLE, "poll: %s", strerror(errno));
            return 0;
        }
    }
    return 1;
}

/*
 * The JSON string value of `"name":"..."` in a flat object, copied with escapes as they are (our
 * values are base64, codes and messages). Returns the length or -1.
 */
static int json_string(const char *json, const char *name, char *out, size_t outmax)
{
    char pattern[32];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", name);
    const char *p = strstr(json, pattern);
    if (p == NULL)
        return -1;
    p += strlen(pattern);
    size_t n = 0;
    while (*p != '\0' && *p != '"') {
        if (*p == '\\' && p[1] != '\0') {
            if (n + 1 < outmax)
                out[n++] = *p;
            p++;
        }
        if (n + 1 < outmax)
            out[n++] = *p;
        p++;
    }
    if (*p != '"')
        return -1;
    out[n] = '\0';
    return (int)n;
}

static int base64_decode(const char *in, unsigned char *out, size_t outmax)
{
    size_t len = strlen(in);
    if (len == 0 || len % 4 != 0)
        return -1;
    /* EVP_DecodeBlock writes (and counts) the bytes '=' padding stands for, so it gets its own buffer. */
    size_t padding = (in[len - 1] == '=') + (in[len - 2] == '=');
    if (len / 4 * 3 - padding > outmax)
        return -1;
    unsigned char *decoded = OPENSSL_malloc(len / 4 * 3);
    if (decoded == NULL)
        return -1;
    int n = EVP_DecodeBlock(decoded, (const unsigned char *)in, (int)len);
    if (n >= 0) {
        n -= (int)padding;
        memcpy(out, decoded, (size_t)n);
    }
    OPENSSL_free(decoded);
    return n;
}

/*
 * Asks the signer to sign `digest` with the key; writes at most `outmax` bytes of signature.
 * On failure an error is on the OpenSSL queue and 0 is returned.
 */
static int signer_sign(const xrd_key *key, const char *algorithm, const unsigned char *digest, size_t digest_len,
                       unsigned char *out, size_t *out_len, size_t outmax)
{
    char digest_b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    if (digest_len > EVP_MAX_MD_SIZE) {
        FAIL(R_UNSUPPORTED, "digest of %zu bytes", digest_len);
        return 0;
    }
    EVP_EncodeBlock((unsigned char *)digest_b64, digest, (int)digest_len);

    unsigned char request[512];
    int body_len = snprintf((char *)request + 16, sizeof request - 16, "{\"keyId\":\"%s\",\"algorithm\":\"%s\",\"digest\":\"%s\"}",
                            key->key_id, algorithm, digest_b64);
    if (body_len < 0 || (size_t)body_len >= sizeof request - 16) {
        FAIL(R_INTERNAL, "request too long");
        return 0;
    }
    static unsigned int next_id;
    unsigned int request_id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
    unsigned int frame_len = 12 + (unsigned int)body_len;
    signer_call call;
    start_call(&call, key);
    unsigned int timeout = (unsigned int)call.timeout_ms;
    unsigned char *h = request;
    h[0] = frame_len >> 24, h[1] = frame_len >> 16, h[2] = frame_len >> 8, h[3] = frame_len;
    h[4] = PROTOCOL_VERSION, h[5] = KIND_REQUEST;
    h[6] = request_id >> 24, h[7] = request_id >> 16, h[8] = request_id >> 8, h[9] = request_id;
    h[10] = OPCODE_SIGN >> 8, h[11] = OPCODE_SIGN & 0xff;
    h[12] = timeout >> 24, h[13] = timeout >> 16, h[14] = timeout >> 8, h[15] = timeout;

    int fd = connect_signer(&call);
    if (fd < 0) {
        end_call(&call, 0);
        return 0;
    }

    int ok = 0, answered = 0;
    char *answer = NULL;
    unsigned char header[16];
    if (!send_all(&call, fd, request, 16 + (size_t)body_len) || !recv_all(&call, fd, header, sizeof header))
        goto done;
    unsigned int answer_len = ((unsigned int)header[0] << 24 | header[1] << 16 | header[2] << 8 | header[3]);
    unsigned int answer_id = ((unsigned int)header[6] << 24 | header[7] << 16 | header[8] << 8 | header[9]);
    if (answer_len < 12 || answer_len - 12 > MAX_ANSWER || header[4] != PROTOCOL_VERSION) {
        FAIL(R_BAD_ANSWER, "frame of %u bytes, version %u", answer_len, header[4]);
        goto done;
    }
    size_t body = answer_len - 12;
    answer = OPENSSL_malloc(body + 1);
    if (answer == NULL || !recv_all(&call, fd, (unsigned char *)answer, body))
        goto done;
    answer[body] = '\0';
    answered = 1;

    if (header[5] == KIND_ERROR) {
        /* {"code":"TokenNotActive","faultCode":"Signer.TokenNotActive","message":"..."} */
        char code[64], message[512];
        if (json_string(answer, "code", code, sizeof code) < 0)
            strcpy(code, "Unknown");
        if (json_string(answer, "message", message, sizeof message) < 0)
            message[0] = '\0';
        FAIL(R_SIGNER_REFUSED, "code=%s key=%s: %s", code, key->key_id, message);
        /* The daemon answered its own deadline: as slow for the event loop as no answer. */
        call.timed_out = strcmp(code, "RequestTimeout") == 0;
        goto done;
    }
    if (header[5] != KIND_RESPONSE || answer_id != request_id) {
        FAIL(R_BAD_ANSWER, "kind %u for request %u (sent %u)", header[5], answer_id, request_id);
        goto done;
    }
    char signature_b64[2048];
    int n = json_string(answer, "signature", signature_b64, sizeof signature_b64);
    int sig_len = n < 0 ? -1 : base64_decode(signature_b64, out, outmax);
    if (sig_len <= 0) {
        FAIL(R_BAD_ANSWER, "no signature of at most %zu bytes in the answer", outmax);
        goto done;
    }
    *out_len = (size_t)sig_len;
    ok = 1;
done:
    end_call(&call, answered);
    OPENSSL_free(answer);
    close(fd);
    return ok;
}

/* ---- key methods -------------------------------------------------------------------------- */

static const char *rsa_pkcs1_algorithm(int md_nid)
{
    switch (md_nid) {
    case NID_sha256: return "SHA256withRSA";
    case NID_sha384: return "SHA384withRSA";
    case NID_sha512: return "SHA512withRSA";
    default: return NULL;
    }
}

static const char *rsa_pss_algorithm(int md_nid)
{
    switch (md_nid) {
    case NID_sha256: return "SHA256withRSAandMGF1";
    case NID_sha384: return "SHA384withRSAandMGF1";
    case NID_sha512: return "SHA512withRSAandMGF1";
    default: return NULL;
    }
}

static const char *ecdsa_algorithm(int digest_len)
{
    switch (digest_len) {
    case 32: return "SHA256withECDSA";
    case 48: return "SHA384withECDSA";
    case 64: return "SHA512withECDSA";
    default: return NULL;
    }
}

/* RSA_sign() hook: PKCS#1 v1.5 over a digest; `type` is the digest's NID. */
static int rsa_sign(int type, const unsigned char *m, unsigned int m_len, unsigned char *sigret, unsigned int *siglen,
                    const RSA *rsa)
{
    const xrd_key *key = RSA_get_ex_data(rsa, rsa_index);
    const char *algorithm = rsa_pkcs1_algorithm(type);
    if (key == NULL) {
        FAIL(R_INTERNAL, "RSA key without a signer binding");
        return 0;
    }
    if (algorithm == NULL) {
        FAIL(R_UNSUPPORTED, "PKCS#1 v1.5 with digest %s", OBJ_nid2sn(type));
        return 0;
    }
    size_t len = 0;
    if (!signer_sign(key, algorithm, m, m_len, sigret, &len, (size_t)RSA_size(rsa)))
        return 0;
    *siglen = (unsigned int)len;
    return 1;
}

static int rsa_private_refused(int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int padding)
{
    (void)flen, (void)from, (void)to, (void)rsa;
    FAIL(R_UNSUPPORTED, "raw RSA private-key operation (padding %d); the signer only signs digests", padding);
    return -1;
}

/*
 * EVP_PKEY_sign() for our RSA keys: RSA-PSS goes to the signer as SHA*withRSAandMGF1 (OpenSSL's
 * own PSS path would pad here and ask for a raw RSA operation, which the signer does not offer);
 * PKCS#1 v1.5 takes OpenSSL's path, which ends in rsa_sign above.
 */
static int rsa_pkey_sign(EVP_PKEY_CTX *ctx, unsigned char *sig, size_t *siglen, const unsigned char *tbs, size_t tbslen)
{
    EVP_PKEY *pkey = EVP_PKEY_CTX_get0_pkey(ctx);
    const RSA *rsa = pkey == NULL ? NULL : EVP_PKEY_get0_RSA(pkey);
    int padding = 0;
    if (rsa == NULL || EVP_PKEY_CTX_get_rsa_padding(ctx, &padding) <= 0 || padding != RSA_PKCS1_PSS_PADDING)
        return default_rsa_pkey_sign(ctx, sig, siglen, tbs, tbslen);

    size_t size = (size_t)RSA_size(rsa);
    if (sig == NULL) {
        *siglen = size;
        return 1;
    }
    const xrd_key *key = RSA_get_ex_data(rsa, rsa_index);
    const EVP_MD *md = NULL, *mgf1 = NULL;
    int salt = 0;
    if (key == NULL || EVP_PKEY_CTX_get_signature_md(ctx, &md) <= 0 || md == NULL ||
        EVP_PKEY_CTX_get_rsa_mgf1_md(ctx, &mgf1) <= 0 || mgf1 == NULL ||
        EVP_PKEY_CTX_get_rsa_pss_saltlen(ctx, &salt) <= 0) {
        FAIL(R_INTERNAL, "cannot read the PSS parameters");
        return -1;
    }
    const char *algorithm = rsa_pss_algorithm(EVP_MD_get_type(md));
    if (algorithm == NULL || EVP_MD_get_type(mgf1) != EVP_MD_get_type(md) ||
        (salt != RSA_PSS_SALTLEN_DIGEST && salt != EVP_MD_get_size(md)) || tbslen != (size_t)EVP_MD_get_size(md)) {
        FAIL(R_UNSUPPORTED, "RSA-PSS with %s, MGF1 %s, salt %d (the signer does digest = MGF1 digest, salt = digest length)",
             OBJ_nid2sn(EVP_MD_get_type(md)), OBJ_nid2sn(EVP_MD_get_type(mgf1)), salt);
        return -1;
    }
    if (*siglen < size) {
        FAIL(R_INTERNAL, "signature buffer of %zu bytes for a %zu-byte signature", *siglen, size);
        return -1;
    }
    return signer_sign(key, algorithm, tbs, tbslen, sig, siglen, size) ? 1 : -1;
}

static int ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig, unsigned int *siglen,
                   const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey)
{
    (void)type, (void)kinv, (void)r;
    const xrd_key *key = EC_KEY_get_ex_data(eckey, ec_index);
    const char *algorithm = ecdsa_algorithm(dlen);
    if (key == NULL) {
        FAIL(R_INTERNAL, "EC key without a signer binding");
        return 0;
    }
    if (algorithm == NULL) {
        FAIL(R_UNSUPPORTED, "ECDSA over a %d-byte digest", dlen);
        return 0;
    }
    size_t len = 0;
    if (!signer_sign(key, algorithm, dgst, (size_t)dlen, sig, &len, (size_t)ECDSA_size(eckey)))
        return 0;
    *siglen = (unsigned int)len;
    return 1;
}

static ECDSA_SIG *ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey)
{
    unsigned char der[256];
    unsigned int len = 0;
    if ((size_t)ECDSA_size(eckey) > sizeof der) {
        FAIL(R_UNSUPPORTED, "curve too large");
        return NULL;
    }
    if (!ec_sign(0, dgst, dlen, der, &len, kinv, r, eckey))
        return NULL;
    const unsigned char *p = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, len);
    if (s == NULL)
        FAIL(R_BAD_ANSWER, "ECDSA signature is not DER");
    return s;
}

/* ---- per-key data: freed and copied with the RSA / EC_KEY that carries it --------------------- */

static void key_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    OPENSSL_free(ptr);
}

static int key_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from, void **from_d, int idx, long argl, void *argp)
{
    (void)to, (void)from, (void)idx, (void)argl, (void)argp;
    if (*from_d == NULL)
        return 1;
    void *copy = OPENSSL_memdup(*from_d, sizeof(xrd_key));
    if (copy == NULL)
        return 0;
    *from_d = copy;
    return 1;
}

/* ---- identifier and key loading ----------------------------------------------------------- */

static int hex_only(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
            return 0;
    return 1;
}

/* Parses the identifier into `key`; the SPKI DER goes to a new buffer in *spki. */
static int parse_identifier(const char *id, xrd_key *key, unsigned char **spki, int *spki_len)
{
    char *copy = OPENSSL_strdup(id);
    char *spki_b64 = NULL;
    int ok = 0;
    if (copy == NULL)
        return 0;
    key->timeout_ms = DEFAULT_TIMEOUT_MS;
    for (char *save = NULL, *part = strtok_r(copy, ";", &save); part != NULL; part = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(part, '=');
        if (eq == NULL) {
            FAIL(R_BAD_IDENTIFIER, "'%s' is not name=value", part);
            goto done;
        }
        *eq = '\0';
        const char *value = eq + 1;
        if (strcmp(part, "socket") == 0) {
            if (value[0] != '/' || strlen(value) >= sizeof key->socket_path) {
                FAIL(R_BAD_IDENTIFIER, "socket must be an absolute path shorter than %zu bytes", sizeof key->socket_path);
                goto done;
            }
            strcpy(key->socket_path, value);
        } else if (strcmp(part, "key") == 0) {
            if (value[0] == '\0' || strlen(value) >= sizeof key->key_id || !hex_only(value)) {
                FAIL(R_BAD_IDENTIFIER, "key must be the key id in hex");
                goto done;
            }
            strcpy(key->key_id, value);
        } else if (strcmp(part, "spki") == 0) {
            spki_b64 = OPENSSL_strdup(value);
        } else if (strcmp(part, "timeout") == 0) {
            char *end = NULL;
            long t = strtol(value, &end, 10);
            if (end == value || *end != '\0' || t < 1 || t > 300000) {
                FAIL(R_BAD_IDENTIFIER, "timeout must be 1..300000 ms");
                goto done;
            }
            key->timeout_ms = (int)t;
        } else {
            FAIL(R_BAD_IDENTIFIER, "unknown field '%s'", part);
            goto done;
        }
    }
    if (key->socket_path[0] == '\0' || key->key_id[0] == '\0' || spki_b64 == NULL) {
        FAIL(R_BAD_IDENTIFIER, "socket=, key= and spki= are required");
        goto done;
    }
    size_t max = strlen(spki_b64) / 4 * 3 + 3;
    *spki = OPENSSL_malloc(max);
    *spki_len = *spki == NULL ? -1 : base64_decode(spki_b64, *spki, max);
    if (*spki_len <= 0) {
        FAIL(R_BAD_IDENTIFIER, "spki is not base64");
        goto done;
    }
    ok = 1;
done:
    OPENSSL_free(spki_b64);
    OPENSSL_free(copy);
    return ok;
}

static EVP_PKEY *load_private_key(ENGINE *engine, const char *id, UI_METHOD *ui, void *callback_data)
{
    (void)ui, (void)callback_data;
    xrd_key *key = OPENSSL_zalloc(sizeof *key);
    unsigned char *spki = NULL;
    int spki_len = 0;
    EVP_PKEY *pkey = NULL, *probe = NULL;
    if (key == NULL || !parse_identifier(id, key, &spki, &spki_len))
        goto fail;

    const unsigned char *p = spki;
    probe = d2i_PUBKEY(NULL, &p, spki_len);
    if (probe == NULL) {
        FAIL(R_BAD_IDENTIFIER, "spki is not a SubjectPublicKeyInfo");
        goto fail;
    }
    pkey = EVP_PKEY_new();
    if (pkey == NULL)
        goto fail;
    p = spki;
    switch (EVP_PKEY_get_base_id(probe)) {
    case EVP_PKEY_RSA: {
        RSA *rsa = d2i_RSA_PUBKEY(NULL, &p, spki_len);
        if (rsa == NULL)
            goto fail;
        RSA_set_ex_data(rsa, rsa_index, key);
        key = NULL; /* owned by rsa from here */
        if (!RSA_set_method(rsa, rsa_method) || !EVP_PKEY_assign(pkey, EVP_PKEY_RSA, rsa)) {
            RSA_free(rsa);
            goto fail;
        }
        /* Our EVP_PKEY method (PSS through the signer) applies to keys that name this engine. */
        if (!EVP_PKEY_set1_engine(pkey, engine))
            goto fail;
        break;
    }
    case EVP_PKEY_EC: {
        EC_KEY *ec = d2i_EC_PUBKEY(NULL, &p, spki_len);
        if (ec == NULL)
            goto fail;
        EC_KEY_set_ex_data(ec, ec_index, key);
        key = NULL;
        if (!EC_KEY_set_method(ec, ec_method) || !EVP_PKEY_assign(pkey, EVP_PKEY_EC, ec)) {
            EC_KEY_free(ec);
            goto fail;
        }
        break;
    }
    default:
        FAIL(R_UNSUPPORTED, "key type %s (RSA and EC only)", OBJ_nid2sn(EVP_PKEY_get_base_id(probe)));
        goto fail;
    }
    EVP_PKEY_free(probe);
    OPENSSL_free(spki);
    return pkey;
fail:
    EVP_PKEY_free(pkey);
    EVP_PKEY_free(probe);
    OPENSSL_free(spki);
    OPENSSL_free(key);
    return NULL;
}

/* ---- engine ------------------------------------------------------------------------------- */

/* OpenSSL's RSA EVP_PKEY method with our sign: PSS through the signer, PKCS#1 v1.5 as OpenSSL does it. */
static EVP_PKEY_METHOD *new_rsa_pkey_method(void)
{
    const EVP_PKEY_METHOD *builtin = EVP_PKEY_meth_find(EVP_PKEY_RSA);
    EVP_PKEY_METHOD *method = EVP_PKEY_meth_new(EVP_PKEY_RSA, EVP_PKEY_FLAG_AUTOARGLEN);
    if (builtin == NULL || method == NULL) {
        EVP_PKEY_meth_free(method);
        return NULL;
    }
    EVP_PKEY_meth_copy(method, builtin);
    EVP_PKEY_meth_set_sign(method, default_rsa_pkey_sign_init, rsa_pkey_sign);
    return method;
}

/*
 * An ENGINE's EVP_PKEY methods are freed with the ENGINE (OpenSSL asks this function for each and
 * frees what it gets), so every ENGINE owns its own copy, made on first use and kept in its ex_data.
 * One shared copy would be freed with the first ENGINE and used after that by the others.
 */
static int pkey_methods(ENGINE *engine, EVP_PKEY_METHOD **method, const int **nids, int nid)
{
    static const int our_nids[] = {EVP_PKEY_RSA};
    if (method == NULL) {
        *nids = our_nids;
        return 1;
    }
    *method = NULL;
    if (nid != EVP_PKEY_RSA)
        return 0;
    pthread_mutex_lock(&pkey_method_lock);
    *method = ENGINE_get_ex_data(engine, engine_index);
    if (*method == NULL && (*method = new_rsa_pkey_method()) != NULL && !ENGINE_set_ex_data(engine, engine_index, *method)) {
        EVP_PKEY_meth_free(*method);
        *method = NULL;
    }
    pthread_mutex_unlock(&pkey_method_lock);
    return *method != NULL;
}

/* Process-wide state, made once: the module is never unloaded (-z nodelete), so neither is this. */
static void init_once(void)
{
    err_lib = ERR_get_next_error_library();
    /* The list ends at the first zero code, so the library's own entry needs its code now. Node drops
     * an OpenSSL error whose reason has no text (the handshake then just looks like a hang-up). */
    error_strings[0].error = ERR_PACK(err_lib, 0, 0);
    ERR_load_strings(err_lib, error_strings);
    rsa_index = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_RSA, 0, NULL, NULL, key_dup, key_free);
    ec_index = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_EC_KEY, 0, NULL, NULL, key_dup, key_free);

    rsa_method = RSA_meth_dup(RSA_PKCS1_OpenSSL());
    if (rsa_method == NULL || !RSA_meth_set1_name(rsa_method, ENGINE_NAME) || !RSA_meth_set_sign(rsa_method, rsa_sign) ||
        !RSA_meth_set_priv_enc(rsa_method, rsa_private_refused) || !RSA_meth_set_priv_dec(rsa_method, rsa_private_refused))
        return;

    ec_method = EC_KEY_METHOD_new(EC_KEY_OpenSSL());
    if (ec_method == NULL)
        return;
    EC_KEY_METHOD_set_sign(ec_method, ec_sign, NULL, ec_sign_sig);

    EVP_PKEY_meth_get_sign(EVP_PKEY_meth_find(EVP_PKEY_RSA), &default_rsa_pkey_sign_init, &default_rsa_pkey_sign);
    /* No free callback: OpenSSL frees the method itself when the ENGINE goes (see pkey_methods). */
    engine_index = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_ENGINE, 0, NULL, NULL, NULL, NULL);

    initialised = rsa_index >= 0 && ec_index >= 0 && engine_index >= 0 && default_rsa_pkey_sign != NULL;
}

static int configure(ENGINE *engine, const char *id)
{
    return ENGINE_set_id(engine, id) && ENGINE_set_name(engine, ENGINE_NAME) &&
           ENGINE_set_load_privkey_function(engine, load_private_key) && ENGINE_set_pkey_meths(engine, pkey_methods);
}

static int bind_signer_engine(ENGINE *engine, const char *id);

/*
 * OpenSSL 3.0 binds a dynamic engine only once per process while that engine lives (it refuses a
 * second ENGINE with the same bind function), but Node loads `privateKeyEngine` afresh for every
 * secure context: `ENGINE_by_id(<path>)`, and only when that finds nothing, the dynamic engine.
 * So on the first load we also list a permanent copy of ourselves under our own path as its id,
 * and every later secure context finds that one.
 */
static char listed_id[4096];
static void list_under_own_path(void)
{
    Dl_info info;
    if (!dladdr((void *)&bind_signer_engine, &info) || info.dli_fname == NULL || strlen(info.dli_fname) >= sizeof listed_id)
        return;
    strcpy(listed_id, info.dli_fname);
    ENGINE *listed = ENGINE_new();
    if (listed == NULL)
        return;
    if (!configure(listed, listed_id) || !ENGINE_add(listed))
        ERR_clear_error(); /* loading still works through the dynamic engine, once */
    ENGINE_free(listed); /* the list keeps its own reference */
}

static int bind_signer_engine(ENGINE *engine, const char *id)
{
    static pthread_once_t listed = PTHREAD_ONCE_INIT;
    if (id != NULL && strcmp(id, ENGINE_ID) != 0)
        return 0;
    pthread_once(&once, init_once);
    if (!initialised || !configure(engine, ENGINE_ID))
        return 0;
    pthread_once(&listed, list_under_own_path);
    return 1;
}

IMPLEMENT_DYNAMIC_CHECK_FN()
IMPLEMENT_DYNAMIC_BIND_FN(bind_signer_engine)
