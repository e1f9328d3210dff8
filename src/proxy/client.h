/*
 * client: a client connection of a pool. Reads requests, hands each to the
 * router, and writes the replies back in the order the requests came
 * (cqueue.h keeps that order).
 *
 * States: [handshake (TLS listener: until the TLS handshake is done, at most
 * CLIENT_HANDSHAKE_MS)] -> open (reading) -> closing (no more reading; closes
 * once every reply is written) -> [lingering (refused for what it sent, or
 * drained while it may still send: its write side shut, what it still sends
 * dropped; client_linger.c)] -> closed
 * (off the pool, on the proxy's dead list, freed before the loop sleeps). A
 * handshake that fails closes that client alone.
 */
#ifndef NC_CLIENT_H
#define NC_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "event/ev.h"
#include "net/stream.h"
#include "proto/proto.h"
#include "proxy/cqueue.h"
#include "proxy/pubsub.h"
#include "proxy/txn.h"

struct proxy;
struct pool;

enum client_lane { LANE_SERVER, LANE_PUBSUB };

struct client {
    struct ev_io io;
    struct stream st;
    struct proxy *px;  /* not via the pool: a closed client may outlive it */
    struct pool *pool; /* changes when a reload hands the client to a new pool */
    uint64_t id;
    /* when the replaced process handed it over (binary upgrade), or 0: that
     * process may have sent its last writes to a master this one does not use
     * yet (see hold_admits) */
    uint64_t imported_us;
    struct buf in;  /* bytes read; those from in_pos on not yet parsed */
    size_t in_pos;  /* (client_process moves the rest down only when that is cheap) */
    size_t need;    /* parse again only once the unparsed bytes reach this */
    size_t drop;    /* bytes of a dropped request (PARSE_DROP) still to come */
    struct buf out; /* reply bytes for the socket */
    size_t out_pos;
    struct cqueue q;       /* requests awaiting their reply */
    size_t avg_reply;      /* moving average of this client's reply sizes */
    uint32_t replies_seen; /* (up to a bound) its window of requests in flight grows with them */
    struct local_ctx lc;
    struct req_info ri; /* parse scratch */
    struct txn txn;     /* MULTI ... EXEC, WATCH */
    struct subs subs;   /* SUBSCRIBE ... */
    /* a cluster pool's order (cluster.h): the next request's place, the requests
     * out at nodes, and the map version when the first of those was sent */
    uint64_t cl_seq;
    uint32_t cl_out;
    uint32_t cl_epoch;
    /* its multi-key requests and transactions out (cluster_send.c, cl_barrier):
     * how many, their slot, or that they are of several slots */
    uint32_t cl_barrier_out;
    uint16_t cl_barrier_slot;
    bool cl_barrier_slots;
    char addr[64]; /* the peer and the local end, for CLIENT INFO */
    char laddr[64];
    /* replies of one read go out in one write (client.c, client_holding) */
    uint16_t batch;     /* reads so far: the batch of the requests parsed now */
    uint16_t out_batch; /* the batch of the last reply put in out */
    bool hold_expired;  /* the replies in out waited reply_batch_wait: write them */
    struct ev_timer hold_timer;
    /* a request that needs a connection of its own to a server not known yet
     * waits at the start of in (client_wait_server); nothing after it is parsed */
    bool server_wait;
    uint64_t server_wait_since_ms; /* its first try; 0: none waits */
    struct ev_timer server_wait_timer;
    /* the client switched server connections (HELLO, the end of a WATCH, a
     * reload): its next request for a server waits until every earlier one is
     * answered, so it cannot overtake them on another connection (router.c);
     * so does a request for its subscriptions' connections after one for the
     * others, and the other way round (lane: enum client_lane of the last) */
    bool fence;
    uint8_t lane;
    bool fence_wait; /* one waits so, at the start of in; nothing after it is parsed */
    /* its blocking command failed before it reached its server: the failure
     * closes the client at block_fail_at_ms, not sooner (blocking_fail_later) */
    uint64_t block_fail_at_ms;
    struct ev_timer block_fail_timer;
    char block_fail_why[96];
    bool dirty;
    bool handshake; /* TLS: the handshake is not done yet */
    bool closing;   /* no more reading: close once every reply is written */
    bool read_eof;  /* the client sent all it will: what it sent is still parsed (as the
                       limits let it), then closing */
    bool refused;   /* ... and then linger: an error about its input was the last reply */
    bool drained;   /* ... and then linger: the proxy stopped reading it (a stop, a retired
                       pool) while it may still send, until its replies are delivered */
    bool hung_up;   /* ... because a request of its failed (client_hang_up) */
    bool lingering; /* write side shut, reading to drop until linger_timer or EOF */
    bool closed;
    bool spoke;               /* a request of its was parsed (req_info.mid_stream) */
    bool said_bye;            /* it closed its end or sent QUIT: client_eof counts it when it is
                                 closed, with client_connections (as twemproxy does) */
    struct ev_timer hs_timer; /* bounds the TLS handshake */
    struct ev_timer linger_timer;
    uint64_t linger_end_ms;
    uint64_t linger_dropped; /* bytes read and dropped while lingering */
    uint64_t linger_budget;  /* ... after which a refused client is closed (client_linger.c) */
    struct client *next_dirty;
    bool hs_waiting; /* in the proxy's FIFO of handshakes for the next turns */
    struct client *hs_prev;
    struct client *hs_next;
    struct client *prev; /* the pool's list of clients */
    struct client *next;
    struct client *next_dead;
};

