#include "proxy/router.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "proxy/blocking.h"
#include "proxy/client.h"
#include "proxy/cluster.h"
#include "proxy/cqueue.h"
#include "proxy/hold.h"
#include "proxy/info.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/pubsub.h"
#include "proxy/req.h"
#include "proxy/route.h"
#include "proxy/sconn.h"
#include "proxy/server.h"
#include "proxy/txn.h"

void router_reply_error(struct client *c, const char *msg)
{
    struct buf b;
    buf_init(&b);
    c->pool->proto->error_reply(&b, msg);
    cqueue_local(c, b.data, b.len);
    buf_free(&b);
}

void router_fail(struct client *c, const char *msg, bool noreply)
{
    if (c->pool->cp->server_failure_closes_client) {
        client_hang_up(c, msg); /* nothing after it is read: it is the last */
        return;
    }
    c->pool->stats[SP_forward_error]++;
    if (!noreply) {
        router_reply_error(c, msg);
    }
}

/* A request the pool cannot serve is answered by an error, unless it is
 * noreply: memcached's client reads no reply for it, so an error would be
 * taken for the answer to its next request (memcached itself stays silent).
 * No server for it is a server failure (router_fail). */
static void router_refuse(struct client *c, int miss, const struct route *r,
                          const struct req_info *ri)
{
    char msg[256];
    struct pool *pool = c->pool;
    const char *text = route_miss_text(pool, miss, r, msg, sizeof(msg));
    if (miss != ROUTE_MISS_CROSS) {
        router_fail(c, text, ri->noreply);
        return;
    }
    pool->xstats[SPX_cross_server_refused]++;
    if (!ri->noreply) {
        router_reply_error(c, text);
    }
}

/* The client's connection to s: its own while it watches keys there, else the
 * shared one for its id and protocol. */
static struct sconn *router_conn_of(struct client *c, struct server *s)
{
    struct sconn *sc = txn_pinned(c, s);
    return sc != NULL ? sc : server_conn_for(s, c->id, c->lc.resp);
}

/* The client's connection to s, connecting it if needed; NULL with *err (an
 * errno code) when it cannot be. A read for a hidden replica that cannot be
 * reached may fall back to its group (*s says where it went). */
static struct sconn *router_conn(struct client *c, struct server **s, bool readonly, int *err)
{
    struct sconn *sc = router_conn_of(c, *s);
    *err = sconn_ensure(sc);
    if (*err == 0) {
        return sc;
    }
    struct server *instead = route_fallback(*s, readonly, true);
    if (instead == NULL) {
        return NULL;
    }
    *s = instead;
    sc = router_conn_of(c, instead);
    *err = sconn_ensure(sc);
    return *err == 0 ? sc : NULL;
}

/* The client's own connection to s (SCRIPT KILL), connecting it if needed. */
static struct sconn *router_own_conn(struct client *c, struct server *s, int *err)
{
    struct sconn *sc = txn_own_conn(c, s);
    *err = sc != NULL ? sconn_ensure(sc) : ENOMEM;
    return *err == 0 ? sc : NULL;
}

/* Send the request whole to target (or hold it while its group fails over). */
static void router_forward(struct client *c, struct server *target, const uint8_t *p,
                           const struct req_info *ri)
{
    int err;
    if (hold_take(c, target, p, ri, 0)) {
        return;
    }
    struct sconn *sc = router_conn(c, &target, ri->readonly, &err);
    if (sc == NULL) {
        if (hold_take(c, target, p, ri, err)) {
            return;
        }
        router_fail(c, server_strerror(target, err), ri->noreply);
        return;
    }
    struct req *r = NULL;
    if (!ri->noreply) {
        r = req_new(c->px, ri->cmd);
        r->quiet = ri->quiet;
        cqueue_push(c, r, ri->len);
    }
    sconn_send(sc, r, p, ri->len);
}

static void route_whole(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct route r;
    int miss = route_request(c->pool, p, &ri->keys, ri->readonly, &r);
    if (miss != ROUTE_HIT) {
        router_refuse(c, miss, &r, ri);
        return;
    }
    router_forward(c, r.target, p, ri);
}

/* Send fragment f of parent to server s: the bytes are rebuilt for keys idx
 * (split) or copied unchanged (idx NULL: every server gets the whole request). */
