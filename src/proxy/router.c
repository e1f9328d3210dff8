#include "proxy/router.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/instance.h"
#include "core/log.h"
#include "proxy/client.h"
#include "proxy/pool.h"
#include "proxy/replica.h"
#include "proxy/req.h"
#include "proxy/server.h"

/* Queue r on c; its request bytes (copied to server buffers) count against the
 * client's limit until it is answered, so a stalled server cannot be flooded. */
static void client_link(struct client *c, struct req *r, size_t bytes)
{
    r->client = c;
    r->client_bytes = bytes;
    c->inflight_bytes += bytes;
    r->in_client = true;
    r->start_us = ev_now_us(c->pool->inst->loop);
    if (c->tail != NULL) {
        c->tail->cnext = r;
    } else {
        c->head = r;
    }
    c->tail = r;
    c->nreqs++;
}

/* A reply the proxy makes itself: straight out if nothing is pending, else it
 * waits its turn behind the older requests. */
static void router_reply_local(struct client *c, const uint8_t *p, size_t len)
{
    if (c->head == NULL) {
        buf_append(client_outbuf(c), p, len);
        client_mark_dirty(c);
        return;
    }
    struct req *r = req_new();
    client_link(c, r, 0);
    buf_append(&r->rsp, p, len);
    c->pending_bytes += len;
    r->done = true;
}

void router_reply_error(struct client *c, const char *msg)
{
    struct buf b;
    buf_init(&b);
    c->pool->proto->error_reply(&b, msg);
    router_reply_local(c, b.data, b.len);
    buf_free(&b);
}

/* Queue bytes that are already in sc->out for request r (NULL: noreply). */
static struct sconn *router_conn(struct client *c, struct server *s)
{
    struct sconn *sc = server_conn_for(s, c->id);
    if (sconn_ensure(sc) != 0) {
        return NULL;
    }
    return sc;
}

/* router_conn for a request that may go to a sentinel group's replica: one
 * that cannot be connected to now sends a read to its group's master when
 * read_from is prefer_replica (*s says where it went). */
static struct sconn *router_conn_read(struct client *c, struct server **s, bool readonly)
{
    struct sconn *sc = router_conn(c, *s);
    struct server *instead = sc == NULL ? replica_fallback(*s, readonly) : NULL;
    if (instead != NULL) {
        *s = instead;
        sc = router_conn(c, instead);
    }
    return sc;
}

#define CROSS_SERVER_MSG "CROSSSLOT Keys in request don't hash to the same server"

/* A pool whose every server holds every key: a master and its replicas. */
static bool route_one_dataset(const struct pool *pool)
{
    return replica_pool_is_split(pool) || pool->nservers == 1;
}

/* Whether every key of a request that is not split lives where its first key
 * does: a command like RENAME or SUNIONSTORE run on one server for keys of
 * another would lose or invent data. A random distribution has no place for a
 * key, so one request goes whole to one server. */
static bool route_keys_together(struct pool *pool, const uint8_t *p, const struct req_info *ri)
{
    if (ri->keys.n < 2 || route_one_dataset(pool) || pool->cp->distribution == DIST_RANDOM) {
        return true;
    }
    struct server *first = pool_route(pool, p + ri->keys.v[0].off, ri->keys.v[0].len);
    for (uint32_t i = 1; i < ri->keys.n; i++) {
        if (pool_route(pool, p + ri->keys.v[i].off, ri->keys.v[i].len) != first) {
            return false;
        }
    }
    return true;
}

static void route_key(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct pool *pool = c->pool;
    const uint8_t *key = ri->keys.n ? p + ri->keys.v[0].off : p;
    size_t klen = ri->keys.n ? ri->keys.v[0].len : 0;
    struct server *group;
    if (!route_keys_together(pool, p, ri)) {
        pool->xstats[SPX_cross_server_refused]++;
        router_reply_error(c, CROSS_SERVER_MSG);
        return;
    }
    struct server *s = replica_route_group(pool, key, klen, ri->readonly, &group);
    if (s == NULL) {
        char msg[256];
        pool->stats[SP_forward_error]++;
        router_reply_error(c,
                           replica_route_error_group(pool, group, ri->readonly, msg, sizeof(msg)));
        return;
    }
    struct sconn *sc = router_conn_read(c, &s, ri->readonly);
    if (sc == NULL) {
        pool->stats[SP_forward_error]++;
        router_reply_error(c, server_strerror(s, errno));
        return;
    }
    struct req *r = NULL;
    if (!ri->noreply) {
        r = req_new();
        r->cmd = ri->cmd;
        client_link(c, r, ri->len);
    }
    buf_append(&sc->out, p, ri->len);
    sconn_push(sc, r, ri->len);
}

