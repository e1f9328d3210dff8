#include "proxy/router.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/client.h"
#include "proxy/cqueue.h"
#include "proxy/hold.h"
#include "proxy/pool.h"
#include "proxy/req.h"
#include "proxy/route.h"
#include "proxy/sconn.h"
#include "proxy/server.h"

void router_reply_error(struct client *c, const char *msg)
{
    struct buf b;
    buf_init(&b);
    c->pool->proto->error_reply(&b, msg);
    cqueue_local(c, b.data, b.len);
    buf_free(&b);
}

static void router_refuse(struct client *c, int miss, const struct route *r)
{
    char msg[256];
    struct pool *pool = c->pool;
    if (miss == ROUTE_MISS_CROSS) {
        pool->xstats[SPX_cross_server_refused]++;
    } else {
        pool->stats[SP_forward_error]++;
    }
    router_reply_error(c, route_miss_text(pool, miss, r, msg, sizeof(msg)));
}

/* The client's connection to s, connecting it if needed; NULL with *err (an
 * errno code) when it cannot be. A read for a hidden replica that cannot be
 * reached may fall back to its group (*s says where it went). */
static struct sconn *router_conn(struct client *c, struct server **s, bool readonly, int *err)
{
    struct sconn *sc = server_conn_for(*s, c->id);
    *err = sconn_ensure(sc);
    if (*err == 0) {
        return sc;
    }
    struct server *instead = route_fallback(*s, readonly);
    if (instead == NULL) {
        return NULL;
    }
    *s = instead;
    sc = server_conn_for(instead, c->id);
    *err = sconn_ensure(sc);
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
        c->pool->stats[SP_forward_error]++;
        router_reply_error(c, server_strerror(target, err));
        return;
    }
    struct req *r = NULL;
    if (!ri->noreply) {
        r = req_new(ri->cmd);
        cqueue_push(c, r, ri->len);
    }
    sconn_send(sc, r, p, ri->len);
}

static void route_whole(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct route r;
    int miss = route_request(c->pool, p, &ri->keys, ri->readonly, &r);
    if (miss != ROUTE_HIT) {
        router_refuse(c, miss, &r);
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
    struct sconn *sc = router_conn(c, &s, ri->readonly, &err);
    if (sc == NULL) {
        if (hold_take_frag(c, fr, s, p, ri, idx, nidx, err)) {
            return;
        }
        c->pool->stats[SP_forward_error]++;
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

/* The keys of a split request grouped by target server, one fragment each. */
struct key_groups {
    uint32_t *frag_of; /* per pool server: fragment index + 1, 0 if none */
    uint32_t *order;   /* key indexes grouped by fragment */
    uint32_t *start;   /* per fragment: first position in order */
    uint32_t *count;   /* per fragment */
    struct server **target;
    uint32_t nfrags;
};

static void key_groups_free(struct key_groups *g)
{
    free(g->frag_of);
    free(g->order);
    free(g->start);
    free(g->count);
    free(g->target);
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
                            const struct req_info *ri, struct frag_map *map, struct route *r)
{
    uint32_t n = ri->keys.n;
    g->frag_of = calloc(pool->nservers, sizeof(*g->frag_of));
    g->order = calloc(n, sizeof(*g->order));
    g->start = calloc(n, sizeof(*g->start));
    g->count = calloc(n, sizeof(*g->count));
    g->target = calloc(n, sizeof(*g->target));
    g->nfrags = 0;
    if (!g->frag_of || !g->order || !g->start || !g->count || !g->target) {
        abort();
    }
    for (uint32_t i = 0; i < n; i++) {
        int miss = route_key(pool, p + ri->keys.v[i].off, ri->keys.v[i].len, ri->readonly, r);
        if (miss != ROUTE_HIT) {
            return miss;
        }
        uint32_t f = key_groups_frag(g, r->target);
        map[i].frag = f;
        map[i].pos = g->count[f]++;
    }
    for (uint32_t f = 1; f < g->nfrags; f++) {
        g->start[f] = g->start[f - 1] + g->count[f - 1];
    }
    for (uint32_t i = 0; i < n; i++) {
        g->order[g->start[map[i].frag] + map[i].pos] = i;
    }
    return ROUTE_HIT;
}

static void route_split(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct frag_map *map = calloc(ri->keys.n ? ri->keys.n : 1, sizeof(*map));
    struct key_groups g;
    struct route r;
    if (map == NULL) {
        abort();
    }
    int miss = key_groups_build(&g, c->pool, p, ri, map, &r);
    if (miss != ROUTE_HIT || g.nfrags == 1) {
        if (miss != ROUTE_HIT) {
            router_refuse(c, miss, &r);
        } else {
            router_forward(c, g.target[0], p, ri); /* one server: as the request came */
        }
        free(map);
        key_groups_free(&g);
        return;
    }
    struct req *parent = req_new_split(p, ri, g.nfrags);
    parent->split->map = map;
    cqueue_push(c, parent, ri->len);
    for (uint32_t f = 0; f < g.nfrags; f++) {
        route_fragment(c, parent, f, g.target[f], p, ri, &g.order[g.start[f]], g.count[f]);
    }
    key_groups_free(&g);
}

static void route_all(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct pool *pool = c->pool;
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
    struct req *parent = req_new_split(p, ri, pool->nservers);
    cqueue_push(c, parent, ri->len);
    for (uint32_t i = 0; i < pool->nservers; i++) {
        route_fragment(c, parent, i, &pool->servers[i], p, ri, NULL, 0);
    }
}

/* Any live server answers it (memcached's version): the first one that can be reached. */
static void route_any_server(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct server *s = route_any(c->pool);
    if (s == NULL) {
        c->pool->stats[SP_forward_error]++;
        router_reply_error(c, "no server is available");
        return;
    }
    router_forward(c, s, p, ri);
}

/* Answered by the proxy; true when nothing more is to be done with it. */
static bool router_local(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct buf b;
    buf_init(&b);
    int answered = c->pool->proto->local(&b, p, ri, &c->lc);
    if (answered < 0) {
        router_reply_error(c, "out of memory");
    } else if (answered > 0) {
        cqueue_local(c, b.data, b.len);
    }
    buf_free(&b);
    if (ri->quit) {
        c->closing = true;
    }
    return answered != 0 || ri->route == ROUTE_LOCAL;
}

void router_dispatch(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    if (ri->route == ROUTE_REJECT) {
        router_reply_error(c, ri->err);
        if (ri->quit) {
            c->closing = true;
        }
        return;
    }
    if ((ri->route == ROUTE_LOCAL || (c->lc.auth != NULL && !c->lc.authed)) &&
        router_local(c, p, ri)) {
        return;
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
        } else {
            router_reply_error(c, ri->err);
        }
        break;
    default:
        route_whole(c, p, ri);
        break;
    }
}