static void route_fragment(struct client *c, struct req *parent, uint32_t f, struct server *s,
                           const uint8_t *p, const struct req_info *ri, const uint32_t *idx,
                           uint32_t nidx)
{
    int err;
    struct req *fr = req_new_frag(parent, f);
    if (hold_take_frag(c, fr, s, p, ri, idx, nidx, 0)) {
        return;
    }
    struct sconn *sc =
        ri->own_conn ? router_own_conn(c, s, &err) : router_conn(c, &s, ri->readonly, &err);
    if (sc == NULL) {
        if (hold_take_frag(c, fr, s, p, ri, idx, nidx, err)) {
            return;
        }
        req_fail(fr, server_strerror(s, err));
        return;
    }
    struct buf *out = sconn_out(sc);
    size_t before = out->len;
    if (idx != NULL) {
        c->pool->proto->frag_build(out, p, ri, idx, nidx);
    } else {
        buf_append(out, p, ri->len);
    }
    c->pool->stats[SP_fragments]++;
    sconn_queued(sc, fr, out->len - before);
}

/* The keys of a split request grouped by target server, one fragment each.
 * Its arrays are the proxy's scratch memory (req_scratch): valid while the
 * request is routed. */
struct key_groups {
    uint32_t *frag_of; /* per pool server: fragment index + 1, 0 if none */
    uint32_t *order;   /* key indexes grouped by fragment */
    uint32_t *start;   /* per fragment: first position in order */
    uint32_t *count;   /* per fragment */
    struct server **target;
    struct frag_map *map; /* per key: its fragment and position there */
    uint32_t nfrags;
};

static void key_groups_init(struct key_groups *g, struct proxy *px, uint32_t nservers, uint32_t n)
{
    size_t words = (size_t)nservers + 3 * (size_t)n;
    size_t bytes = n * sizeof(*g->target) + n * sizeof(*g->map) + words * sizeof(uint32_t);
    uint8_t *m = req_scratch(px, bytes);
    g->target = (struct server **)m; /* the pointers first: aligned */
    g->map = (struct frag_map *)(m + n * sizeof(*g->target));
    g->frag_of = (uint32_t *)(m + n * (sizeof(*g->target) + sizeof(*g->map)));
    g->order = g->frag_of + nservers;
    g->start = g->order + n;
    g->count = g->start + n;
    memset(g->frag_of, 0, nservers * sizeof(uint32_t));
    memset(g->count, 0, n * sizeof(uint32_t));
    g->start[0] = 0;
    g->nfrags = 0;
}

/* The fragment for server s, a new one for a server not seen yet. A pool's
 * servers are found by index; a sentinel group's hidden replicas (not in
 * pool->servers) by a look among the fragments, which are few. */
static uint32_t key_groups_frag(struct key_groups *g, struct server *s)
{
    if (s->owner == NULL) {
        if (g->frag_of[s->idx] == 0) {
            g->target[g->nfrags] = s;
            g->frag_of[s->idx] = ++g->nfrags;
        }
        return g->frag_of[s->idx] - 1;
    }
    for (uint32_t f = 0; f < g->nfrags; f++) {
        if (g->target[f] == s) {
            return f;
        }
    }
    g->target[g->nfrags] = s;
    return g->nfrags++;
}

/* Group the keys by target; on a miss, *r says where (for the error text). */
static int key_groups_build(struct key_groups *g, struct pool *pool, const uint8_t *p,
                            const struct req_info *ri, struct route *r)
{
    uint32_t n = ri->keys.n;
    key_groups_init(g, pool->px, pool->nservers, n);
    for (uint32_t i = 0; i < n; i++) {
        int miss = route_key(pool, p + ri->keys.v[i].off, ri->keys.v[i].len, ri->readonly, r);
        if (miss != ROUTE_HIT) {
            return miss;
        }
        uint32_t f = key_groups_frag(g, r->target);
        g->map[i].frag = f;
        g->map[i].pos = g->count[f]++;
    }
    for (uint32_t f = 1; f < g->nfrags; f++) {
        g->start[f] = g->start[f - 1] + g->count[f - 1];
    }
    for (uint32_t i = 0; i < n; i++) {
        g->order[g->start[g->map[i].frag] + g->map[i].pos] = i;
    }
    return ROUTE_HIT;
}

static void route_split(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct key_groups g;
    struct route r;
    int miss = key_groups_build(&g, c->pool, p, ri, &r);
    if (miss != ROUTE_HIT) {
        router_refuse(c, miss, &r, ri);
        return;
    }
    if (g.nfrags == 1) {
        router_forward(c, g.target[0], p, ri); /* one server: as the request came */
        return;
    }
    struct req *parent = req_new_split(c->px, p, ri, g.nfrags);
    memcpy(req_split_map(parent, ri->keys.n), g.map, ri->keys.n * sizeof(*g.map));
    cqueue_push(c, parent, ri->len);
    for (uint32_t f = 0; f < g.nfrags; f++) {
        route_fragment(c, parent, f, g.target[f], p, ri, &g.order[g.start[f]], g.count[f]);
    }
}

