/*
 * pool: the runtime side of one configured server pool: its servers, the
 * distribution over the live ones, its listener, its clients and its counters.
 * A pool keeps a reference on the configuration generation it was built from.
 */
#ifndef NC_POOL_H
#define NC_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"
#include "core/log.h"
#include "event/ev.h"
#include "hash/dist.h"
#include "net/accept.h"
#include "proto/proto.h"
#include "proxy/info.h"
#include "stats/histo.h"
#include "stats/stats_fields.h"

struct proxy;
struct server;
struct client;
struct cluster;

/* How keys map to servers, fixed when the pool is built (route.c acts on it). */
enum pool_mode {
    POOL_PLAIN = 0,      /* sharded: each key on the server its hash and distribution say */
    POOL_MASTER_REPLICA, /* one dataset: writes to the server named master, reads by read_from */
    POOL_SENTINEL,       /* sharded over sentinel groups whose masters move */
    POOL_CLUSTER,        /* a Redis Cluster: keys go to their slot's master (cluster.h) */
};

/* Something above the proxy that keeps a pool's servers current (the sentinel
 * client). The pool stops it before it goes: a callback, since the proxy must
 * not know what is above it. */
struct pool_watcher {
    void (*stop)(struct pool_watcher *w);
};

struct listener {
    struct ev_io io; /* data: the listener */
    struct pool *pool;
    struct accept_rest rest; /* out of descriptors: accept again a little later */
    bool tls;                /* its clients speak TLS (listen_tls) */
};

struct replica_check;

struct pool {
    struct proxy *px;
    struct conf *conf; /* reference on the generation */
    const struct conf_pool *cp;
    const struct proto *proto;
    uint32_t idx;
    enum pool_mode mode;
    bool replica_reads; /* a sentinel pool whose reads go to its groups' replicas */
    struct server *servers;
    uint32_t nservers;
    uint32_t cap_servers;    /* servers' room: a cluster pool adds the nodes it learns */
    struct cluster *cluster; /* a cluster pool's slot map and held requests (cluster.h) */
    struct dist dist;
    struct dist_node *nodes;      /* scratch for dist rebuilds */
    struct listener listener;     /* on listen */
    struct listener tls_listener; /* on listen_tls_addr: TLS clients beside plain ones */
    uint32_t nclients;
    struct client *clients;      /* every open client of the pool */
    struct ev_timer retry_timer; /* next ejected server to bring back (health.c) */
    struct pool_watcher *watcher;
    struct replica_check **checks; /* a static pool's replicas asked INFO (replica_check.h) */
    /* a pool a reload replaced: on the proxy's retired list until idle */
    struct pool *next_retired;
    uint64_t retire_deadline_ms;
    struct pool_info info; /* INFO's figures from the servers */
    int64_t stats[SP_COUNT];
    int64_t xstats[SPX_COUNT]; /* ours, after twemproxy's */
    struct log_gap auth_log;   /* the refused logins' log line (router.c) */
    struct histo lat_request;  /* parse to reply, as the client sees it (us) */
};

struct pool *pool_create(struct proxy *px, struct conf *conf, uint32_t idx);
void pool_destroy(struct pool *p);
/* Bind every listen address of p (listen, listen_tls_addr). */
int pool_listen(struct pool *p);
/* Bind only these (a reload keeps the sockets of addresses that did not change). */
int pool_listen_only(struct pool *p, bool main, bool tls);
/* Serve p on fd, a socket already listening on p's address (tls_addr: on
 * listen_tls_addr), handed over by the process this binary replaces, or bound
 * by the master for its workers. */
void pool_listen_fd(struct pool *p, bool tls_addr, int fd);
/* Close the listeners; the clients stay and are served (a binary upgrade: the
 * new process accepts from now on). */
void pool_stop_accepting(struct pool *p);
/* Rebuild the distribution after a server left or came back. */
void pool_rebuild(struct pool *p);
/* Stop accepting, let every client finish its pending replies, then close. */
void pool_drain(struct pool *p);
/* Drain, stop the watcher, and go on the proxy's retired list until idle or
 * the shutdown timeout (a reload replaced this pool). */
void pool_retire(struct pool *p);
/* No client, and no server connection with work (requests or unwritten bytes). */
bool pool_idle(const struct pool *p);
/* Connect every server of a preconnect pool. */
void pool_preconnect(struct pool *p);

#endif