static struct split *split_new(const uint8_t *p, const struct req_info *ri, uint32_t nfrags)
{
    struct split *sp = calloc(1, sizeof(*sp));
    if (sp == NULL) {
        abort();
    }
    sp->req = malloc(ri->len ? ri->len : 1);
    sp->rsps = calloc(nfrags, sizeof(*sp->rsps));
    sp->infos = calloc(nfrags, sizeof(*sp->infos));
    if (sp->req == NULL || sp->rsps == NULL || sp->infos == NULL) {
        abort();
    }
    memcpy(sp->req, p, ri->len);
    sp->req_len = ri->len;
    req_info_init(&sp->info);
    sp->info.len = ri->len;
    sp->info.route = ri->route;
    sp->info.cmd = ri->cmd;
    sp->info.noreply = ri->noreply;
    for (uint32_t i = 0; i < ri->keys.n; i++) {
        spans_push(&sp->info.keys, ri->keys.v[i].off, ri->keys.v[i].len);
    }
    for (uint32_t i = 0; i < ri->args.n; i++) {
        spans_push(&sp->info.args, ri->args.v[i].off, ri->args.v[i].len);
    }
    for (uint32_t i = 0; i < nfrags; i++) {
        buf_init(&sp->rsps[i]);
        rsp_info_init(&sp->infos[i]);
    }
    sp->nfrags = nfrags;
    sp->pending = nfrags;
    return sp;
}

/* Send fragment f of parent to server s: the bytes are rebuilt for keys idx
 * (split) or copied unchanged (idx NULL: every server gets the whole request). */
static void route_fragment(struct client *c, struct req *parent, uint32_t f, struct server *s,
                           const uint8_t *p, const struct req_info *ri, const uint32_t *idx,
                           uint32_t nidx)
{
    struct sconn *sc = router_conn_read(c, &s, ri->readonly);
    struct req *fr = req_new();
    fr->parent = parent;
    fr->frag_idx = f;
    fr->cmd = ri->cmd;
    if (sc == NULL) {
        c->pool->stats[SP_forward_error]++;
        req_fail(fr, server_strerror(s, errno));
        return;
    }
    size_t before = sc->out.len;
    if (idx != NULL) {
        c->pool->proto->frag_build(&sc->out, p, ri, idx, nidx);
    } else {
        buf_append(&sc->out, p, ri->len);
    }
    c->pool->stats[SP_fragments]++;
    sconn_push(sc, fr, sc->out.len - before);
}

struct key_groups {
    uint32_t *frag_of; /* per server: fragment index + 1, 0 if none */
    uint32_t *order;   /* key indexes grouped by fragment */
    uint32_t *start;   /* per fragment: first position in order */
    uint32_t *count;   /* per fragment */
    struct server **fserver;
    uint32_t nfrags;
};

static void key_groups_free(struct key_groups *g)
{
    free(g->frag_of);
    free(g->order);
    free(g->start);
    free(g->count);
    free(g->fserver);
}

/* The fragment of server s, a new one for a server not seen yet. A pool's
 * servers are found by index; a sentinel group's hidden replicas (not in
 * pool->servers) by a look among the fragments, which are few. */
static uint32_t key_groups_frag(struct key_groups *g, struct server *s)
{
    if (s->owner == NULL) {
        if (g->frag_of[s->idx] == 0) {
            g->fserver[g->nfrags] = s;
            g->frag_of[s->idx] = ++g->nfrags;
        }
        return g->frag_of[s->idx] - 1;
    }
    for (uint32_t f = 0; f < g->nfrags; f++) {
        if (g->fserver[f] == s) {
            return f;
        }
    }
    g->fserver[g->nfrags] = s;
    return g->nfrags++;
}

/* Group the keys by owning server. Returns -1 when some key has no live server
 * (*group: where that key is placed). */
static int key_groups_build(struct key_groups *g, struct pool *pool, const uint8_t *p,
                            const struct req_info *ri, struct frag_map *map, struct server **group)
{
    uint32_t n = ri->keys.n;
    memset(g, 0, sizeof(*g));
    g->frag_of = calloc(pool->nservers, sizeof(*g->frag_of));
    g->order = calloc(n, sizeof(*g->order));
    g->start = calloc(n, sizeof(*g->start));
    g->count = calloc(n, sizeof(*g->count));
    g->fserver = calloc(n, sizeof(*g->fserver));
    if (!g->frag_of || !g->order || !g->start || !g->count || !g->fserver) {
        abort();
    }
    for (uint32_t i = 0; i < n; i++) {
        struct server *s = replica_route_group(pool, p + ri->keys.v[i].off, ri->keys.v[i].len,
                                               ri->readonly, group);
        if (s == NULL) {
            return -1;
        }
        uint32_t f = key_groups_frag(g, s);
        map[i].frag = f;
        map[i].pos = g->count[f]++;
    }
    for (uint32_t f = 1; f < g->nfrags; f++) {
        g->start[f] = g->start[f - 1] + g->count[f - 1];
    }
    for (uint32_t i = 0; i < n; i++) {
        g->order[g->start[map[i].frag] + map[i].pos] = i;
    }
    return 0;
}