/* Whether server i of the pool gets a request meant for every server: not an
 * ejected one when only live ones answer (memcached's stats); in a
 * master/replica pool a write to the master alone (a replica refuses it with
 * READONLY and replays the master's), the rest (SCRIPT LOAD: each server's own
 * cache) to every server. */
static bool route_all_takes(const struct pool *pool, const struct req_info *ri, uint32_t i)
{
    if (ri->write && pool->mode == POOL_MASTER_REPLICA) {
        return i == pool->cp->master;
    }
    return !(ri->live_only && pool->servers[i].health.ejected);
}

static void route_all(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct pool *pool = c->pool;
    if (ri->flush && !pool->cp->allow_flush) {
        router_reply_error(c, ri->err); /* names the command and allow_flush */
        return;
    }
    if (ri->noreply) {
        for (uint32_t i = 0; i < pool->nservers; i++) {
            struct server *s = &pool->servers[i];
            int err;
            struct sconn *sc = router_conn(c, &s, false, &err);
            if (sc != NULL) {
                sconn_send(sc, NULL, p, ri->len);
            }
        }
        return;
    }
    uint32_t n = 0;
    for (uint32_t i = 0; i < pool->nservers; i++) {
        n += route_all_takes(pool, ri, i);
    }
    if (n == 0) {
        router_fail(c, "no server is available", false); /* every one is ejected */
        return;
    }
    struct req *parent = req_new_split(c->px, p, ri, n);
    parent->split->info.seed = (uint32_t)random(); /* for a merge that picks one (RANDOMKEY) */
    cqueue_push(c, parent, ri->len);
    for (uint32_t i = 0, f = 0; i < pool->nservers; i++) {
        if (route_all_takes(pool, ri, i)) {
            route_fragment(c, parent, f++, &pool->servers[i], p, ri, NULL, 0);
        }
    }
}

/* Any live server answers it (memcached's version): one that can be reached. */
static void route_any_server(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct pool *pool = c->pool;
    if (ri->facts) {
        info_dispatch(c, p, ri); /* INFO: the proxy's figures and a live server's */
        return;
    }
    struct server *s = NULL;
    int err = 0;
    for (uint32_t skip = 0; (s = route_any(pool, c->id, skip)) != NULL; skip++) {
        struct sconn *sc = router_conn_of(c, s);
        err = sconn_ensure(sc);
        if (err == 0) {
            struct req *r = req_new(c->px, ri->cmd);
            cqueue_push(c, r, ri->len);
            sconn_send(sc, r, p, ri->len);
            return;
        }
    }
    router_fail(c, err != 0 ? strerror(err) : "no server is available", false);
}

#define ROUTER_AUTH_LOG_GAP_MS 10000

/* Refused logins are counted (auth_failed) and said, once per gap per pool: a
 * client guessing passwords must not flood the log, and an operator still sees
 * who tries and from where (redis keeps its ACL LOG for this). */
static void router_note_refused(struct client *c)
{
    struct pool *pool = c->pool;
    uint64_t quiet;
    char more[64];
    pool->xstats[SPX_auth_failed] += c->lc.refused;
    c->lc.refused = 0;
    if (log_loggable(LOG_WARN) &&
        log_gap_due(&pool->auth_log, ev_now(c->px->loop), ROUTER_AUTH_LOG_GAP_MS, &quiet)) {
        log_warn("pool '%s': login refused for user '%s' from %s%s", pool->cp->name,
                 c->lc.refused_user, c->addr, log_gap_more(more, sizeof(more), quiet));
    }
}

/* Answered by the proxy; true when nothing more is to be done with it. */
static bool router_local(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct buf b;
    buf_init(&b);
    int answered = c->pool->proto->local(&b, p, ri, &c->lc);
    if (c->lc.refused > 0) {
        router_note_refused(c);
    }
    if (answered < 0) {
        router_reply_error(c, "out of memory");
    } else if (answered > 0) {
        cqueue_local(c, b.data, b.len);
    }
    buf_free(&b);
    if (ri->quit) {
        client_quit(c);
    }
    return answered != 0 || ri->route == ROUTE_LOCAL;
}

