/*
 * query_conn: one non-blocking RESP connection for the proxy's own questions:
 * the sentinel client's (to a sentinel, or to a master being checked with
 * ROLE) and the replica check's (ROLE to a static pool's replicas). Apart from
 * the pools' server connections: its requests are not the clients', they count
 * in no server's stats and its failures in no server's health. It owns the
 * socket and two buffers; its owner queues requests and takes complete replies
 * one by one. Everything runs on the event loop: connect, TLS handshake
 * (sentinel_tls, or the pool's tls for servers), write and read never block.
 */
#ifndef NC_QUERY_CONN_H
#define NC_QUERY_CONN_H

#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "event/ev.h"
#include "net/stream.h"
#include "proto/proto.h"

/* No answer asked for is this long: more is a broken or hostile peer. */
#define QUERY_CONN_MAX_IN (1u << 20)

enum query_conn_state {
    QUERY_CONN_CLOSED = 0,
    QUERY_CONN_CONNECTING,
    QUERY_CONN_HANDSHAKE,
    QUERY_CONN_CONNECTED
};

struct tls_ctx;
struct tls_session;

struct query_conn {
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

void query_conn_init(struct query_conn *c, ev_io_fn fn, void *data);
/* Speak TLS with ctx (NULL: plain) on every connection from now on; name is
 * the one the certificate must carry (NULL: the address connected to). The
 * context belongs to the configuration generation, which outlives c. */
void query_conn_tls(struct query_conn *c, struct tls_ctx *ctx, const char *name);
/* Close if open and release the buffers. */
void query_conn_free(struct ev_loop *loop, struct query_conn *c);
/* Start connecting; the requests queued with query_conn_out() leave once connected. */
int query_conn_open(struct ev_loop *loop, struct query_conn *c, const struct sockaddr *sa,
                    socklen_t len);
void query_conn_close(struct ev_loop *loop, struct query_conn *c);
/* Write what is queued (when connected); -1 with c->err when the socket failed. */
int query_conn_flush(struct ev_loop *loop, struct query_conn *c);
/* Handle readiness: connect completion, writing, reading. -1 with c->err when
 * the connection failed or the peer closed it. */
int query_conn_io(struct ev_loop *loop, struct query_conn *c, unsigned events);
/* The next complete reply read: 1 (*reply and c->ri set, valid until the next
 * read), 0 when none is complete, -1 with c->err when the bytes are not RESP. */
int query_conn_next(struct query_conn *c, const uint8_t **reply);

#endif
