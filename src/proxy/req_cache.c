/*
 * req_cache: where requests, splits and the router's working arrays come from.
 *
 * A proxy under load makes and ends a request per client command, a split and
 * a fragment per server for every MGET/MSET. Allocating each from malloc cost
 * about a tenth of the instructions per request, so what ends goes to a free
 * list of its proxy and the next request takes it back, with the memory it
 * grew (a reply buffer, a split's arrays). The lists are bounded
 * (REQ_CACHE_MAX requests, SPLIT_CACHE_MAX splits, memory kept per object
 * capped) and their bytes count toward --buffer-limit (memlimit.c).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "proxy/proxy.h"
#include "proxy/req.h"

#define REQ_CACHE_MAX   1024
#define REQ_KEEP_RSP    1024 /* a request keeps a reply buffer up to this size */
#define SPLIT_CACHE_MAX 128
#define SPLIT_KEEP      (64 * 1024) /* a split keeps at most this much memory */
#define SCRATCH_KEEP    (64 * 1024)
#define REQ_BLOCK_SIZE  480 /* with its header, 512 bytes */
#define REQ_BLOCK_MAX   1024

/* The header before a req_block_get block: its size, and the free list's link. */
union req_block {
    struct {
        union req_block *next;
        size_t size;
    } h;
    max_align_t align;
};

static void req_oom(void)
{
    log_error("out of memory allocating a request");
    abort(); /* losing a request silently is worse than stopping */
}

static void *req_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        req_oom();
    }
    return q;
}

struct req *req_new(struct proxy *px, uint16_t cmd)
{
    struct req_cache *rc = &px->reqs;
    struct req *r = rc->reqs;
    struct buf rsp;
    buf_init(&rsp);
    if (r != NULL) {
        rc->reqs = r->cnext;
        rc->nreqs--;
        rc->kept_bytes -= r->rsp.cap;
        rsp = r->rsp;
    } else {
        r = req_xrealloc(NULL, sizeof(*r));
    }
    memset(r, 0, sizeof(*r));
    r->rsp = rsp;
    r->rsp.len = 0;
    r->px = px;
    r->cmd = cmd;
    return r;
}

struct req *req_new_frag(struct req *parent, uint32_t f)
{
    struct req *r = req_new(parent->px, parent->cmd);
    r->parent = parent;
    r->frag_idx = f;
    return r;
}

/* Room in sp for nfrags fragments: new slots initialised, kept ones emptied. */
static void split_fit(struct split *sp, uint32_t nfrags)
{
    if (nfrags > sp->frag_cap) {
        sp->rsps = req_xrealloc(sp->rsps, nfrags * sizeof(*sp->rsps));
        sp->infos = req_xrealloc(sp->infos, nfrags * sizeof(*sp->infos));
        for (uint32_t i = sp->frag_cap; i < nfrags; i++) {
            buf_init(&sp->rsps[i]);
            rsp_info_init(&sp->infos[i]);
        }
        sp->frag_cap = nfrags;
    }
    for (uint32_t i = 0; i < nfrags; i++) {
        buf_reset(&sp->rsps[i]);
        rsp_info_reset(&sp->infos[i]);
    }
}

static struct split *split_take(struct req_cache *rc, size_t req_len, uint32_t nfrags)
{
    struct split *sp = rc->splits;
    if (sp != NULL) {
        rc->splits = sp->next;
        rc->nsplits--;
        rc->kept_bytes -= sp->kept;
    } else {
        sp = req_xrealloc(NULL, sizeof(*sp));
        memset(sp, 0, sizeof(*sp));
        req_info_init(&sp->info);
    }
    if (req_len > sp->req_cap) {
        sp->req = req_xrealloc(sp->req, req_len);
        sp->req_cap = req_len;
    }
    split_fit(sp, nfrags);
    spans_reset(&sp->info.keys);
    spans_reset(&sp->info.args);
    sp->map = NULL;
    sp->next = NULL;
    sp->failed = false;
    sp->err[0] = '\0';
    return sp;
}

struct req *req_new_split(struct proxy *px, const uint8_t *p, const struct req_info *ri,
                          uint32_t nfrags)
{
    struct req *r = req_new(px, ri->cmd);
    struct split *sp = split_take(&px->reqs, ri->len, nfrags);
    memcpy(sp->req, p, ri->len);
    sp->req_len = ri->len;
    sp->info.len = ri->len;
    sp->info.route = ri->route;
    sp->info.cmd = ri->cmd;
    sp->info.noreply = ri->noreply;
    sp->info.own_conn = ri->own_conn; /* SCRIPT KILL: a fragment's failure is its reply */
    sp->info.seed = 0;
    for (uint32_t i = 0; i < ri->keys.n; i++) {
        if (spans_push(&sp->info.keys, ri->keys.v[i].off, ri->keys.v[i].len) != 0) {
            req_oom();
        }
    }
    for (uint32_t i = 0; i < ri->args.n; i++) {
        if (spans_push(&sp->info.args, ri->args.v[i].off, ri->args.v[i].len) != 0) {
            req_oom();
        }
    }
    sp->nfrags = nfrags;
    sp->pending = nfrags;
    r->split = sp;
    return r;
}