/* A pool-wide cursor: the server's index in the low bits, its cursor above. */
static uint32_t scan_bits(uint32_t nservers)
{
    uint32_t b = 1;
    while (b < 32 && (1u << b) < nservers) {
        b++;
    }
    return b;
}

bool router_cursor_parse(const uint8_t *s, size_t n, uint64_t *v)
{
    /* redis reads a cursor with strtoull: "" is 0, a sign may lead, "-1" wraps */
    bool neg = n > 0 && s[0] == '-';
    size_t i = n > 0 && (s[0] == '-' || s[0] == '+') ? 1 : 0;
    *v = 0;
    if (i == 1 && n == 1) {
        return false;
    }
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || *v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10) {
            return false;
        }
        *v = *v * 10 + (uint64_t)(s[i] - '0');
    }
    if (neg) {
        *v = (uint64_t)0 - *v;
    }
    return true;
}

/* A server's SCAN reply: the client gets the pool-wide cursor of what is next,
 * the same server further on, or the next server from its start, or 0. */
static void scan_reply(struct req *r, struct buf *out, const uint8_t *p, size_t len,
                       const struct rsp_info *ri, const char *err)
{
    struct client *c = r->client;
    uint32_t idx = (uint32_t)(r->reply_arg & 0xffffffffu), bits = (uint32_t)(r->reply_arg >> 32);
    uint32_t n = (uint32_t)(uintptr_t)r->reply_ctx;
    uint64_t next, cursor;
    if (c == NULL) {
        return;
    }
    const struct proto *pr = c->pool->proto;
    if (err != NULL || ri == NULL) {
        pr->error_reply(out, err != NULL ? err : "bad reply from server");
    } else if (ri->is_error) {
        buf_append(out, p, len);
    } else if (pr->cursor_get(p, ri, &next) != 0 || (next >> (64 - bits)) != 0) {
        pr->error_reply(out, "bad reply from server: not a SCAN cursor this proxy can carry");
    } else {
        cursor = next != 0 ? (next << bits) | idx : (idx + 1 < n ? idx + 1 : 0);
        if (pr->cursor_reply(out, p, ri, cursor) != 0) {
            pr->error_reply(out, "bad reply from server");
        }
    }
}

/* SCAN over a sharded pool: each server in turn, the cursor saying which. */
static void route_scan(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct pool *pool = c->pool;
    uint32_t bits = scan_bits(pool->nservers);
    uint64_t cursor;
    if (ri->args.n < 2 || pool->proto->cursor_request == NULL ||
        !router_cursor_parse(p + ri->args.v[1].off, ri->args.v[1].len, &cursor) ||
        (cursor & ((1ull << bits) - 1)) >= pool->nservers) {
        router_reply_error(c, "invalid cursor");
        return;
    }
    uint32_t idx = (uint32_t)(cursor & ((1ull << bits) - 1));
    struct server *s = &pool->servers[idx];
    int err;
    struct sconn *sc = router_conn(c, &s, ri->readonly, &err);
    if (sc == NULL) {
        router_fail(c, server_strerror(s, err), false);
        return;
    }
    router_send_cursor(c, sc, p, ri, cursor >> bits, scan_reply, idx | ((uint64_t)bits << 32),
                       (void *)(uintptr_t)pool->nservers);
}

void router_send_cursor(struct client *c, struct sconn *sc, const uint8_t *p,
                        const struct req_info *ri, uint64_t cursor, req_reply_fn fn, uint64_t arg,
                        void *ctx)
{
    struct buf *out = sconn_out(sc);
    size_t before = out->len;
    if (c->pool->proto->cursor_request(out, p, ri, cursor) != 0) {
        out->len = before;
        router_reply_error(c, "out of memory");
        return;
    }
    struct req *r = req_new(c->px, ri->cmd);
    r->reply = fn;
    r->reply_arg = arg;
    r->reply_ctx = ctx;
    cqueue_push(c, r, ri->len);
    sconn_queued(sc, r, out->len - before);
}

/* The request as the router sees it: an inline one as the RESP request it means. */
static const uint8_t *router_view(const uint8_t *p, const struct req_info *ri,
                                  struct req_info *view)
{
    if (!ri->rewritten) {
        return p;
    }
    /* the spans are shared, only read; a decoded key (key_tail) is routed, not sent */
    *view = *ri;
    view->len = ri->wire.len - ri->key_tail;
    return ri->wire.data;
}

