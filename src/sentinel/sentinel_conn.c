#include "sentinel/sentinel_conn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net/sock.h"
#include "proto/redis.h"

/* Read size: sentinel replies are a few hundred bytes. */
#define SENTINEL_CONN_CHUNK 4096

static int conn_error(struct sentinel_conn *c, const char *what)
{
    snprintf(c->err, sizeof(c->err), "%s", what);
    return -1;
}

void sentinel_conn_init(struct sentinel_conn *c, ev_io_fn fn, void *data)
{
    memset(c, 0, sizeof(*c));
    c->st.fd = -1;
    ev_io_init(&c->io, -1, fn, data);
    rsp_info_init(&c->ri);
}

void sentinel_conn_free(struct ev_loop *loop, struct sentinel_conn *c)
{
    sentinel_conn_close(loop, c);
    buf_free(&c->out);
    buf_free(&c->in);
    rsp_info_free(&c->ri);
}

int sentinel_conn_open(struct ev_loop *loop, struct sentinel_conn *c, const struct sockaddr *sa,
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
    stream_open_plain(&c->st, fd);
    c->io.fd = fd;
    c->state = in_progress ? SENTINEL_CONN_CONNECTING : SENTINEL_CONN_CONNECTED;
    buf_reset(&c->in);
    c->in_pos = 0;
    ev_io_set(loop, &c->io, EV_READ | EV_WRITE);
    return 0;
}

void sentinel_conn_close(struct ev_loop *loop, struct sentinel_conn *c)
{
    if (c->state != SENTINEL_CONN_CLOSED) {
        ev_io_stop(loop, &c->io);
        stream_close(&c->st);
        c->io.fd = -1;
        c->state = SENTINEL_CONN_CLOSED;
    }
    buf_reset(&c->out);
    c->out_pos = 0;
    buf_reset(&c->in);
    c->in_pos = 0;
}

int sentinel_conn_flush(struct ev_loop *loop, struct sentinel_conn *c)
{
    if (c->state != SENTINEL_CONN_CONNECTED) {
        return 0; /* the connect completion flushes */
    }
    int err = 0;
    int rc = stream_write_buf(&c->st, &c->out, &c->out_pos, &err);
    if (rc == STREAM_AGAIN) {
        return ev_io_set(loop, &c->io, EV_READ | EV_WRITE);
    }
    if (rc == STREAM_ERROR) {
        return conn_error(c, strerror(err));
    }
    buf_reset(&c->out);
    c->out_pos = 0;
    return ev_io_set(loop, &c->io, EV_READ);
}

/* SO_ERROR says how the connect ended; getpeername that it really did (a
 * readiness event of an earlier socket with the same number must not count). */
static int conn_connected(struct ev_loop *loop, struct sentinel_conn *c)
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
    c->state = SENTINEL_CONN_CONNECTED;
    return sentinel_conn_flush(loop, c);
}

static int conn_read(struct sentinel_conn *c)
{
    if (c->in_pos > 0) { /* the replies handed out are done with */
        buf_consume(&c->in, c->in_pos);
        c->in_pos = 0;
    }
    if (c->in.len >= SENTINEL_CONN_MAX_IN) {
        return conn_error(c, "reply too large");
    }
    if (buf_reserve(&c->in, SENTINEL_CONN_CHUNK) != 0) {
        return conn_error(c, "out of memory");
    }
    size_t got = 0;
    int err = 0;
    int rc = stream_read(&c->st, c->in.data + c->in.len, c->in.cap - c->in.len, &got, &err);
    if (rc == STREAM_EOF) {
        return conn_error(c, "connection closed by peer");
    }
    if (rc == STREAM_ERROR) {
        return conn_error(c, strerror(err));
    }
    c->in.len += got;
    return 0;
}

int sentinel_conn_io(struct ev_loop *loop, struct sentinel_conn *c, unsigned events)
{
    if (c->state == SENTINEL_CONN_CONNECTING) {
        if (conn_connected(loop, c) != 0) {
            return -1;
        }
        if (c->state != SENTINEL_CONN_CONNECTED) {
            return 0;
        }
    }
    if ((events & EV_WRITE) && sentinel_conn_flush(loop, c) != 0) {
        return -1;
    }
    if (events & EV_READ) {
        return conn_read(c);
    }
    return 0;
}

int sentinel_conn_next(struct sentinel_conn *c, const uint8_t **reply)
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
