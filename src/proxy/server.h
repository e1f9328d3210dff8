/*
 * server: a backend of a pool and its connections.
 *
 * A server owns a fixed array of server_connections connections (struct sconn),
 * each a small state machine CLOSED -> CONNECTING -> CONNECTED -> CLOSED that is
 * connected lazily (or at start with preconnect). A client is pinned to one
 * connection per server (client id modulo the count), so its requests to that
 * server are executed in the order it sent them.
 */
#ifndef NC_SERVER_H
#define NC_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "core/buf.h"
#include "event/ev.h"
#include "proto/proto.h"
#include "stats/histo.h"
#include "stats/stats_fields.h"

struct pool;
struct req;
struct replica_set;

enum sconn_state { SCONN_CLOSED = 0, SCONN_CONNECTING, SCONN_CONNECTED };

struct sconn {
    struct ev_io io;
    struct server *server;
    uint8_t state;
    bool dirty; /* on the instance's flush list */
    struct sconn *next_dirty;
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
    struct ev_timer timer; /* deadline of the oldest request */
    struct rsp_info ri;    /* parse scratch */
};

/* Where a server's connections go. Runtime data: a sentinel group's master moves. */
struct server_addr {
    struct sockaddr_storage ss;
    socklen_t len; /* 0: resolve cs->addr.host at each connect (not in DNS at load) */
    bool known;    /* false: a sentinel group whose master is not known yet */
};

struct server {
    struct pool *pool;
    const struct conf_server *cs;
    struct server_addr addr;
    char *unknown_msg; /* the error while !addr.known (sentinel groups only) */
    int64_t failovers; /* master switches (sentinel groups; stats server_failover) */
    uint32_t idx;
    struct sconn *conns;
    uint32_t nconns;
    uint32_t failures; /* consecutive */
    bool ejected;
    uint64_t retry_at_ms;
    int64_t stats[SS_COUNT];
    struct histo lat_server; /* queued to response, as the backend gives it (us) */
    /* Replicas of a sentinel group (SPEC 10, replica.c): each is a hidden server
     * of its own (address, connections) outside the distribution and the stats.
     * A hidden server has owner = its group, and counts its traffic, gauges and
     * latency into the owner's counters, so stats keep one entry per group. */
    struct replica_set *replicas; /* a group's; NULL: none known */
    struct server *owner;         /* a hidden replica's group; NULL otherwise */
};

int server_init(struct server *s, struct pool *p, const struct conf_server *cs, uint32_t idx);
void server_deinit(struct server *s);
/* A reload kept the server: `to` (just initialised for the new pool) takes over
 * the connections of `from`, with the requests waiting on them, its counters and
 * the address a sentinel gave it. Ejection is not carried: the new pool starts
 * with every server in. */
void server_adopt(struct server *to, struct server *from);
/* The server whose counters s updates: s, or the group of a hidden replica. */
struct server *server_counted(struct server *s);
/* True when no connection of s (nor of its replicas) has a request waiting. */
bool server_idle(const struct server *s);
/* The connection a client with this id uses for this server. */
struct sconn *server_conn_for(struct server *s, uint64_t client_id);
/* Queue r (whose bytes are already appended to c->out by the caller via
 * sconn_out()) on the connection. noreply requests are not queued: pass r NULL. */
void sconn_push(struct sconn *c, struct req *r, size_t len);
/* Make sure the connection is connecting or connected; returns 0 or -1 (errno set). */
int sconn_ensure(struct sconn *c);
/* Write queued bytes; called before sleeping for dirty connections. */
void sconn_flush(struct sconn *c);
/* Close the connection, answering every request waiting on it with msg. */
void sconn_fail(struct sconn *c, const char *msg, int stat_field);
/* Why a connection to s could not be made: err (errno of sconn_ensure), or
 * that a sentinel group has no known master yet. */
const char *server_strerror(const struct server *s, int err);
/* True when s is known to be at sa. */
bool server_addr_is(const struct server *s, const struct sockaddr *sa, socklen_t len);
/* Point s at a new address (a sentinel group's master). The first address is
 * just taken; a different later one closes every connection, answering its
 * requests with why, and counts a failover. Returns true when s moved. */
bool server_set_addr(struct server *s, const struct sockaddr *sa, socklen_t len, const char *why);
/* A failure was seen on the server (connect, error, eof, timeout). */
void server_failure(struct server *s);
void server_connect_all(struct server *s);

#endif