static void router_route(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct req_info rw;
    if (ri->readonly && c->txn.watched != NULL) {
        /* a read after WATCH decides what EXEC writes: it must see the master,
         * as the watch does (a lagging replica's value made EXEC overwrite
         * another client's update, the watch none the wiser) */
        rw = *ri;
        rw.readonly = false;
        ri = &rw;
    }
    if (c->pool->mode == POOL_CLUSTER && cluster_dispatch(c, p, ri)) {
        return; /* slots, redirections (cluster.h) */
    }
    switch (ri->route) {
    case ROUTE_SPLIT:
        route_split(c, p, ri);
        break;
    case ROUTE_ALL:
        route_all(c, p, ri);
        break;
    case ROUTE_ANY:
        route_any_server(c, p, ri);
        break;
    case ROUTE_DATASET:
        if (route_one_dataset(c->pool)) {
            route_whole(c, p, ri);
        } else if (ri->cursor) {
            route_scan(c, p, ri);
        } else if (c->pool->proto->build != NULL) {
            route_all(c, p, ri); /* DBSIZE summed, KEYS concatenated... (proto->merge) */
        } else {
            router_reply_error(c, ri->err);
        }
        break;
    case ROUTE_TXN:
        txn_dispatch(c, p, ri);
        break;
    case ROUTE_PUBSUB:
        pubsub_dispatch(c, p, ri);
        break;
    default:
        route_whole(c, p, ri);
        break;
    }
}

/* Whether the protocol's local() sees the request: a local command (inside
 * MULTI redis queues them, all but QUIT and RESET), and every request of a
 * client that has not logged in (NOAUTH) or is subscribed (what such a
 * connection may not send is refused there, PING answered as a message). */
static bool router_asks_local(const struct client *c, const struct req_info *ri)
{
    if (ri->empty) {
        return true; /* in a transaction too: redis neither queues nor answers it */
    }
    if (ri->route == ROUTE_LOCAL) {
        return !c->txn.active || ri->quit || ri->txn == TXN_DISCARD;
    }
    return (c->lc.auth != NULL && !c->lc.authed) || c->lc.subscribed;
}

/* A WATCH made on a master that a failover is replacing would not hold at
 * EXEC (txn.c answers nil): while the key's group holds its writes (or the
 * client has requests held there), it waits for the new master instead. In a
 * cluster pool, while the slot's master cannot be reached (its requests are
 * held until the map names its successor), the WATCH waits with them rather
 * than fail at once, which a client would retry in a loop. */
static bool router_watch_held(struct client *c, const uint8_t *key, size_t len)
{
    struct route rt;
    if (route_key(c->pool, key, len, false, &rt) != ROUTE_HIT) {
        return false;
    }
    if (c->pool->mode == POOL_CLUSTER) {
        return cluster_node_down(rt.target);
    }
    return c->pool->mode == POOL_SENTINEL && hold_admits_write(c, rt.target, 0);
}

/* Whether a cluster pool's request goes to every master (SCRIPT LOAD, DBSIZE,
 * a keyspace subscription), which the cluster's hold does not follow: it
 * waits, as one for a key does, while a master is failing and not replaced. */
static bool router_every_master_fails(struct client *c, const uint8_t *p, const struct req_info *ri,
                                      bool sub)
{
    if (c->pool->mode != POOL_CLUSTER) {
        return false;
    }
    bool every = ri->route == ROUTE_ALL || ri->route == ROUTE_DATASET;
    for (uint32_t i = 0; sub && !every && i < ri->keys.n; i++) {
        every = pubsub_is_keyspace(p + ri->keys.v[i].off, ri->keys.v[i].len);
    }
    return every && cluster_master_fails(c->pool);
}

/* SUBSCRIBE, PSUBSCRIBE and WATCH open a connection of the client's own to
 * their server, which the hold cannot take over later: when that server is not
 * known yet but soon will be, the request waits before it is routed. So do a
 * cluster's requests for every master while one fails. */
static bool router_must_wait(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    bool sub = ri->route == ROUTE_PUBSUB && (ri->sub == SUB_SUBSCRIBE || ri->sub == SUB_PSUBSCRIBE);
    bool watch = ri->route == ROUTE_TXN && ri->txn == TXN_WATCH && !c->txn.active;
    bool pending = router_every_master_fails(c, p, ri, sub);
    if (!sub && !watch) {
        /* (called when it ends a wait too: client_wait_server forgets it) */
        return (pending || c->server_wait_since_ms != 0) && client_wait_server(c, pending);
    }
    if (ri->sub == SUB_PSUBSCRIBE && !pending) {
        pending = route_pending(c->pool, NULL, 0); /* heard on every shard */
    }
    for (uint32_t i = 0; i < ri->keys.n && !pending; i++) {
        const uint8_t *key = p + ri->keys.v[i].off;
        pending = route_pending(c->pool, key, ri->keys.v[i].len) ||
                  (watch && router_watch_held(c, key, ri->keys.v[i].len));
    }
    return client_wait_server(c, pending);
}

