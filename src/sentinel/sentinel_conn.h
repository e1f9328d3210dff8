/*
 * sentinel_conn: one non-blocking RESP connection of the sentinel client (to a
 * sentinel, or to a master being checked with ROLE). It owns the socket and
 * two buffers; its owner queues requests and takes complete replies one by one.
 * Everything runs on the event loop: connect, TLS handshake (sentinel_tls, or
 * the pool's tls for masters), write and read never block.
 */
#ifndef NC_SENTINEL_CONN_H
#define NC_SENTINEL_CONN_H

#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "event/ev.h"
#include "net/stream.h"
#include "proto/proto.h"

/* A sentinel never sends this much at once: more is a broken or hostile peer. */
#define SENTINEL_CONN_MAX_IN (1u << 20)

enum sentinel_conn_state {
    SENTINEL_CONN_CLOSED = 0,
    SENTINEL_CONN_CONNECTING,
    SENTINEL_CONN_HANDSHAKE,
    SENTINEL_CONN_CONNECTED
};

struct tls_ctx;
struct tls_session;

struct sentinel_conn {
    struct ev_io io;
    struct stream st;
    uint8_t state;
    struct buf out; /* requests not yet written */
    size_t out_pos;
    struct buf in; /* bytes read; replies before in_pos were handed out */
    size_t in_pos;
    struct rsp_info ri;              /* what rsp_parse said of the reply handed out last */
    char err[320];                   /* why the last call failed */
    struct tls_ctx *tls;             /* NULL: plain */
    const char *tls_name;            /* the name checked; NULL: the peer's address */
    struct tls_session *tls_session; /* resumed on the next connection */
};

void sentinel_conn_init(struct sentinel_conn *c, ev_io_fn fn, void *data);
/* Speak TLS with ctx (NULL: plain) on every connection from now on; name is
 * the one the certificate must carry (NULL: the address connected to). The
 * context belongs to the configuration generation, which outlives c. */
void sentinel_conn_tls(struct sentinel_conn *c, struct tls_ctx *ctx, const char *name);
/* Close if open and release the buffers. */
void sentinel_conn_free(struct ev_loop *loop, struct sentinel_conn *c);
/* Start connecting; the requests queued with sentinel_conn_out() leave once connected. */
int sentinel_conn_open(struct ev_loop *loop, struct sentinel_conn *c, const struct sockaddr *sa,
                       socklen_t len);
void sentinel_conn_close(struct ev_loop *loop, struct sentinel_conn *c);
/* Write what is queued (when connected); -1 with c->err when the socket failed. */
int sentinel_conn_flush(struct ev_loop *loop, struct sentinel_conn *c);
/* Handle readiness: connect completion, writing, reading. -1 with c->err when
 * the connection failed or the peer closed it. */
int sentinel_conn_io(struct ev_loop *loop, struct sentinel_conn *c, unsigned events);
/* The next complete reply read: 1 (*reply and c->ri set, valid until the next
 * read), 0 when none is complete, -1 with c->err when the bytes are not RESP. */
int sentinel_conn_next(struct sentinel_conn *c, const uint8_t **reply);

#endif