static void route_split(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct pool *pool = c->pool;
    struct frag_map *map = calloc(ri->keys.n ? ri->keys.n : 1, sizeof(*map));
    struct key_groups g;
    struct server *group;
    char msg[256];
    if (map == NULL) {
        abort();
    }
    if (key_groups_build(&g, pool, p, ri, map, &group) != 0) {
        pool->stats[SP_forward_error]++;
        router_reply_error(c,
                           replica_route_error_group(pool, group, ri->readonly, msg, sizeof(msg)));
        free(map);
        key_groups_free(&g);
        return;
    }
    if (g.nfrags == 1) {
        /* every key on one server: forward the request as it came */
        free(map);
        key_groups_free(&g);
        route_key(c, p, ri);
        return;
    }
    struct req *parent = req_new();
    parent->cmd = ri->cmd;
    parent->split = split_new(p, ri, g.nfrags);
    parent->split->map = map;
    client_link(c, parent, ri->len);
    for (uint32_t f = 0; f < g.nfrags; f++) {
        route_fragment(c, parent, f, g.fserver[f], p, ri, &g.order[g.start[f]], g.count[f]);
    }
    key_groups_free(&g);
}

static void route_all(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct pool *pool = c->pool;
    if (ri->noreply) {
        for (uint32_t i = 0; i < pool->nservers; i++) {
            struct sconn *sc = router_conn(c, &pool->servers[i]);
            if (sc != NULL) {
                buf_append(&sc->out, p, ri->len);
                sconn_push(sc, NULL, ri->len);
            }
        }
        return;
    }
    struct req *parent = req_new();
    parent->cmd = ri->cmd;
    parent->split = split_new(p, ri, pool->nservers);
    client_link(c, parent, ri->len);
    for (uint32_t i = 0; i < pool->nservers; i++) {
        route_fragment(c, parent, i, &pool->servers[i], p, ri, NULL, 0);
    }
}

/* Any live server answers it (memcached's version): the first one. */
static void route_any(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct pool *pool = c->pool;
    for (uint32_t i = 0; i < pool->nservers; i++) {
        struct server *s = &pool->servers[i];
        if (!s->ejected && s->addr.known) {
            struct sconn *sc = router_conn(c, s);
            if (sc == NULL) {
                continue; /* refused: the next one may answer */
            }
            struct req *r = req_new();
            r->cmd = ri->cmd;
            client_link(c, r, ri->len);
            buf_append(&sc->out, p, ri->len);
            sconn_push(sc, r, ri->len);
            return;
        }
    }
    pool->stats[SP_forward_error]++;
    router_reply_error(c, "no server is available");
}

void router_dispatch(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    const struct proto *pr = c->pool->proto;
    if (ri->route == ROUTE_REJECT) {
        router_reply_error(c, ri->err);
        if (ri->quit) {
            c->closing = true;
        }
        return;
    }
    if (ri->route == ROUTE_LOCAL || (c->lc.auth != NULL && !c->lc.authed)) {
        struct buf b;
        buf_init(&b);
        int answered = pr->local(&b, p, ri, &c->lc);
        if (answered < 0) {
            router_reply_error(c, "out of memory");
        } else if (answered > 0) {
            router_reply_local(c, b.data, b.len);
        }
        buf_free(&b);
        if (ri->quit) {
            c->closing = true;
        }
        if (answered || ri->route == ROUTE_LOCAL) {
            return;
        }
    }
    switch (ri->route) {
    case ROUTE_DATASET:
        if (!route_one_dataset(c->pool) &&
            !(c->pool->cp->nsentinels > 0 && c->pool->nservers == 1)) {
            router_reply_error(c, ri->err);
            break;
        }
        route_key(c, p, ri);
        break;
    case ROUTE_ANY:
        route_any(c, p, ri);
        break;
    case ROUTE_SPLIT:
        route_split(c, p, ri);
        break;
    case ROUTE_ALL:
        route_all(c, p, ri);
        break;
    default:
        route_key(c, p, ri);
        break;
    }
}