struct frag_map *req_split_map(struct req *parent, uint32_t n)
{
    struct split *sp = parent->split;
    if (n > sp->map_cap) {
        sp->map_store = req_xrealloc(sp->map_store, n * sizeof(*sp->map_store));
        sp->map_cap = n;
    }
    sp->map = sp->map_store;
    return sp->map;
}

static size_t split_memory(const struct split *sp)
{
    size_t m = sizeof(*sp) + sp->req_cap + sp->map_cap * sizeof(*sp->map_store) +
               sp->frag_cap * (sizeof(*sp->rsps) + sizeof(*sp->infos)) +
               (sp->info.keys.cap + sp->info.args.cap) * sizeof(struct span);
    for (uint32_t i = 0; i < sp->frag_cap; i++) {
        m += sp->rsps[i].cap +
             (sp->infos[i].elems.cap + sp->infos[i].ekeys.cap) * sizeof(struct span);
    }
    return m;
}

static void split_destroy(struct split *sp)
{
    for (uint32_t i = 0; i < sp->frag_cap; i++) {
        buf_free(&sp->rsps[i]);
        rsp_info_free(&sp->infos[i]);
    }
    free(sp->rsps);
    free(sp->infos);
    free(sp->map_store);
    free(sp->req);
    req_info_free(&sp->info);
    free(sp);
}

static void split_give_back(struct req_cache *rc, struct split *sp)
{
    size_t m = split_memory(sp);
    if (rc->nsplits >= SPLIT_CACHE_MAX || m > SPLIT_KEEP) {
        split_destroy(sp);
        return;
    }
    sp->kept = m;
    rc->kept_bytes += m;
    sp->next = rc->splits;
    rc->splits = sp;
    rc->nsplits++;
}

void req_free(struct req *r)
{
    struct req_cache *rc = &r->px->reqs;
    if (r->split != NULL) {
        split_give_back(rc, r->split);
    }
    req_block_put(r->px, r->cx);
    if (r->rsp.cap > REQ_KEEP_RSP || rc->nreqs >= REQ_CACHE_MAX) {
        buf_free(&r->rsp);
    }
    if (rc->nreqs >= REQ_CACHE_MAX) {
        free(r);
        return;
    }
    rc->kept_bytes += r->rsp.cap;
    r->cnext = rc->reqs;
    rc->reqs = r;
    rc->nreqs++;
}

void *req_scratch(struct proxy *px, size_t bytes)
{
    struct req_cache *rc = &px->reqs;
    if (bytes > rc->scratch_cap) {
        rc->scratch = req_xrealloc(rc->scratch, bytes);
        rc->scratch_cap = bytes;
    }
    return rc->scratch;
}

struct buf *req_outbuf(struct proxy *px)
{
    struct buf *b = &px->reqs.out;
    buf_reset(b);
    return b;
}

void req_cache_trim(struct req_cache *rc)
{
    /* one huge MGET or MSET does not pin what it needed until the next one */
    if (rc->out.cap > SCRATCH_KEEP) {
        buf_free(&rc->out);
    }
    if (rc->scratch_cap > SCRATCH_KEEP) {
        free(rc->scratch);
        rc->scratch = NULL;
        rc->scratch_cap = 0;
    }
}

void req_cache_free(struct req_cache *rc)
{
    while (rc->reqs != NULL) {
        struct req *r = rc->reqs;
        rc->reqs = r->cnext;
        buf_free(&r->rsp);
        free(r);
    }
    while (rc->splits != NULL) {
        struct split *sp = rc->splits;
        rc->splits = sp->next;
        split_destroy(sp);
    }
    while (rc->blocks != NULL) {
        union req_block *b = rc->blocks;
        rc->blocks = b->h.next;
        free(b);
    }
    free(rc->scratch);
    buf_free(&rc->out);
    memset(rc, 0, sizeof(*rc));
}

void *req_block_get(struct proxy *px, size_t n)
{
    struct req_cache *rc = &px->reqs;
    union req_block *b = NULL;
    if (n <= REQ_BLOCK_SIZE && rc->blocks != NULL) {
        b = rc->blocks;
        rc->blocks = b->h.next;
        rc->nblocks--;
        rc->kept_bytes -= sizeof(*b) + REQ_BLOCK_SIZE;
    } else {
        size_t size = n <= REQ_BLOCK_SIZE ? REQ_BLOCK_SIZE : n;
        b = req_xrealloc(NULL, sizeof(*b) + size);
        b->h.size = size;
    }
    return b + 1;
}

void req_block_put(struct proxy *px, void *p)
{
    if (p == NULL) {
        return;
    }
    struct req_cache *rc = &px->reqs;
    union req_block *b = (union req_block *)p - 1;
    if (b->h.size != REQ_BLOCK_SIZE || rc->nblocks >= REQ_BLOCK_MAX) {
        free(b);
        return;
    }
    b->h.next = rc->blocks;
    rc->blocks = b;
    rc->nblocks++;
    rc->kept_bytes += sizeof(*b) + REQ_BLOCK_SIZE;
}