/* Whether the request is the first WATCH, which opens a connection of the
 * client's own that its earlier requests did not use. */
static bool router_opens_watch(const struct client *c, const struct req_info *ri)
{
    return ri->route == ROUTE_TXN && ri->txn == TXN_WATCH && !c->txn.active &&
           c->txn.watched == NULL;
}

/* A client's requests to a server keep their order because they share one
 * connection to it. Where the connection changes (a WATCH starts or ends, HELLO
 * switches protocol, a reload moved the client, a PUBLISH after a SUBSCRIBE or
 * the other way round), the request waits until every earlier one is answered,
 * rather than overtake them on the other one. A subscriber's PING goes over its
 * subscribed connections (pubsub_ping): a message its own PUBLISH before it made
 * comes before the answer. */
static bool router_fenced_on(struct client *c, uint8_t lane, bool opens_watch)
{
    if (!c->fence && lane == c->lane && !opens_watch) {
        return false;
    }
    if (client_wait_fence(c)) {
        return true;
    }
    c->lane = lane; /* nothing is out: it goes */
    return false;
}

static bool router_fenced(struct client *c, const struct req_info *ri)
{
    uint8_t lane = ri->route == ROUTE_PUBSUB ? LANE_PUBSUB : LANE_SERVER;
    return router_fenced_on(c, lane, router_opens_watch(c, ri));
}

bool router_dispatch(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct req_info view;
    p = router_view(p, ri, &view);
    ri = ri->rewritten ? &view : ri;
    if (ri->route == ROUTE_REJECT && ri->txn == TXN_EXEC) {
        txn_exec_refused(c, ri->err);
        return true;
    }
    if (ri->route == ROUTE_REJECT && !c->txn.active) {
        if ((ri->refused || ri->late_err) && !ri->quit && router_asks_local(c, ri) &&
            router_local(c, p, ri)) {
            return true; /* NOAUTH, or not while subscribed: redis says that first */
        }
        router_reply_error(c, ri->err);
        if (ri->quit) {
            client_quit(c);
        }
        return true;
    }
    if (ri->route == ROUTE_LOCAL && ri->txn == TXN_DISCARD) {
        /* RESET closes the client's own connections: what it sent over them
         * before is answered first, as redis answers it before RESET (and
         * nothing is left out that what follows could overtake) */
        if (client_wait_fence(c)) {
            return false;
        }
        txn_reset(c);
    }
    if (ri->route == ROUTE_LOCAL && ri->sub == SUB_UNSUBSCRIBE) {
        pubsub_reset(c);
    }
    if (ri->sub == SUB_PING && ri->args.n <= 2 && !c->txn.active && pubsub_ping_waits(c)) {
        if (router_fenced_on(c, LANE_PUBSUB, false)) {
            return false;
        }
        pubsub_ping(c, p, ri); /* answered behind the messages before it */
        return true;
    }
    if (router_asks_local(c, ri)) {
        int resp = c->lc.resp;
        if (router_local(c, p, ri)) {
            if (c->lc.resp != resp) { /* HELLO: the client's connections are others now */
                txn_resp_changed(c);  /* (the watch's own one speaks it too) */
                c->fence = true;
            }
            return true;
        }
    }
    if (c->txn.active && ri->route != ROUTE_TXN) {
        txn_queue(c, p, ri); /* answered QUEUED, sent at EXEC (where nothing blocks) */
        return true;
    }
    if (ri->blocking && ri->route == ROUTE_KEY && ri->keys.n > 0) {
        return blocking_dispatch(c, p, ri);
    }
    if (router_fenced(c, ri) || router_must_wait(c, p, ri)) {
        return false; /* its bytes stay where they are until it goes */
    }
    if (ri->route == ROUTE_TXN) {
        const struct server *watched = c->txn.watched;
        router_route(c, p, ri);
        if (watched != NULL && c->txn.watched != watched) {
            c->fence = true; /* the watch ended: the connection it pinned is left */
        }
        return true;
    }
    router_route(c, p, ri);
    return true;
}
