/*
 * server: a backend of a pool: where it is, its connections, its health and
 * its counters.
 *
 * A server owns a fixed array of server_connections connections (sconn.h). A
 * client is pinned to one connection per server (client id modulo the count),
 * so its requests to that server are executed in the order it sent them.
 */
#ifndef NC_SERVER_H
#define NC_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "core/log.h"
#include "event/ev.h"
#include "net/sock.h"
#include "proxy/health.h"
#include "stats/histo.h"
#include "stats/stats_fields.h"

struct buf;
struct pool;
struct sconn;
struct replica_set;
struct hold;

/* How a server takes redis_auth "user password" (server_auth_build). */
enum server_auth_form {
    SERVER_AUTH_UNKNOWN, /* not answered yet: both are sent */
    SERVER_AUTH_USER,    /* AUTH user password: an ACL user */
    SERVER_AUTH_WHOLE,   /* AUTH "user password": one password, as twemproxy sends it */
};

/* Where a server's connections go. Runtime data: a sentinel group's master moves. */
struct server_addr {
    struct sockaddr_storage ss;
    socklen_t len; /* 0: resolve cs->addr.host at each connect (not in DNS at load) */
    bool known;    /* false: a sentinel group whose master is not known yet */
    bool looking;  /* ... and the sentinels' first look for it is not over (hold.c) */
};

struct server {
    struct pool *pool;
    const struct conf_server *cs;
    struct server_addr addr;
    char *unknown_msg;        /* the error while !addr.known (sentinel groups only) */
    int64_t gstats[SG_COUNT]; /* a sentinel group's failover counters (stats_fields.h) */
    struct hold *hold;        /* a sentinel group's requests held for a failover (hold.h) */
    uint32_t idx;
    struct sconn *conns;  /* RESP2, for every client but RESP3 ones */
    struct sconn *conns3; /* the same number speaking RESP3 (HELLO 3), made when needed */
    uint32_t nconns;
    struct health health; /* changed by health.c only */
    /* its connections' failures said at warning level once per gap (sconn.c): a
     * server down without ejection fails every request sent to it */
    struct log_gap close_log;
    bool readonly_conns; /* a cluster replica: each connection says READONLY first */
    /* named by a host name (not a sentinel group): its address is looked up
     * again before a connect, as twemproxy does (server_resolve) */
    struct sock_lookup lookup;
    uint8_t auth_form; /* enum server_auth_form: learned by its connections */
    int64_t stats[SS_COUNT];
    struct histo lat_server; /* queued to response, as the backend gives it (us) */
    /* Replicas of a sentinel group (SPEC 10, replica.c): each is a hidden server
     * of its own (address, connections) outside the distribution and the stats.
     * A hidden server has owner = its group, and counts its traffic, gauges and
     * latency into the owner's counters, so stats keep one entry per group. */
    struct replica_set *replicas; /* a group's; NULL: none known */
    struct server *owner;         /* a hidden replica's group; NULL otherwise */
    struct server *next_dead;     /* a hidden replica on the proxy's dead list */
    /* During a reload, the new pool's server that took this one's connections
     * (server_adopt): a moving client's own connections follow it. NULL otherwise. */
    struct server *heir;
    /* Clients' own connections still being set up with a request on them (a
     * blocking command, a SUBSCRIBE, a WATCH: server_gate_open): until the
     * server has read each, the shared connections hold their writes, so that
     * a request another client sends after it does not reach the server first
     * (a DEL or XADD overtaking the XREAD it was meant for, a PUBLISH the
     * SUBSCRIBE). At most SERVER_GATE_MS, then gate_lapsed lets them go until
     * no gate is left. */
    uint32_t gates;
    bool gate_lapsed;
    struct ev_timer gate_timer;
};

/* Connections to one server a process opens at most, whatever
 * server_connections says: each is set up front (about 500 bytes), and a
 * twemproxy file may say 2147483647 for "no limit" (it opens them as needed).
 * More to one redis or memcached server from one process serve nothing. */
#define SERVER_CONNS_MAX 1024u

/* The longest a gate holds a server's shared connections (and at most a
 * fourth of the pool's timeout): a connect and a round trip take well under a
 * millisecond on a LAN; a server that does not answer a connect in this time
 * would hold everyone else. */
#define SERVER_GATE_MS 50

int server_init(struct server *s, struct pool *p, const struct conf_server *cs, uint32_t idx);
/* Close every connection (answering what waits) and free what s holds. */
void server_deinit(struct server *s);
/* A reload kept the server: `to` (just initialised for the new pool) takes over
 * the connections of `from`, with the requests waiting on them, its counters and
 * the address a sentinel gave it. Health is not carried: the new pool starts
 * with every server in. */
void server_adopt(struct server *to, struct server *from);
/* Append to out the login a new connection to s sends for redis_auth "user
 * password" (the pool's redis_auth_user set): AUTH user password, or AUTH
 * "user password" as twemproxy reads it, or, until s answered one of them
 * (auth_form), both, the first way first: one fails, and a failed AUTH leaves
 * the login of the other in force. Returns the number of replies (0: out of
 * memory). */
uint32_t server_auth_build(const struct server *s, struct buf *out);
/* The server whose counters s updates: s, or the group of a hidden replica. */
static inline struct server *server_counted(struct server *s)
{
    return s->owner != NULL ? s->owner : s;
}
/* No connection of s (nor of its replicas) has work: see sconn_idle(). */
bool server_idle(const struct server *s);
/* The connection a client with this id, speaking protocol resp, uses for this
 * server: its replies then come in the client's protocol. */
struct sconn *server_conn_for(struct server *s, uint64_t client_id, int resp);
/* Why a connection to s could not be made: err (an errno code), or that a
 * sentinel group has no known master yet. */
const char *server_strerror(const struct server *s, int err);
/* Before a connect to s: a server named by a host name follows its name, as
 * twemproxy does (it looks the name up for every new connection), so an address
 * the name moves to (a DNS failover, a restarted pod) is used from the next
 * connection on (struct sock_lookup: at most every SOCK_LOOKUP_GAP_MS; one that
 * fails keeps the last address). Returns whether s has an address to connect to. */
bool server_resolve(struct server *s, uint64_t now_ms);
/* True when s is known to be at sa. */
bool server_addr_is(const struct server *s, const struct sockaddr *sa, socklen_t len);
/* Point s at a new address (a sentinel group's master). The first address is
 * just taken; a different later one closes every connection, answering its
 * requests with why, and counts a failover. Returns true when s moved. */
bool server_set_addr(struct server *s, const struct sockaddr *sa, socklen_t len, const char *why);
/* The first half of it: the address, the count, a fresh health; connections
 * open to the old address stay until server_reset_conns (hold.c lets the old
 * master answer what it has first). */
bool server_move_addr(struct server *s, const struct sockaddr *sa, socklen_t len);
/* Close every connection of s, answering its requests with why (also the
 * clients' own, of a WATCH: txn_master_moved). */
void server_reset_conns(struct server *s, const char *why);
void server_connect_all(struct server *s);
/* A client's own connection to s carries a request the server has not read
 * yet: s's shared connections write nothing until server_gate_close (or
 * SERVER_GATE_MS, at most a fourth of the pool's timeout). */
void server_gate_open(struct server *s);
void server_gate_close(struct server *s);
/* Whether s's shared connections hold their writes now. */
static inline bool server_gated(const struct server *s)
{
    return s->gates > 0 && !s->gate_lapsed;
}

#endif
