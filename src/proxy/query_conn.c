#include "proxy/query_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net/sock.h"
#include "net/tls.h"
#include "proto/redis.h"

/* Read size: the answers asked for are a few hundred bytes. */
#define QUERY_CONN_CHUNK 4096

static int conn_error(struct query_conn *c, const char *what)
{
    snprintf(c->err, sizeof(c->err), "%s", what);
    return -1;
}

void query_conn_init(struct query_conn *c, ev_io_fn fn, void *data)
{
    memset(c, 0, sizeof(*c));
    c->st.fd = -1;
    ev_io_init(&c->io, -1, fn, data);
    rsp_info_init(&c->ri);
}

void query_conn_tls(struct query_conn *c, struct tls_ctx *ctx, const char *name)
{
    c->tls = ctx;
    c->tls_name = name;
}

void query_conn_free(struct ev_loop *loop, struct query_conn *c)
{
    query_conn_close(loop, c);
    buf_free(&c->out);
    buf_free(&c->in);
    rsp_info_free(&c->ri);
    tls_session_free(c->tls_session);
    c->tls_session = NULL;
}

/* The transport over fd: TLS checks the configured name, else the address. */
static int conn_stream_open(struct query_conn *c, int fd, const struct sockaddr *sa)
{
    char ip[INET6_ADDRSTRLEN] = "";
    const char *name = c->tls_name;
    if (c->tls == NULL) {
        stream_open_plain(&c->st, fd);
        return 0;
    }
    if (name == NULL && sa->sa_family == AF_INET) {
        name = inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
    } else if (name == NULL && sa->sa_family == AF_INET6) {
        name = inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof(ip));
    }
    return stream_open_tls_client(&c->st, fd, c->tls, name, &c->tls_session);
}

int query_conn_open(struct ev_loop *loop, struct query_conn *c, const struct sockaddr *sa,
                    socklen_t len)
{
    bool in_progress;
    int fd = sock_connect(sa, len, &in_progress);
    if (fd < 0) {
        return conn_error(c, strerror(errno));
    }
    if (sa->sa_family != AF_UNIX) {
        sock_set_nodelay(fd);
    }
    if (conn_stream_open(c, fd, sa) != 0) {
        return conn_error(c, "out of memory for TLS");
    }
    c->io.fd = fd;
    c->state = in_progress ? QUERY_CONN_CONNECTING : QUERY_CONN_CONNECTED;
    if (!in_progress && c->tls != NULL) {
        c->state = QUERY_CONN_HANDSHAKE; /* the first readiness event starts it */
    }
    buf_reset(&c->in);
    c->in_pos = 0;
    ev_io_set(loop, &c->io, EV_READ | EV_WRITE);
    return 0;
}

void query_conn_close(struct ev_loop *loop, struct query_conn *c)
{
    if (c->state != QUERY_CONN_CLOSED) {
        ev_io_stop(loop, &c->io);
        stream_close(&c->st);
        c->io.fd = -1;
        c->state = QUERY_CONN_CLOSED;
    }
    buf_reset(&c->out);
    c->out_pos = 0;
    buf_reset(&c->in);
    c->in_pos = 0;
}

int query_conn_flush(struct ev_loop *loop, struct query_conn *c)
{
    if (c->state != QUERY_CONN_CONNECTED) {
        return 0; /* the connect (or handshake) completion flushes */
    }
    int err = 0;
    int rc = stream_write_buf(&c->st, &c->out, &c->out_pos, &err);
    if (rc == STREAM_AGAIN) {
        return ev_io_set(loop, &c->io, stream_mask(&c->st, true, true));
    }
    if (rc == STREAM_ERROR) {
        char why[256];
        return conn_error(c, stream_strerror(&c->st, err, why, sizeof(why)));
    }
    buf_reset(&c->out);
    c->out_pos = 0;
    return ev_io_set(loop, &c->io, stream_mask(&c->st, true, false));
}

