/*
 * sconn: one connection to a server, a small state machine
 *
 *   CLOSED --ensure--> CONNECTING --writable, peer confirmed--> CONNECTED
 *      ^                    |         \ (tls)                    ^     |
 *      |                    |          +--> HANDSHAKE --done------+     |
 *      +------ close (error, eof, timeout, failover, reset) ------------+
 *
 * With tls the handshake runs on the loop like the connect; a failure is a
 * server failure (its requests answered with the TLS reason), a stall is bounded
 * by the oldest request's timeout like a stalled connect.
 * connected lazily (or at start with preconnect). Request bytes are appended
 * to `out` and written before the loop sleeps (one write carries the requests
 * of every client: pipelining); responses are parsed from `in` in the order
 * the requests were queued. Closing answers every waiting request with an
 * error (except those that can be sent again: into a failing-over group's
 * hold, or a lost replica's reads to its master), takes the connection off the
 * proxy's flush list and resets it, so a closed connection holds nothing
 * anyone could trip over.
 */
#ifndef NC_SCONN_H
#define NC_SCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "event/ev.h"
#include "net/stream.h"
#include "proto/proto.h"

struct server;
struct req;
struct client;
struct tls_session;

enum sconn_state { SCONN_CLOSED = 0, SCONN_CONNECTING, SCONN_HANDSHAKE, SCONN_CONNECTED };

struct sconn {
    struct ev_io io;
    struct stream st;
    struct server *server;
    uint8_t state;
    uint8_t resp; /* the protocol version it speaks to the server (2; 3 for RESP3 clients) */
    bool dirty;   /* on the proxy's flush list */
    struct sconn *dirty_prev, *dirty_next;
    struct buf out;   /* request bytes queued for the socket */
    size_t out_pos;   /* bytes of out already written */
    struct buf in;    /* response bytes read, not yet parsed */
    size_t need;      /* parse again only once in.len reaches this (parser hint) */
    struct req *head; /* requests awaiting a response, oldest first */
    struct req *tail;
    struct req *unsent;    /* first request not yet fully written */
    uint64_t wire_queued;  /* bytes ever queued on this connection */
    uint64_t wire_written; /* bytes ever written */
    uint32_t swallow;      /* replies to connection set-up (AUTH/SELECT) still to drop */
    /* The AUTHs of redis_auth "user password" first among them (server_auth_build):
     * their replies left to read, the way sent (SERVER_AUTH_UNKNOWN: both), whether
     * one succeeded. */
    uint8_t auth_left;
    uint8_t auth_sent;
    bool auth_ok;
    /* A client's own connection (pub/sub, WATCH), NULL for a shared one. It is freed
     * with its client; a failure of it ends the client's subscriptions or watch. */
    struct client *owner;
    /* A client's own redis connection asks CLIENT ID last in its set-up: the
     * server's id for it (0: not known, or refused), which CLIENT UNBLOCK
     * names to end a wait without losing what it pops (blocking.c). */
    int64_t srv_id;
    bool id_asked;
    bool end_at_id;     /* a blocked client let go before srv_id came: blocking_id_known */
    bool quiet;         /* the proxy's own query (a cluster map): its closes are logged at info */
    uint16_t sub_cmd;   /* subscribed: replies are parsed as pushes with this command id */
    uint32_t sub_names; /* a client's subscribed connection: the channels and patterns it
                           was asked to subscribe to and not yet to leave (pubsub.c) */
    bool gating;        /* holds its server's shared connections (sconn_gate) */
    bool shared;        /* one of its server's conns[] or conns3[] (a gate holds it) */
    bool paused;        /* not read from: its owner leaves its messages unread (sconn_pause) */
    struct ev_timer timer;           /* deadline of the oldest request */
    struct rsp_info ri;              /* parse scratch */
    struct tls_session *tls_session; /* offered on the next connect (resumption) */
};

void sconn_init(struct sconn *c, struct server *s);
/* A connection of client owner's own to s, speaking protocol version resp. */
struct sconn *sconn_new_private(struct server *s, struct client *owner, int resp);
void sconn_free_private(struct sconn *c);
/* Stop (or start again) reading a connected private connection that waits
 * for no reply: what its server pushes stays there (pubsub_pace). */
void sconn_pause(struct sconn *c, bool paused);
/* A private connection speaks protocol version resp from now on (its client's
 * HELLO changed it): HELLO is queued behind what it carries (its reply
 * dropped), or said at its next connect. */
void sconn_speak(struct sconn *c, int resp);
/* Close (answering what waits with msg) and free the buffers. */
void sconn_deinit(struct sconn *c, const char *msg);
/* Make sure the connection is connecting or connected: 0, or an errno code
 * (EHOSTUNREACH for a sentinel group with no known master, see server_strerror). */
int sconn_ensure(struct sconn *c);
/* Queue len request bytes for r (NULL: noreply, no response will come). */
void sconn_send(struct sconn *c, struct req *r, const uint8_t *p, size_t len);
/* The same for a request that holds the connection until answered (BLPOP): it
 * may wait block_ms (< 0: without end) beyond the pool's timeout. */
void sconn_send_blocking(struct sconn *c, struct req *r, const uint8_t *p, size_t len,
                         int64_t block_ms);
/* r, just queued on c (a cluster pool's, which builds it in place): its
 * deadline as sconn_send_blocking sets it. */
void sconn_block_deadline(struct sconn *c, struct req *r, int64_t block_ms);
/* r, waiting on c: answered within ms from now, or it fails as timed out. */
void sconn_req_deadline(struct sconn *c, struct req *r, uint64_t ms);
/* The output buffer, for a caller that builds a request in place (a split's
 * fragment); then sconn_queued() with the bytes it appended. */
struct buf *sconn_out(struct sconn *c);
/* (On a client's own connection whose set-up is not answered yet, the
 * server's shared connections then hold their writes until it is: sconn_gate.) */
void sconn_queued(struct sconn *c, struct req *r, size_t len);
/* Write queued bytes; called before sleeping for dirty connections. A shared
 * connection of a gated server (server_gated) writes nothing yet. */
void sconn_flush(struct sconn *c);
/* c has bytes to write: back on the flush list (a gate was lifted). */
void sconn_wake(struct sconn *c);
/* A client's own connection moves to its server's heir (a reload kept the
 * server, server_adopt). */
void sconn_follow(struct sconn *c, struct server *to);
/* Close the connection, answering every request waiting on it with msg;
 * stat_field (< 0: none) is the counter the reason adds to, and a failure
 * counts against the server's health unless it is no fault of the server. */
void sconn_fail(struct sconn *c, const char *msg, int stat_field);
/* The same, counting nothing against the server (a failover, a reset). */
void sconn_reset(struct sconn *c, const char *msg);
/* No request waits, nothing is left to write, and it is not on the flush list:
 * freeing it now loses nothing and leaves no dangling pointer. */
bool sconn_idle(const struct sconn *c);
/* Bytes of memory its buffers hold (the buffer limit). */
size_t sconn_memory(const struct sconn *c);
/* Give back what c's output buffer holds past its need: the bytes written and
 * not kept for a resend, and the rounding of its growth (memlimit.c, before it
 * lets anything go). Moves the bytes: no pointer into c->out may be held. */
void sconn_out_fit(struct sconn *c);

#endif