void listener_on_accept(struct ev_loop *loop, struct ev_io *io, unsigned events);
/* A client of pool p on connected socket fd (which it owns from now on),
 * speaking TLS (the pool's listen_tls) when tls, from peer as accept gave it
 * (NULL: the socket is asked). NULL when out of memory (fd closed). */
struct client *client_open(struct pool *p, int fd, bool tls, const struct sockaddr_storage *peer,
                           socklen_t peer_len);
void client_flush(struct client *c);
/* The proxy's hs_timer: the next of the handshakes that wait (client.c). */
void client_on_handshake_turn(struct ev_loop *loop, struct ev_timer *t);
void client_close(struct client *c);
void client_free(struct client *c);
void client_mark_dirty(struct client *c);
/* c's request failed for its server or for the proxy where c is a consumer
 * that reconnects on a close (a blocking command, a subscription): c closes
 * once the replies before it are written, as its connection to the server
 * itself would have closed, with no error reply (RQ and Celery take one to
 * their BRPOP as fatal; ioredis does not subscribe again after one). why goes
 * to the log; counted in forward_error. Once per client: the requests after
 * the first to fail are not answered at all, failed or not. */
void client_hang_up(struct client *c, const char *why);
/* Account one reply of len bytes in the client's average reply size. */
void client_note_reply(struct client *c, size_t len);
/* The request being routed needs a connection of the client's own to a server
 * that is not known yet but may be soon (pending: a cluster pool without a
 * slot map, a sentinel group in its first look). True: it waits, unparsed,
 * and is tried again every few ms; false: it goes now (not pending, or it
 * waited failover_hold: it gets the error of a server not known). */
bool client_wait_server(struct client *c, bool pending);
/* The request being routed must not overtake the client's earlier requests
 * (fence): true when some are unanswered, and it waits, unparsed, until the
 * last of them is answered (client_flush tries it again); false: it goes. */
bool client_wait_fence(struct client *c);
/* Every request read has its reply (perhaps not yet written) and nothing
 * unparsed is left: draining it now loses nothing it sent that was read (a
 * binary upgrade lets such clients go, right behind their last reply). */
static inline bool client_answered(const struct client *c)
{
    return c->q.head == NULL && c->in.len == 0 && c->drop == 0 && !c->closing && !c->closed;
}
/* Binary upgrade (client_pass.c): whether c could be handed to the new
 * process: a plain socket, or one in the loop's ring (which lets go of it),
 * not TLS (its session is this process's); no subscription or transaction
 * (whose state lives in this process's server connections). */
bool client_travels(const struct client *c);
/* ... once its transaction (MULTI, WATCH) ends, which nothing else prevents. */
bool client_travels_after_txn(const struct client *c);
/* ... and can go now: every request answered and written, nothing read and
 * not parsed. What the kernel holds unread moves with the socket. */
bool client_passable(const struct client *c);
/* ... and its socket is free to go: a ring stream is made plain first (its
 * receive cancelled: maybe only after a loop turn; bytes that receive took
 * are answered here first). */
bool client_pass_ready(struct client *c);
/* What the new process needs to go on with c (its pool by name, login,
 * protocol version, name), appended to out. */
void client_export(const struct client *c, struct buf *out);
/* The client handed over on fd with the state at p (n bytes), in the pool of
 * that name; NULL (fd closed) when there is none or the state is not
 * understood. */
struct client *client_import(struct proxy *px, int fd, const uint8_t *p, size_t n);
/* Bytes of memory this client's buffers and waiting replies take. */
size_t client_memory(const struct client *c);
/* The reply buffer, given a pooled chunk when it has none. */
struct buf *client_outbuf(struct client *c);
/* Refuse what the client sent: msg as an error reply (NULL: the caller queued
 * the answer), then no more reading;
 * once every reply is written the client lingers (client_linger.c). */
void client_refuse(struct client *c, const char *msg);
/* Over --buffer-limit, when most of what the client holds is the request it
 * is sending: refuse that request with an error saying so (the client then
 * lingers, client_linger.c; a memcached value is dropped and the client goes
 * on), and give its buffer back now. False, with nothing done, otherwise. */
bool client_refuse_for_memory(struct client *c);
/* client_linger.c: set up the timer (at open); start lingering (every reply
 * written); drop what arrived while lingering. */
void client_linger_init(struct client *c);
void client_linger(struct client *c);
void client_linger_read(struct client *c);
/* Stop reading; answer what it sent (requests read but not yet sent on, which
 * its limits held back, go on as replies come) and close once every reply is
 * written (graceful shutdown). */
void client_drain(struct client *c);
/* QUIT: answered, then closed once every reply is written. */
void client_quit(struct client *c);
/* Hand an open client to pool `to` (a reload): its next request is routed there,
 * requests already at servers finish where they are. False, with nothing done,
 * when a server its own connections or transaction use has no heir in `to`
 * (server.heir): it then stays with its old pool. */
bool client_move(struct client *c, struct pool *to);
/* A client logged in as a client_auth user its pool no longer lists (a reload, a
 * hand-over to a binary with another configuration) is closed, as redis closes the
 * connections of a deleted ACL user. */
void client_check_user(struct client *c);
/* A connection of the client's own (subscriptions, WATCH) failed with msg. */
void client_private_lost(struct client *c, struct sconn *sc, const char *msg);

#endif
