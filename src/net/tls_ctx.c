/*
 * tls_ctx: contexts loaded from certificate files, with every failure worded
 * "FILE: reason" so that a reload refused for a rotated file says which one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "net/tls_int.h"

/* The first reason OpenSSL queued, or fallback; the error queue is emptied.
 * The first is the cause ("no start line"); the last only says which call
 * gave up on it ("PEM lib"). */
static const char *tls_reason(const char *fallback)
{
    unsigned long e = ERR_peek_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r != NULL ? r : fallback;
}

static int tls_fail(char *err, size_t len, const char *file, const char *reason)
{
    snprintf(err, len, "%s: %s", file, reason);
    return -1;
}

/* A readable regular file (dir: a directory): OpenSSL's own error for a
 * missing file is a library code, strerror says it plainly. */
static int tls_check_path(const char *path, bool dir, char *err, size_t len)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return tls_fail(err, len, path, strerror(errno));
    }
    if (dir != S_ISDIR(st.st_mode)) {
        return tls_fail(err, len, path, dir ? "not a directory" : "not a regular file");
    }
    FILE *f = dir ? NULL : fopen(path, "rb");
    if (!dir && f == NULL) {
        return tls_fail(err, len, path, strerror(errno));
    }
    if (f != NULL) {
        fclose(f);
    }
    return 0;
}

int tls_protocols_parse(const char *s)
{
    static const char *const names[] = {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
    int mask = 0;
    while (*s != '\0') {
        size_t n = strcspn(s, " \t,");
        bool found = false;
        for (int i = 0; n > 0 && i < 4; i++) {
            if (strlen(names[i]) == n && strncmp(s, names[i], n) == 0) {
                mask |= 1 << i;
                found = true;
            }
        }
        if (n > 0 && !found) {
            return -1;
        }
        s += n;
        s += strspn(s, " \t,");
    }
    return mask != 0 ? mask : -1;
}

/* The lowest and highest version listed, with the ones between left out. */
static void tls_set_protocols(SSL_CTX *ctx, int mask)
{
    static const int versions[] = {TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION};
    static const uint64_t no[] = {SSL_OP_NO_TLSv1, SSL_OP_NO_TLSv1_1, SSL_OP_NO_TLSv1_2,
                                  SSL_OP_NO_TLSv1_3};
    int lo = -1, hi = -1;
    for (int i = 0; i < 4; i++) {
        if (mask & (1 << i)) {
            lo = lo < 0 ? i : lo;
            hi = i;
        }
    }
    SSL_CTX_set_min_proto_version(ctx, versions[lo]);
    SSL_CTX_set_max_proto_version(ctx, versions[hi]);
    for (int i = lo; i <= hi; i++) {
        if (!(mask & (1 << i))) {
            SSL_CTX_set_options(ctx, no[i]);
        }
    }
}

/* OpenSSL asks for the passphrase of an encrypted key; without this callback
 * it prompts on the terminal and the whole proxy waits there (a reload too).
 * None is given: the load fails and says why. */
static int tls_on_passphrase(char *buf, int size, int rwflag, void *asked)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    if (asked != NULL) {
        *(bool *)asked = true;
    }
    return 0;
}

static int tls_load_pair(SSL_CTX *ctx, const struct tls_opts *o, char *err, size_t len)
{
    if (tls_check_path(o->cert_file, false, err, len) != 0 ||
        tls_check_path(o->key_file, false, err, len) != 0) {
        return -1;
    }
    char why[256];
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1) {
        snprintf(why, sizeof(why), "not a PEM certificate (%s)", tls_reason("unreadable"));
        return tls_fail(err, len, o->cert_file, why);
    }
    /* the flag is the callback's only while the key loads (it is on the stack) */
    bool asked = false;
    SSL_CTX_set_default_passwd_cb(ctx, tls_on_passphrase);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, &asked);
    /* OpenSSL 3 checks the key against the certificate as it loads it */
    bool loaded = SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) == 1;
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    if (!loaded && asked) {
        ERR_clear_error();
        return tls_fail(err, len, o->key_file,
                        "the key is encrypted: a passphrase is not supported (decrypt it with "
                        "`openssl pkey -in KEY -out KEY2`)");
    }
    if (!loaded && ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
        snprintf(why, sizeof(why), "not a PEM private key (%s)", tls_reason("unreadable"));
        return tls_fail(err, len, o->key_file, why);
    }
    if (!loaded || SSL_CTX_check_private_key(ctx) != 1) {
        /* a key of another type than the certificate's goes to a slot with no
         * certificate: OpenSSL then says "no certificate assigned" */
        bool other_type = ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_NO_CERTIFICATE_ASSIGNED;
        snprintf(why, sizeof(why), "does not match the certificate in %s (%s)", o->cert_file,
                 other_type ? "the key's type is not the certificate's"
                            : tls_reason("key values mismatch"));
        ERR_clear_error();
        return tls_fail(err, len, o->key_file, why);
    }
    return 0;
}

