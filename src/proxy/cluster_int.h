/*
 * cluster_int: what the files of a cluster pool share (see cluster.h):
 * cluster.c (the state, the nodes, the slot map, reload), cluster_send.c
 * (sending, redirections, the hold), cluster_router.c (the request kinds)
 * and cluster_refresh.c (asking a node for the map).
 */
#ifndef NC_CLUSTER_INT_H
#define NC_CLUSTER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/cluster_msg.h"
#include "conf/conf.h"
#include "core/log.h"
#include "event/ev.h"
#include "proxy/cluster.h"
#include "stats/stats_fields.h"

#define NODE_NONE UINT16_MAX
/* Replicas of one master a read may go to (more are not used). */
#define CLUSTER_MAX_REPLICAS 8
/* How often held requests are offered again (TRYAGAIN's back-off starts here). */
#define CLUSTER_POLL_MS 5
/* Back-off of a request that got TRYAGAIN, a CLUSTERDOWN of its slot or of
 * writes (or too many redirections): it doubles from CLUSTER_POLL_MS up to this. */
#define CLUSTER_BACKOFF_MAX_MS 50
/* The shortest gap between two log lines about refusals of one slot. */
#define CLUSTER_LOG_GAP_MS 10000
/* A node whose connection failed is tried again after this long. */
#define CLUSTER_NODE_RETRY_MS 100
/* A replica that did not answer within timeout takes reads again after this. */
#define CLUSTER_STALLED_RETRY_MS 1000
#define SLOT_CANARY_OUT          UINT64_MAX
/* MOVED / ASK followed at once for one request; past it, it waits a little. */
#define CLUSTER_MAX_REDIRECTS 5
/* Refresh: the map is asked for at most this often (MOVED asks for one). */
#define CLUSTER_REFRESH_GAP_MS 20
/* ... and this often while something waits (a node down, requests held). */
#define CLUSTER_REFRESH_FAST_MS 100
/* How long a node may take to describe the cluster. */
#define CLUSTER_QUERY_WAIT_MS 1000

/* Why a request waits (the error it gets when failover_hold runs out). */
enum cluster_why {
    WHY_NONE = 0,
    WHY_MAP,       /* no map yet, or its slot has no master */
    WHY_ORDER,     /* behind a request of its client */
    WHY_TRYAGAIN,  /* -TRYAGAIN */
    WHY_DOWN,      /* -CLUSTERDOWN The cluster is down */
    WHY_UNSERVED,  /* -CLUSTERDOWN Hash slot not served */
    WHY_DOWN_RO,   /* -CLUSTERDOWN ... only accepts read commands (a write) */
    WHY_NODE,      /* its master cannot be reached */
    WHY_STALLED,   /* its node did not answer within timeout */
    WHY_REDIRECTS, /* redirected again and again */
};

/* A request of a cluster pool: what it needs to be sent again (req->cx). One
 * allocation with its bytes: req_free frees it with free(). */
struct cluster_req {
    uint64_t seq;           /* its place among its client's requests */
    uint64_t wait_since_us; /* when it first waited (failover_hold counts from it), 0: never */
    uint64_t retry_at_ms;   /* not sent again before (back-off) */
    uint32_t len;
    uint32_t pre; /* replies before its own: a transaction's MULTI +OK and QUEUEDs */
    uint16_t slot;
    uint16_t ask_to;   /* the server an ASK named: ASKING + the request, there, once */
    uint16_t pre_to;   /* the server the redirection among those named (NODE_NONE: none) */
    uint8_t pre_kind;  /* the first redirection among those (CLUSTER_REPLY_*): it aborted */
    uint8_t redirects; /* MOVED/ASK followed in a row */
    uint8_t backoff;   /* TRYAGAIN's doublings */
    uint8_t why;       /* enum cluster_why: why it waits (or waited last) */
    bool readonly;
    bool to_master;     /* a read a replica redirected: its master answers it */
    bool out;           /* at a node: counted in its client's cl_out */
    bool barrier;       /* several keys, or a transaction: see cl_barrier */
    uint16_t canary_at; /* the one request tried at a node that says the cluster is
                         * down: that node (NODE_NONE: not one) */
    bool slot_canary;   /* the one request tried for a slot a node said is not served */
    int64_t block_ms;   /* a blocking command's own timeout (blocking.h), else 0 */
    uint8_t bytes[];
};

