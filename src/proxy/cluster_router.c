/*
 * cluster_router: the kinds of request a cluster pool takes itself.
 *
 *   KEY      one slot (every key in it, else -CROSSSLOT as redis says), to
 *            its master; keyless ones to a master chosen by the client's id
 *   SPLIT    MGET, MSET, DEL, UNLINK, TOUCH, EXISTS: one fragment per slot
 *            (a node refuses keys of two slots in one command), merged
 *   ALL      SCRIPT, FLUSHALL...: every master of the map, merged
 *   DATASET  SCAN walks the masters with a cursor; KEYS, DBSIZE... every master
 *
 * KEY and SPLIT fragments keep their bytes and follow redirections
 * (cluster_send.c); ALL and DATASET go as the map is (their error, if a master
 * fails, is the client's).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/client.h"
#include "proxy/cluster_int.h"
#include "proxy/cqueue.h"
#include "proxy/pool.h"
#include "proxy/req.h"
#include "proxy/router.h"
#include "proxy/sconn.h"
#include "proxy/server.h"
#include "proxy/txn.h"

#define CROSSSLOT_MSG "CROSSSLOT Keys in request don't hash to the same slot"
#define NO_MAP_MSG    "the cluster's slot map is not known yet"
/* A SCAN cursor's low bits say which server of the pool it walks. */
#define SCAN_BITS 9

_Static_assert((1u << SCAN_BITS) >= CLUSTER_POOL_MAX_SERVERS, "SCAN_BITS holds a server index");

static uint16_t cr_slot(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    if (ri->keys.n == 0) {
        /* keyless (EVAL 0, FCALL 0...): a master by the client's id, the same
         * one every time, so the client's order holds */
        return (uint16_t)(c->id % CLUSTER_SLOTS);
    }
    return cluster_key_slot(p + ri->keys.v[0].off, ri->keys.v[0].len);
}

static void cr_submit(struct client *c, struct req *r, const uint8_t *p, size_t len, uint16_t slot,
                      bool readonly, uint64_t seq, uint32_t nkeys)
{
    r->cx = cluster_req_new(c, p, len, slot, readonly, seq);
    r->cx->barrier = nkeys > 1;
    cluster_submit(c->pool->cluster, c, r);
}

void cluster_submit_txn(struct client *c, struct req *r, const uint8_t *p, size_t len, int slot,
                        uint32_t ncmds)
{
    uint16_t s = slot >= 0 ? (uint16_t)slot : (uint16_t)(c->id % CLUSTER_SLOTS);
    r->cx = cluster_req_new(c, p, len, s, false, c->cl_seq++);
    r->cx->pre = ncmds + 1; /* MULTI's +OK, one QUEUED per command */
    r->cx->barrier = true;
    cluster_submit(c->pool->cluster, c, r);
}

static void cr_whole(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    if (ri->keys.n > 1 && !cluster_keys_one_slot(p, &ri->keys)) {
        c->pool->xstats[SPX_cross_server_refused]++;
        router_reply_error(c, CROSSSLOT_MSG);
        return;
    }
    struct req *r = req_new(c->px, ri->cmd);
    cqueue_push(c, r, ri->len);
    cr_submit(c, r, p, ri->len, cr_slot(c, p, ri), ri->readonly, c->cl_seq++, ri->keys.n);
}

struct cr_key {
    uint16_t slot;
    uint32_t key;
};

static int cr_key_cmp(const void *a, const void *b)
{
    const struct cr_key *x = a, *y = b;
    if (x->slot != y->slot) {
        return x->slot < y->slot ? -1 : 1;
    }
    return x->key < y->key ? -1 : x->key > y->key;
}

bool cluster_submit_blocking(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    if (!cluster_keys_one_slot(p, &ri->keys)) {
        c->pool->xstats[SPX_cross_server_refused]++;
        router_reply_error(c, CROSSSLOT_MSG);
        return false;
    }
    struct req *r = req_new(c->px, ri->cmd);
    r->blocking = r->hangs_up = true;
    cqueue_push(c, r, ri->len);
    r->cx = cluster_req_new(c, p, ri->len, cr_slot(c, p, ri), false, c->cl_seq++);
    r->cx->block_ms = ri->block_ms;
    cluster_submit(c->pool->cluster, c, r);
    return true;
}

