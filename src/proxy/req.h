/*
 * req: one client request on its way through the proxy, and the bookkeeping of
 * a split (multi-key) request.
 *
 * Ownership: a req sits in at most two queues, its client's (cqueue.h: replies
 * in order) and one server connection's (sconn.h: responses in order). It is
 * freed when it has left both: its response arrived (or it failed) and its
 * reply was handed to the client (or the client went away). Request bytes are
 * not kept: they were copied into the server connection's output buffer when
 * the request was queued (which, for a sentinel group's master and a replica
 * whose reads fall back to the master, keeps them until the request is
 * answered); a request held for a failover (hold.h)
 * waits with its bytes in its group's hold, off both queues until it is sent.
 */
#ifndef NC_REQ_H
#define NC_REQ_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "proto/proto.h"

struct client;
struct proxy;
struct sconn;
struct split;
struct req;
struct cluster_req;

/* What a request's reply becomes before its client sees it (SCAN's cursor over
 * the servers), or what the proxy does with the reply to a request of its own
 * (no client: INFO keyspace). err is set instead of p when the request failed. */
typedef void (*req_reply_fn)(struct req *r, struct buf *out, const uint8_t *p, size_t len,
                             const struct rsp_info *ri, const char *err);

struct req {
    struct proxy *px;      /* whose free list it goes back to */
    struct req *cnext;     /* next in the client's queue (the free list's link) */
    struct req *snext;     /* next in the server connection's queue */
    struct client *client; /* NULL once the client is gone */
    struct req *parent;    /* a fragment: the split request it belongs to */
    struct split *split;   /* a split/all request: its fragments' state */
    struct sconn *sconn;   /* where it waits for a response */
    uint32_t frag_idx;
    uint32_t len;        /* request bytes sent to the server */
    size_t client_bytes; /* request bytes held against the client's limit until answered */
    uint16_t cmd;
    uint16_t batch;     /* the client's read it came in (client.c: replies written together) */
    uint32_t skip;      /* replies before its own to drop (MULTI's, QUEUED ones) */
    req_reply_fn reply; /* NULL: the server's reply goes to the client as it is */
    void *reply_ctx;    /* for reply: with no client, whose request this is */
    uint64_t reply_arg; /* for reply (SCAN: the server it went to) */
    bool done;          /* answered: rsp holds the reply unless it went out at once */
    bool in_client;
    bool in_server;
    bool sent;            /* fully written to the server socket */
    bool held;            /* waiting in a group's hold (hold.h): not to be freed */
    bool resent;          /* a read sent again after its replica was lost: once */
    bool quiet;           /* (q) the replies proto->reply_shown hides do not reach the client */
    bool redirected;      /* a watched transaction: a node redirected (or held) a queued command */
    bool blocking;        /* it holds the client's own connection until answered (BLPOP) */
    bool unblocking;      /* ... and CLIENT UNBLOCK was sent for it (blocking_end) */
    bool hangs_up;        /* its failure closes its client, no error (client_hang_up) */
    bool ends_client;     /* ... it failed so: no reply after it is written (cqueue_release) */
    uint64_t wire_end;    /* the connection's byte count where this request ends */
    uint64_t deadline_ms; /* 0: no timeout */
    uint64_t start_us;    /* when it was parsed (client latency) */
    uint64_t queued_us;   /* when it was queued on a server connection */
    struct buf rsp;
    /* a cluster pool's request: its bytes, slot, redirections (cluster.h); freed with it */
    struct cluster_req *cx;
};

struct split {
    uint8_t *req; /* copy of the original request bytes (merge reads it) */
    size_t req_len;
    struct req_info info;
    struct frag_map *map; /* per original key (req_split_map); NULL for ROUTE_ALL */
    uint32_t nfrags;
    uint32_t pending;
    struct buf *rsps;
    struct rsp_info *infos;
    bool failed;
    char err[160];
    /* kept between uses (req_cache.c) */
    struct split *next;
    size_t req_cap;
    uint32_t frag_cap, map_cap;
    struct frag_map *map_store;
    size_t kept;
};

/* A proxy's free requests and splits, and the router's working memory
 * (req_cache.c): the request path allocates nothing once they are warm. */
struct req_cache {
    struct req *reqs; /* linked by cnext */
    uint32_t nreqs;
    struct split *splits; /* linked by next */
    uint32_t nsplits;
    void *scratch; /* req_scratch */
    size_t scratch_cap;
    struct buf out; /* req_outbuf */
    void *blocks;   /* req_block_get's free blocks */
    uint32_t nblocks;
    size_t kept_bytes; /* held by the free lists (counts toward --buffer-limit) */
};

struct req *req_new(struct proxy *px, uint16_t cmd);
/* A parent of nfrags fragments for the request p (info ri). */
struct req *req_new_split(struct proxy *px, const uint8_t *p, const struct req_info *ri,
                          uint32_t nfrags);
/* Fragment f of parent. */
struct req *req_new_frag(struct req *parent, uint32_t f);
/* The split's key map, n entries, owned by the split. */
struct frag_map *req_split_map(struct req *parent, uint32_t n);
/* Working memory of `bytes` bytes, valid until the next call (the router's
 * grouping of a split request's keys). */
void *req_scratch(struct proxy *px, size_t bytes);
/* An empty buffer for a merged reply, valid until the next call. */
struct buf *req_outbuf(struct proxy *px);
/* Free the scratch memory and merge buffer if a large request grew them (once
 * per loop turn: they are only used while a request is routed or answered). */
void req_cache_trim(struct req_cache *rc);
/* Back to the free list (or to malloc past its bound). */
void req_free(struct req *r);
void req_cache_free(struct req_cache *rc);
/* Memory a request keeps beside itself (a cluster request's copy of its bytes),
 * aligned for any type: blocks up to REQ_BLOCK_SIZE bytes come from a free list.
 * Never NULL (out of memory stops the process, as req_new). */
void *req_block_get(struct proxy *px, size_t n);
void req_block_put(struct proxy *px, void *p); /* p may be NULL */
/* A response (or an error) for r arrived: deliver, merge or drop it. */
void req_complete(struct req *r, const uint8_t *p, size_t len, struct rsp_info *ri);
void req_fail(struct req *r, const char *msg);
/* A redis request that only reads (the command table's READONLY flag): sent
 * again after its connection was lost, it repeats nothing. */
bool req_reads(const struct req *r);
/* r left its server queue or its client queue: free it if it is in neither. */
void req_release(struct req *r);

#endif