/* What the pool knows of each of its servers (same index). */
struct cluster_node {
    struct conf_server *own;     /* the conf of a node learned at run time (NULL: a seed) */
    char id[CLUSTER_ID_MAX + 1]; /* its id in the last map that named it ("": not said) */
    bool in_map;                 /* named in the last topology */
    bool forgotten;              /* a node learned at run time the map dropped: its
                                  * connections close once idle (cluster_apply_forget) */
    bool master;                 /* the master of some slots */
    bool failed;                 /* the cluster says it failed */
    bool loading;                /* a replica still syncing */
    bool down;                   /* our connection to it failed */
    bool says_down;              /* it said CLUSTERDOWN The cluster is down: ... */
    bool stalled;                /* or a request timed out there (a stopped process): ... */
    bool canary_out;             /* ... one request tries at a time, and it is out */
    uint64_t down_next_ms;       /* says_down: the next one tries from then */
    uint64_t retry_at_ms;        /* down: tried again from then */
    uint64_t stalled_retry_ms;   /* stalled: a replica takes a read again from then */
    uint16_t replica_of;         /* a replica: its master's index */
    struct replica_check *check; /* a replica taking reads: whether it has its master's data */
    uint8_t nreps;               /* a master: its replicas for reads */
    uint16_t reps[CLUSTER_MAX_REPLICAS];
};

struct cluster {
    struct pool *p;
    bool closing;
    bool stopped; /* a retired pool: no more queries */
    bool known;   /* a map was learned */
    /* refusals of one slot or of writes only (CLUSTERDOWN Hash slot not served,
     * ... only accepts read commands): logged at most every CLUSTER_LOG_GAP_MS */
    struct log_gap refused_log;
    struct log_gap refresh_log; /* no node gives a map yet: said every CLUSTER_LOG_GAP_MS */
    /* slots a node said no node serves (CLUSTERDOWN Hash slot not served): per
     * slot, the time before which none of its requests goes, SLOT_CANARY_OUT
     * while one of them is out to find out whether it is served again, 0 when
     * served. NULL until a first slot was refused. */
    uint64_t *slot_next_ms;
    uint32_t version; /* of the map: +1 for every change of a slot's master */
    uint16_t owner[CLUSTER_SLOTS];
    uint32_t changed[CLUSTER_SLOTS]; /* the version that set owner[slot] */
    struct cluster_node *nodes;      /* CLUSTER_POOL_MAX_SERVERS */
    struct hold *hold;
    struct ev_timer poll; /* offers held requests again */
    /* refresh (cluster_refresh.c) */
    struct sconn *qconn; /* private connection of the query in flight (or the last one) */
    bool querying;       /* a query is out */
    bool again;          /* asked for again while one was out */
    bool use_slots;      /* the nodes know no CLUSTER SHARDS */
    uint32_t qnext;      /* the next node to ask */
    uint32_t qtries;     /* nodes tried in this round */
    uint64_t last_query_ms;
    struct ev_timer tick;  /* the next query */
    struct ev_timer qwait; /* the query in flight times out */
    struct cluster_topo topo;
    int64_t stats[SC_COUNT];
};

/* cluster.c */
/* The server at addr (a topology's or a redirection's), made a node of the
 * pool when new; asked: the node that said it (an empty host is its own).
 * NULL when it cannot be (a name that does not resolve, the pool is full). */
struct server *cluster_node_at(struct cluster *cl, const struct cluster_node_addr *addr,
                               const struct server *asked);
/* A map known, with nodes other than asked in it, and t names none of them: not
 * the cluster we know (a node removed from it and reset, alone or in another
 * cluster, at an address of ours). Its map would take every slot. Not when a node
 * t names cannot be placed (a name that does not resolve now): that may be one. */
bool cluster_topo_foreign(struct cluster *cl, const struct cluster_topo *t,
                          const struct server *asked);
/* Apply a node's view of the cluster. */
void cluster_apply(struct cluster *cl, const struct cluster_topo *t, const struct server *asked);
/* The slot's master now says it is at s (MOVED): true when the map changed. */
bool cluster_map_move(struct cluster *cl, uint16_t slot, struct server *s);
/* Our connection to s failed: it gets no request for a while. */
void cluster_node_mark_down(struct cluster *cl, struct server *s);
/* Something waits on the cluster: poll faster. */
bool cluster_degraded(const struct cluster *cl);
uint32_t cluster_server_index(const struct cluster *cl, const struct server *s);

/* cluster_send.c */
/* Send r (a request or fragment of client c whose r->cx is set) or hold it. */
void cluster_submit(struct cluster *cl, struct client *c, struct req *r);
/* Offer the held requests again soon (a map, a node, a client's order changed). */
void cluster_kick(struct cluster *cl);
void cluster_poll_stop(struct cluster *cl);
struct hold *cluster_hold(struct cluster *cl);
/* A cluster_req for a request of client c: len bytes at p, for slot. */
struct cluster_req *cluster_req_new(struct client *c, const uint8_t *p, size_t len, uint16_t slot,
                                    bool readonly, uint64_t seq);

/* cluster_refresh.c */
void cluster_refresh_init(struct cluster *cl);
/* Ask a node for the map soon (at most every CLUSTER_REFRESH_GAP_MS). */
void cluster_refresh_soon(struct cluster *cl);
/* Stop asking: the query connection is freed. */
void cluster_refresh_stop(struct cluster *cl);

#endif
