/*
 * tls_stream: the TLS stream_ops table. Every OpenSSL call starts with an empty
 * error queue, so what SSL_get_error reads is this call's outcome; a failure is
 * kept (reason, certificate check) until the connection asks for its text.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "net/tls_int.h"

struct tls_conn {
    SSL *ssl;
    struct tls_session **resume; /* client side: where new sessions go */
    bool fatal;                  /* an error was seen: no close_notify may follow */
    bool eof_in_handshake;
    unsigned long err; /* the OpenSSL error of the failure (0: none) */
    long verify;       /* the certificate check's result at the failure */
};

static struct tls_conn *tls_of(const struct stream *s)
{
    return s->impl;
}

/* Map the outcome of an SSL call that did not succeed; want is the direction's
 * readiness slot (rd_want or wr_want). */
static int tls_outcome(struct stream *s, int ret, uint8_t *want, bool reading, int *err)
{
    struct tls_conn *t = tls_of(s);
    int saved = errno;
    switch (SSL_get_error(t->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        *want = STREAM_WANT_READ;
        return STREAM_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        *want = STREAM_WANT_WRITE;
        return STREAM_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        if (reading) {
            return STREAM_EOF;
        }
        *err = EPIPE;
        return STREAM_ERROR;
    case SSL_ERROR_SYSCALL:
        t->fatal = true;
        if (saved == 0 && ERR_peek_error() == 0 && reading) {
            return STREAM_EOF;
        }
        *err = saved != 0 ? saved : ECONNRESET;
        ERR_clear_error();
        return STREAM_ERROR;
    default:
        t->fatal = true;
        t->err = ERR_peek_last_error();
        t->verify = SSL_get_verify_result(t->ssl);
        ERR_clear_error();
        *err = STREAM_ETLS;
        return STREAM_ERROR;
    }
}

static int tls_read(struct stream *s, void *p, size_t cap, size_t *got, int *err)
{
    struct tls_conn *t = tls_of(s);
    ERR_clear_error();
    errno = 0;
    int ret = SSL_read_ex(t->ssl, p, cap, got);
    if (ret == 1) {
        s->rd_want = STREAM_WANT_READ;
        return STREAM_OK;
    }
    return tls_outcome(s, ret, &s->rd_want, true, err);
}

/* A write the peer reset: a peer that refused us (a server that wants another
 * client certificate, TLS 1.3's check after our handshake ended) sent its
 * alert before the reset, and the alert, still in the socket, is the reason
 * worth giving. A peek reads it without taking any data. */
static void tls_alert_before_reset(struct stream *s, int *err)
{
    struct tls_conn *t = tls_of(s);
    unsigned char byte;
    size_t got = 0;
    ERR_clear_error();
    if (SSL_peek_ex(t->ssl, &byte, 1, &got) != 1 && ERR_peek_error() != 0) {
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_SSL) {
            t->err = e;
            t->verify = X509_V_OK;
            *err = STREAM_ETLS;
        }
    }
    ERR_clear_error();
}

static int tls_write(struct stream *s, const void *p, size_t n, size_t *put, int *err)
{
    struct tls_conn *t = tls_of(s);
    ERR_clear_error();
    errno = 0;
    int ret = SSL_write_ex(t->ssl, p, n, put);
    if (ret == 1) {
        s->wr_want = STREAM_WANT_WRITE;
        return STREAM_OK;
    }
    int rc = tls_outcome(s, ret, &s->wr_want, false, err);
    if (rc == STREAM_ERROR && (*err == ECONNRESET || *err == EPIPE)) {
        tls_alert_before_reset(s, err);
    }
    return rc;
}

static int tls_handshake(struct stream *s, int *err)
{
    struct tls_conn *t = tls_of(s);
    ERR_clear_error();
    errno = 0;
    int ret = SSL_do_handshake(t->ssl);
    if (ret == 1) {
        s->rd_want = STREAM_WANT_READ;
        s->wr_want = STREAM_WANT_WRITE;
        return STREAM_OK;
    }
    int rc = tls_outcome(s, ret, &s->rd_want, true, err);
    if (rc == STREAM_EOF) {
        /* the peer hung up mid-handshake: a refusal of ours or a plain-text server */
        t->eof_in_handshake = true;
        *err = STREAM_ETLS;
        rc = STREAM_ERROR;
    }
    return rc;
}

static size_t tls_pending(const struct stream *s)
{
    int n = SSL_pending(tls_of(s)->ssl);
    return n > 0 ? (size_t)n : 0;
}