/* One step of the TLS handshake; done, what is queued leaves. */
static int conn_handshake(struct ev_loop *loop, struct query_conn *c)
{
    int err = 0;
    int rc = stream_handshake(&c->st, &err);
    if (rc == STREAM_AGAIN) {
        return ev_io_set(loop, &c->io, stream_mask(&c->st, true, false));
    }
    if (rc != STREAM_OK) {
        char why[256], msg[300];
        snprintf(msg, sizeof(msg), "TLS handshake failed: %s",
                 stream_strerror(&c->st, err, why, sizeof(why)));
        return conn_error(c, msg);
    }
    c->state = QUERY_CONN_CONNECTED;
    return query_conn_flush(loop, c);
}

/* SO_ERROR says how the connect ended; getpeername that it really did (a
 * readiness event of an earlier socket with the same number must not count). */
static int conn_connected(struct ev_loop *loop, struct query_conn *c)
{
    int err = sock_error(c->io.fd);
    if (err != 0) {
        return conn_error(c, strerror(err));
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getpeername(c->io.fd, (struct sockaddr *)&ss, &len) < 0) {
        return 0;
    }
    if (sock_is_self(c->io.fd, (const struct sockaddr *)&ss, len)) {
        sock_set_reset_on_close(c->io.fd);
        return conn_error(c, strerror(ECONNREFUSED)); /* nothing listens there */
    }
    if (c->tls != NULL) {
        c->state = QUERY_CONN_HANDSHAKE;
        return conn_handshake(loop, c);
    }
    c->state = QUERY_CONN_CONNECTED;
    return query_conn_flush(loop, c);
}

/* Read what there is (TLS: with what it holds decrypted, which raises no event). */
static int conn_read(struct query_conn *c)
{
    if (c->in_pos > 0) { /* the replies handed out are done with */
        buf_consume(&c->in, c->in_pos);
        c->in_pos = 0;
    }
    if (c->in.len >= QUERY_CONN_MAX_IN) {
        return conn_error(c, "reply too large");
    }
    if (buf_reserve(&c->in, QUERY_CONN_CHUNK) != 0) {
        return conn_error(c, "out of memory");
    }
    size_t got = 0;
    int err = 0;
    int rc = stream_read(&c->st, c->in.data + c->in.len, c->in.cap - c->in.len, &got, &err);
    if (rc == STREAM_EOF) {
        return conn_error(c, "connection closed by peer");
    }
    if (rc == STREAM_ERROR) {
        char why[256];
        return conn_error(c, stream_strerror(&c->st, err, why, sizeof(why)));
    }
    if (rc == STREAM_OK) {
        c->in.len += got;
    }
    if (rc == STREAM_OK && stream_pending(&c->st) > 0) {
        return conn_read(c);
    }
    return 0;
}

int query_conn_io(struct ev_loop *loop, struct query_conn *c, unsigned events)
{
    if (c->state == QUERY_CONN_CONNECTING) {
        if (conn_connected(loop, c) != 0) {
            return -1;
        }
        if (c->state != QUERY_CONN_CONNECTED) {
            return 0;
        }
    } else if (c->state == QUERY_CONN_HANDSHAKE) {
        if (conn_handshake(loop, c) != 0) {
            return -1;
        }
        if (c->state != QUERY_CONN_CONNECTED) {
            return 0;
        }
    }
    if (stream_can_write(&c->st, events) && query_conn_flush(loop, c) != 0) {
        return -1;
    }
    if (stream_can_read(&c->st, events)) {
        return conn_read(c);
    }
    return 0;
}

int query_conn_next(struct query_conn *c, const uint8_t **reply)
{
    if (c->in_pos >= c->in.len) {
        return 0;
    }
    const uint8_t *p = c->in.data + c->in_pos;
    int rc = redis_rsp_parse(p, c->in.len - c->in_pos, 0, &c->ri);
    if (rc == PARSE_AGAIN) {
        return 0;
    }
    if (rc == PARSE_ERROR) {
        return conn_error(c, c->ri.err);
    }
    c->in_pos += c->ri.len;
    *reply = p;
    return 1;
}