/* The keys sorted by slot (then order); returns the number of slots. */
static uint32_t cr_group(const uint8_t *p, const struct req_info *ri, struct cr_key *k)
{
    uint32_t n = ri->keys.n, slots = 0;
    for (uint32_t i = 0; i < n; i++) {
        k[i].slot = cluster_key_slot(p + ri->keys.v[i].off, ri->keys.v[i].len);
        k[i].key = i;
    }
    qsort(k, n, sizeof(*k), cr_key_cmp);
    for (uint32_t i = 0; i < n; i++) {
        slots += i == 0 || k[i].slot != k[i - 1].slot;
    }
    return slots;
}

static void cr_split(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    uint32_t n = ri->keys.n;
    /* the proxy's scratch memory (req_scratch): valid while the request is routed */
    struct cr_key *k = req_scratch(c->px, (size_t)(n ? n : 1) * (sizeof(*k) + sizeof(uint32_t)));
    uint32_t *idx = (uint32_t *)(k + (n ? n : 1));
    uint32_t nfrags = cr_group(p, ri, k);
    if (nfrags <= 1) {
        cr_whole(c, p, ri); /* one slot: as the request came */
        return;
    }
    struct req *parent = req_new_split(c->px, p, ri, nfrags);
    struct frag_map *map = req_split_map(parent, n);
    cqueue_push(c, parent, ri->len);
    uint64_t seq = c->cl_seq++;
    struct buf b;
    buf_init(&b);
    for (uint32_t i = 0, f = 0; i < n; f++) {
        uint32_t j = i;
        for (; j < n && k[j].slot == k[i].slot; j++) {
            idx[j - i] = k[j].key;
            map[k[j].key] = (struct frag_map){f, j - i};
        }
        buf_reset(&b);
        c->pool->proto->frag_build(&b, p, ri, idx, j - i);
        c->pool->stats[SP_fragments]++;
        /* a fragment may fail at once (out of memory): its parent lives on
         * in the client's queue until every fragment is answered */
        cr_submit(c, req_new_frag(parent, f), b.data, b.len, k[i].slot, ri->readonly, seq, j - i);
        i = j;
    }
    buf_free(&b);
}

/* The masters of the map, in server order; returns how many. */
static uint32_t cr_masters(struct pool *pool, struct server **out)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < pool->nservers; i++) {
        if (cluster_is_master(&pool->servers[i])) {
            out[n++] = &pool->servers[i];
        }
    }
    return n;
}

/* Fragment f of parent, the request as it is, to s (no redirection); on the
 * client's own connection for SCRIPT KILL (own). */
static void cr_send_plain(struct client *c, struct req *fr, struct server *s, const uint8_t *p,
                          size_t len, bool own)
{
    struct sconn *sc = own ? txn_own_conn(c, s) : server_conn_for(s, c->id, c->lc.resp);
    int err = sc != NULL ? sconn_ensure(sc) : ENOMEM;
    if (err != 0) {
        req_fail(fr, server_strerror(s, err));
        return;
    }
    sconn_send(sc, fr, p, len);
}

static void cr_all(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct pool *pool = c->pool;
    if (ri->flush && !pool->cp->allow_flush) {
        router_reply_error(c, ri->err); /* a static pool's words (redis_req.c) */
        return;
    }
    struct server **m = calloc(pool->nservers ? pool->nservers : 1, sizeof(*m));
    uint32_t n = m != NULL ? cr_masters(pool, m) : 0;
    if (n == 0) {
        free(m);
        router_reply_error(c, m == NULL ? "out of memory" : NO_MAP_MSG);
        return;
    }
    struct req *parent = req_new_split(c->px, p, ri, n);
    parent->split->info.seed = (uint32_t)random(); /* for a merge that picks one (RANDOMKEY) */
    cqueue_push(c, parent, ri->len);
    for (uint32_t i = 0; i < n; i++) {
        pool->stats[SP_fragments]++;
        cr_send_plain(c, req_new_frag(parent, i), m[i], p, ri->len, ri->own_conn);
    }
    free(m);
}