static const char *tls_strerror(const struct stream *s, int err, char *buf, size_t len)
{
    const struct tls_conn *t = tls_of(s);
    if (err != STREAM_ETLS) {
        snprintf(buf, len, "%s", err > 0 ? strerror(err) : "transport error");
        return buf;
    }
    if (t == NULL || t->eof_in_handshake) {
        snprintf(buf, len, "connection closed by the peer during the TLS handshake");
        return buf;
    }
    const char *r = t->err != 0 ? ERR_reason_error_string(t->err) : NULL;
    if (t->verify != X509_V_OK) {
        snprintf(buf, len, "%s: %s", r != NULL ? r : "certificate verify failed",
                 X509_verify_cert_error_string(t->verify));
    } else {
        snprintf(buf, len, "%s", r != NULL ? r : "TLS protocol error");
    }
    return buf;
}

/* close_notify (one try: its record is small and the socket just took our
 * last reply), then the TCP half-close. OpenSSL still reads after sending it. */
static int tls_shutdown(struct stream *s, int *err)
{
    struct tls_conn *t = tls_of(s);
    if (!t->fatal && SSL_is_init_finished(t->ssl)) {
        SSL_shutdown(t->ssl);
    }
    ERR_clear_error();
    if (shutdown(s->fd, SHUT_WR) != 0) {
        *err = errno;
        return -1;
    }
    return 0;
}

static void tls_close(struct stream *s)
{
    struct tls_conn *t = tls_of(s);
    if (t != NULL) {
        if (!t->fatal && SSL_is_init_finished(t->ssl)) {
            SSL_shutdown(t->ssl); /* one try at close_notify; never waited for */
        }
        ERR_clear_error();
        SSL_free(t->ssl);
        free(t);
    }
    close(s->fd);
}

static const struct stream_ops tls_ops = {tls_read,      tls_write,   tls_close,   tls_shutdown,
                                          tls_handshake, tls_pending, tls_strerror};

int tls_on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct tls_conn *t = SSL_get_app_data(ssl);
    struct tls_session *ts = t != NULL && t->resume != NULL ? malloc(sizeof(*ts)) : NULL;
    if (ts == NULL) {
        return 0; /* OpenSSL keeps ownership and frees it */
    }
    ts->sess = sess;
    ts->ctx = SSL_get_SSL_CTX(ssl);
    SSL_CTX_up_ref(ts->ctx);
    tls_session_free(*t->resume);
    *t->resume = ts;
    return 1;
}

static int tls_open(struct stream *s, int fd, struct tls_ctx *ctx)
{
    struct tls_conn *t = calloc(1, sizeof(*t));
    SSL *ssl = t != NULL ? SSL_new(ctx->ssl) : NULL;
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        free(t);
        ERR_clear_error();
        close(fd);
        stream_open_plain(s, -1);
        return -1;
    }
    t->ssl = ssl;
    SSL_set_app_data(ssl, t);
    s->fd = fd;
    s->ops = &tls_ops;
    s->impl = t;
    s->rd_want = STREAM_WANT_READ;
    s->wr_want = STREAM_WANT_WRITE;
    return 0;
}

/* The name to check: an IP address against the certificate's IP entries (SNI
 * carries no address), a host name against its DNS entries and sent as SNI. */
static void tls_set_name(SSL *ssl, const char *name)
{
    unsigned char ip[16];
    if (inet_pton(AF_INET, name, ip) == 1) {
        X509_VERIFY_PARAM_set1_ip(SSL_get0_param(ssl), ip, 4);
    } else if (inet_pton(AF_INET6, name, ip) == 1) {
        X509_VERIFY_PARAM_set1_ip(SSL_get0_param(ssl), ip, 16);
    } else {
        SSL_set_tlsext_host_name(ssl, name);
        SSL_set1_host(ssl, name);
    }
}

int stream_open_tls_client(struct stream *s, int fd, struct tls_ctx *ctx, const char *name,
                           struct tls_session **resume)
{
    if (tls_open(s, fd, ctx) != 0) {
        return -1;
    }
    struct tls_conn *t = tls_of(s);
    SSL_set_connect_state(t->ssl);
    if (name != NULL && name[0] != '\0') {
        tls_set_name(t->ssl, name);
    }
    t->resume = resume;
    if (resume != NULL && *resume != NULL) {
        if ((*resume)->ctx == ctx->ssl) {
            SSL_set_session(t->ssl, (*resume)->sess);
        } else {
            /* made with a context a reload replaced: its checks are not ours now */
            tls_session_free(*resume);
            *resume = NULL;
        }
    }
    ERR_clear_error();
    return 0;
}

int stream_open_tls_server(struct stream *s, int fd, struct tls_ctx *ctx)
{
    if (tls_open(s, fd, ctx) != 0) {
        return -1;
    }
    SSL_set_accept_state(tls_of(s)->ssl);
    return 0;
}

bool stream_tls_resumed(const struct stream *s)
{
    return s->ops == &tls_ops && SSL_session_reused(tls_of(s)->ssl) == 1;
}

const char *stream_tls_version(const struct stream *s)
{
    return s->ops == &tls_ops ? SSL_get_version(tls_of(s)->ssl) : NULL;
}
