/*
 * tls: OpenSSL behind a small interface. A context is what a configuration
 * generation loads from its certificate files (conf/): one for connections
 * the proxy makes (to servers, to sentinels) and one per TLS listener. A TLS
 * stream is the second stream_ops table (stream.h): non-blocking handshake,
 * reads that drain what OpenSSL holds decrypted, writes whose buffer may move
 * between retries (client and server buffers are compacted while a write is
 * pending).
 *
 * A context is reference-counted by OpenSSL: a connection opened with it keeps
 * it alive, so a reload can drop the old generation's contexts while the
 * connections made with them go on (certificate rotation without drops).
 */
#ifndef NC_TLS_H
#define NC_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/stream.h"

struct tls_ctx;
/* A session a client-side stream may resume on its next connection. */
struct tls_session;

/* What a context is made of; NULL strings are unset. */
struct tls_opts {
    const char *ca_file;
    const char *ca_dir;
    const char
        *cert_file; /* with key_file: our certificate (a listener's, or a client's for mTLS) */
    const char *key_file;
    bool verify; /* client side: check the server's certificate; server side: require a client's */
    const char *protocols;    /* "TLSv1.2 TLSv1.3": the versions allowed (NULL: OpenSSL's) */
    const char *ciphers;      /* TLSv1.2 and below, OpenSSL's cipher list syntax */
    const char *ciphersuites; /* TLSv1.3 */
};

/* Load a context: server (a listener's) or client side. NULL with a message
 * "FILE: reason" (or what is wrong) in err. */
struct tls_ctx *tls_ctx_new(bool server, const struct tls_opts *o, char *err, size_t errlen);
/* The context's own certificate has expired or is not valid yet: true, and why
 * says so with the date. It is served anyway (peers that check it refuse it). */
bool tls_ctx_out_of_date(const struct tls_ctx *t, char *why, size_t len);
void tls_ctx_free(struct tls_ctx *ctx);

/* The versions named in a protocols string as a bit set (bit n: TLSv1.n, TLSv1
 * is n = 0); -1 when a word is not TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3. */
int tls_protocols_parse(const char *s);

/* A client-side stream over connected socket fd (owned from now on, closed on
 * failure): name is checked against the certificate (an IP address against its
 * IP entries) and, when a host name, sent as SNI; NULL checks the chain only.
 * *resume (may be NULL) is a session to offer, replaced by each new one the
 * server gives. 0, or -1 (out of memory). */
int stream_open_tls_client(struct stream *s, int fd, struct tls_ctx *ctx, const char *name,
                           struct tls_session **resume);
/* A server-side stream over an accepted socket (a TLS listener's client). */
int stream_open_tls_server(struct stream *s, int fd, struct tls_ctx *ctx);
/* Whether the handshake of a TLS stream resumed a session; "TLSv1.3"-like
 * version text (NULL for a plain stream). */
bool stream_tls_resumed(const struct stream *s);
const char *stream_tls_version(const struct stream *s);
void tls_session_free(struct tls_session *sess);

/* SHA-256 of p[0..n) (client_auth passwords). */
void tls_sha256(const void *p, size_t n, uint8_t out[32]);
/* Compare n bytes in a time that does not depend on where they differ. */
bool tls_equal(const void *a, const void *b, size_t n);

#endif
