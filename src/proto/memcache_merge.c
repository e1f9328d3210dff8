/*
 * memcache_merge: split retrievals (get/gets/gat/gats with several keys) and
 * commands sent to every server (flush_all, verbosity).
 *
 * A server answers the hits of one fragment in the fragment's key order and
 * leaves misses out, so a fragment's VALUE blocks are matched to its keys by
 * walking both in order: a block belongs to the next key whose bytes equal the
 * block's key. That also handles a key asked twice (memcached answers each).
 */
#include <stdlib.h>
#include <string.h>

#include "proto/memcache_int.h"

#define MC_NONE UINT32_MAX

int mc_frag_build(struct buf *out, const uint8_t *req, const struct req_info *info,
                  const uint32_t *idx, uint32_t nidx)
{
    const struct mc_cmd *cmd = mc_cmd_get(info->cmd);
    const char *k = cmd ? strchr(cmd->shape, 'K') : NULL;

    if (k == NULL || nidx == 0) {
        return -1;
    }
    /* The name, and gat's exptime: every token before the keys. */
    uint32_t lead = (uint32_t)(k - cmd->shape) + 1;
    if (info->args.n < lead) {
        return -1;
    }
    size_t need = 2;
    for (uint32_t t = 0; t < lead; t++) {
        need += info->args.v[t].len + 1;
    }
    for (uint32_t j = 0; j < nidx; j++) {
        if (idx[j] >= info->keys.n) {
            return -1;
        }
        need += info->keys.v[idx[j]].len + 1;
    }
    if (buf_reserve(out, need) < 0) {
        return -1;
    }
    for (uint32_t t = 0; t < lead; t++) {
        buf_append(out, req + info->args.v[t].off, info->args.v[t].len);
        buf_append(out, " ", 1);
    }
    for (uint32_t j = 0; j < nidx; j++) {
        const struct span *key = &info->keys.v[idx[j]];
        buf_append(out, req + key->off, key->len);
        buf_append(out, j + 1 < nidx ? " " : "\r\n", j + 1 < nidx ? 1 : 2);
    }
    return 0;
}

static bool mc_rsp_failed(const struct frag_rsp *r)
{
    return r->info == NULL || r->info->is_error;
}

/* The error line of a failed fragment: what follows its last VALUE block. */
static int mc_merge_error(struct buf *out, const struct frag_rsp *r)
{
    size_t start = 0;

    if (r->info == NULL) {
        return buf_append_str(out, "SERVER_ERROR no reply from server\r\n");
    }
    if (r->info->elems.n > 0) {
        const struct span *last = &r->info->elems.v[r->info->elems.n - 1];
        start = (size_t)last->off + last->len;
    }
    if (r->p == NULL || start >= r->len) {
        return buf_append_str(out, "SERVER_ERROR bad reply from server\r\n");
    }
    return buf_append(out, r->p + start, r->len - start);
}

static const struct frag_rsp *mc_merge_first_error(const struct frag_rsp *rsps, uint32_t nrsps)
{
    for (uint32_t f = 0; f < nrsps; f++) {
        if (mc_rsp_failed(&rsps[f])) {
            return &rsps[f];
        }
    }
    return NULL;
}

/* Lists each fragment's original key indexes in fragment order:
 * slot[start[f] .. start[f+1]) for fragment f. -1 when map is inconsistent. */
static int mc_merge_slots(const struct frag_map *map, uint32_t nkeys, uint32_t nrsps,
                          uint32_t *start, uint32_t *slot)
{
    memset(start, 0, (size_t)(nrsps + 1) * sizeof(*start));
    for (uint32_t i = 0; i < nkeys; i++) {
        if (map[i].frag >= nrsps) {
            return -1;
        }
        start[map[i].frag + 1]++;
    }
    for (uint32_t f = 0; f < nrsps; f++) {
        start[f + 1] += start[f];
    }
    for (uint32_t i = 0; i < nkeys; i++) {
        slot[i] = MC_NONE;
    }
    for (uint32_t i = 0; i < nkeys; i++) {
        uint32_t f = map[i].frag;
        if (map[i].pos >= start[f + 1] - start[f] || slot[start[f] + map[i].pos] != MC_NONE) {
            return -1;
        }
        slot[start[f] + map[i].pos] = i;
    }
    return 0;
}

/* blk[i] = index of key i's VALUE block in its fragment's reply, or MC_NONE. */
static void mc_merge_match(const uint8_t *req, const struct req_info *info,
                           const struct frag_rsp *rsps, uint32_t nrsps, const uint32_t *start,
                           const uint32_t *slot, uint32_t *blk)
{
    for (uint32_t f = 0; f < nrsps; f++) {
        const struct spans *ekeys = &rsps[f].info->ekeys;
        uint32_t next = 0;
        for (uint32_t s = start[f]; s < start[f + 1]; s++) {
            uint32_t i = slot[s];
            const struct span *key = &info->keys.v[i];
            blk[i] = MC_NONE;
            if (next < ekeys->n && ekeys->v[next].len == key->len &&
                memcmp(rsps[f].p + ekeys->v[next].off, req + key->off, key->len) == 0) {
                blk[i] = next++;
            }
        }
    }
}

static int mc_merge_values(struct buf *out, const uint8_t *req, const struct req_info *info,
                           const struct frag_map *map, const struct frag_rsp *rsps, uint32_t nrsps)
{
    uint32_t nkeys = info->keys.n;
    uint32_t *start = malloc(((size_t)nrsps + 1 + 2 * (size_t)nkeys) * sizeof(uint32_t));
    int rc = -1;

    if (start == NULL) {
        return -1;
    }
    uint32_t *slot = start + nrsps + 1;
    uint32_t *blk = slot + nkeys;
    if (mc_merge_slots(map, nkeys, nrsps, start, slot) == 0) {
        mc_merge_match(req, info, rsps, nrsps, start, slot, blk);
        rc = 0;
        for (uint32_t i = 0; i < nkeys && rc == 0; i++) {
            if (blk[i] != MC_NONE) {
                const struct frag_rsp *r = &rsps[map[i].frag];
                const struct span *e = &r->info->elems.v[blk[i]];
                rc = buf_append(out, r->p + e->off, e->len);
            }
        }
        if (rc == 0) {
            rc = buf_append(out, "END\r\n", 5);
        }
    }
    free(start);
    return rc;
}

int mc_merge(struct buf *out, const uint8_t *req, const struct req_info *info,
             const struct frag_map *map, const struct frag_rsp *rsps, uint32_t nrsps)
{
    const struct frag_rsp *bad = mc_merge_first_error(rsps, nrsps);
    size_t mark = out->len;
    int rc;

    if (bad != NULL) {
        rc = mc_merge_error(out, bad);
    } else if (map == NULL) {
        /* flush_all / verbosity: every server said OK (anything else is an error). */
        rc = buf_append(out, "OK\r\n", 4);
    } else {
        rc = mc_merge_values(out, req, info, map, rsps, nrsps);
    }
    if (rc < 0) {
        out->len = mark; /* never leave half a reply behind */
    }
    return rc;
}