static int tls_load_ca(SSL_CTX *ctx, bool server, const struct tls_opts *o, char *err, size_t len)
{
    if (o->ca_file != NULL && tls_check_path(o->ca_file, false, err, len) != 0) {
        return -1;
    }
    if (o->ca_dir != NULL && tls_check_path(o->ca_dir, true, err, len) != 0) {
        return -1;
    }
    if (o->ca_file != NULL || o->ca_dir != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, o->ca_file, o->ca_dir) != 1) {
            const char *f = o->ca_file != NULL ? o->ca_file : o->ca_dir;
            return tls_fail(err, len, f, tls_reason("no CA certificate in it"));
        }
        if (server && o->ca_file != NULL) {
            /* the CAs a client certificate may come from, named in the request for one */
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);
            if (names != NULL) {
                SSL_CTX_set_client_CA_list(ctx, names);
            }
            ERR_clear_error();
        }
    } else if (!server && o->verify) {
        SSL_CTX_set_default_verify_paths(ctx); /* the system's CAs, as a browser would */
        ERR_clear_error();
    }
    return 0;
}

static int tls_ctx_setup(SSL_CTX *ctx, bool server, const struct tls_opts *o, char *err, size_t len)
{
    /* buffers move between write retries (compaction); idle connections keep no buffer */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* a peer that closes without close_notify has ended its stream: RESP and the
     * memcached protocol frame their own messages, a truncation cannot go unseen */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    int mask = o->protocols != NULL ? tls_protocols_parse(o->protocols) : 0xC;
    if (mask < 0) {
        return tls_fail(err, len, o->protocols, "not a list of TLSv1, TLSv1.1, TLSv1.2, TLSv1.3");
    }
    tls_set_protocols(ctx, mask);
    if (o->ciphers != NULL && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1) {
        return tls_fail(err, len, o->ciphers, tls_reason("no cipher matches"));
    }
    if (o->ciphersuites != NULL && SSL_CTX_set_ciphersuites(ctx, o->ciphersuites) != 1) {
        return tls_fail(err, len, o->ciphersuites, tls_reason("no cipher suite matches"));
    }
    if ((o->cert_file != NULL || o->key_file != NULL) && tls_load_pair(ctx, o, err, len) != 0) {
        return -1;
    }
    if (tls_load_ca(ctx, server, o, err, len) != 0) {
        return -1;
    }
    if (server) {
        static const unsigned char sid[] = "nutcracker";
        SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
        SSL_CTX_set_verify(ctx, o->verify ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0,
                           NULL);
    } else {
        SSL_CTX_set_verify(ctx, o->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
        /* sessions are kept by the connection that made them (tls_session), not here */
        SSL_CTX_set_session_cache_mode(ctx,
                                       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, tls_on_new_session);
    }
    return 0;
}

struct tls_ctx *tls_ctx_new(bool server, const struct tls_opts *o, char *err, size_t errlen)
{
    struct tls_ctx *t = calloc(1, sizeof(*t));
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (t == NULL || ctx == NULL) {
        snprintf(err, errlen, "cannot create a TLS context: %s", tls_reason("out of memory"));
        SSL_CTX_free(ctx);
        free(t);
        return NULL;
    }
    ERR_clear_error(); /* a reason read later is one of this load's */
    if (tls_ctx_setup(ctx, server, o, err, errlen) != 0) {
        ERR_clear_error();
        SSL_CTX_free(ctx);
        free(t);
        return NULL;
    }
    t->ssl = ctx;
    return t;
}

/* The day d as "2026-12-05 06:00:00 UTC". */
static void tls_date(const ASN1_TIME *d, char *out, size_t len)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(d, &tm) != 1 || strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
        snprintf(out, len, "(an unreadable date)");
    }
}

bool tls_ctx_out_of_date(const struct tls_ctx *t, char *why, size_t len)
{
    X509 *x = t != NULL ? SSL_CTX_get0_certificate(t->ssl) : NULL;
    if (x == NULL) {
        return false;
    }
    char date[64];
    if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0) {
        tls_date(X509_get0_notAfter(x), date, sizeof(date));
        snprintf(why, len, "expired on %s", date);
        return true;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0) {
        tls_date(X509_get0_notBefore(x), date, sizeof(date));
        snprintf(why, len, "is not valid before %s", date);
        return true;
    }
    return false;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
    if (ctx != NULL) {
        SSL_CTX_free(ctx->ssl); /* connections made with it hold their own reference */
        free(ctx);
    }
}

void tls_session_free(struct tls_session *sess)
{
    if (sess != NULL) {
        SSL_SESSION_free(sess->sess);
        SSL_CTX_free(sess->ctx);
        free(sess);
    }
}

void tls_sha256(const void *p, size_t n, uint8_t out[32])
{
    unsigned int len = 32;
    EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

bool tls_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}