/* The next master after server idx in server order, or -1. */
static int cr_next_master(struct pool *pool, uint32_t idx)
{
    for (uint32_t i = idx + 1; i < pool->nservers; i++) {
        if (cluster_is_master(&pool->servers[i])) {
            return (int)i;
        }
    }
    return -1;
}

/* A master's SCAN reply: the client's cursor says what is next there, or the
 * next master from its start, or 0 at the end of the last one. */
static void cr_scan_reply(struct req *r, struct buf *out, const uint8_t *p, size_t len,
                          const struct rsp_info *ri, const char *err)
{
    struct client *c = r->client;
    uint32_t idx = (uint32_t)r->reply_arg;
    uint64_t next, cursor;
    if (c == NULL) {
        return;
    }
    const struct proto *pr = c->pool->proto;
    if (err != NULL || ri == NULL) {
        pr->error_reply(out, err != NULL ? err : "bad reply from server");
    } else if (ri->is_error) {
        buf_append(out, p, len);
    } else if (pr->cursor_get(p, ri, &next) != 0 || (next >> (64 - SCAN_BITS)) != 0) {
        pr->error_reply(out, "bad reply from server: not a SCAN cursor this proxy can carry");
    } else {
        int m = next == 0 ? cr_next_master(r->sconn->server->pool, idx) : (int)idx;
        cursor = next != 0 ? (next << SCAN_BITS) | idx : m >= 0 ? (uint64_t)m : 0;
        if (pr->cursor_reply(out, p, ri, cursor) != 0) {
            pr->error_reply(out, "bad reply from server");
        }
    }
}

/* SCAN over the masters: cursor 0 starts at the first one. */
static void cr_scan(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    struct pool *pool = c->pool;
    uint64_t cursor;
    if (ri->args.n < 2 || !router_cursor_parse(p + ri->args.v[1].off, ri->args.v[1].len, &cursor)) {
        router_reply_error(c, "invalid cursor");
        return;
    }
    int idx = (int)(cursor & ((1u << SCAN_BITS) - 1));
    if (cursor == 0) {
        idx = cr_next_master(pool, UINT32_MAX);
    }
    if (idx < 0) {
        router_reply_error(c, NO_MAP_MSG);
        return;
    }
    /* A place past those ever given out is no cursor of ours (a static pool
     * says the same); a node no longer a master was taken away by the map
     * since the cursor was given. */
    bool ours = (uint32_t)idx < pool->nservers;
    if (!ours || !cluster_is_master(&pool->servers[idx])) {
        router_reply_error(c, ours ? "invalid cursor (the cluster changed)" : "invalid cursor");
        return;
    }
    struct server *s = &pool->servers[idx];
    struct sconn *sc = server_conn_for(s, c->id, c->lc.resp);
    int err = sconn_ensure(sc);
    if (err != 0) {
        router_fail(c, server_strerror(s, err), false);
        return;
    }
    router_send_cursor(c, sc, p, ri, cursor >> SCAN_BITS, cr_scan_reply, (uint64_t)idx, NULL);
}

bool cluster_dispatch(struct client *c, const uint8_t *p, const struct req_info *ri)
{
    switch (ri->route) {
    case ROUTE_KEY:
        cr_whole(c, p, ri);
        return true;
    case ROUTE_SPLIT:
        cr_split(c, p, ri);
        return true;
    case ROUTE_ALL:
        cr_all(c, p, ri);
        return true;
    case ROUTE_DATASET:
        if (ri->cursor && c->pool->proto->cursor_request != NULL) {
            cr_scan(c, p, ri);
        } else {
            cr_all(c, p, ri); /* DBSIZE summed, KEYS concatenated (proto->merge) */
        }
        return true;
    default:
        return false;
    }
}
