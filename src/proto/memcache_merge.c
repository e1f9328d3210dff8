/*
 * memcache_merge: split retrievals (get/gets/gat/gats with several keys) and
 * commands sent to every server (flush_all, verbosity, stats).
 *
 * A server answers the hits of one fragment in the fragment's key order and
 * leaves misses out, so a fragment's VALUE blocks are matched to its keys by
 * walking both in order: a block belongs to the next key whose bytes equal the
 * block's key. That also handles a key asked twice (memcached answers each).
 */
#include <stdio.h>
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

/* ---- stats ------------------------------------------------------------------ */

/* STAT values that describe one server rather than add up over a pool: the
 * first server's are shown. Everything else that is a number is summed. */
static const char *const mc_stat_first[] = {
    "pid",
    "uptime",
    "time",
    "version",
    "libevent",
    "pointer_size",
    "threads",
    "hash_power_level",
    "accepting_conns",
    "hash_is_expanding",
    "slab_reassign_running",
    "lru_crawler_running",
};

#define MC_FRAC_DIGITS 9

/* A number as memcached prints stats: digits, optionally '.' and up to 9
 * digits (rusage). *frac is scaled to 9 digits, *fdig says how many there were. */
static bool mc_stat_number(const uint8_t *s, size_t len, uint64_t *whole, uint64_t *frac,
                           unsigned *fdig)
{
    const uint8_t *dot = memchr(s, '.', len);
    size_t wl = dot ? (size_t)(dot - s) : len;
    *frac = 0;
    *fdig = 0;
    if (wl == 0 || s[0] == '+' || !mc_u64_parse(s, wl, whole)) {
        return false;
    }
    if (dot == NULL) {
        return true;
    }
    size_t fl = len - wl - 1;
    if (fl == 0 || fl > MC_FRAC_DIGITS || !mc_u64_parse(dot + 1, fl, frac) || dot[1] == '+') {
        return false;
    }
    *fdig = (unsigned)fl;
    for (size_t i = fl; i < MC_FRAC_DIGITS; i++) {
        *frac *= 10;
    }
    return true;
}

/* "STAT <name> <value>" of elem e: the name and value spans (relative to p). */
static bool mc_stat_split(const uint8_t *p, const struct span *e, struct span *name,
                          struct span *value)
{
    size_t end = e->off + e->len;
    struct span tok;
    size_t pos = e->off;
    while (end > e->off && (p[end - 1] == '\n' || p[end - 1] == '\r')) {
        end--;
    }
    if (!mc_token_next(p, &pos, end, &tok) || !mc_bytes_are(p + tok.off, tok.len, "STAT") ||
        !mc_token_next(p, &pos, end, name)) {
        return false;
    }
    while (pos < end && p[pos] == ' ') {
        pos++;
    }
    value->off = (uint32_t)pos;
    value->len = (uint32_t)(end - pos);
    return value->len > 0;
}

/* The value of stat `name` in response r: looked for at index `hint` first (the
 * servers list their stats in the same order), then everywhere. */
static bool mc_stat_find(const struct frag_rsp *r, const uint8_t *name, size_t nlen, uint32_t hint,
                         struct span *value)
{
    const struct spans *el = &r->info->elems;
    for (uint32_t k = 0; k < el->n; k++) {
        uint32_t i = (hint + k) % el->n;
        struct span n;
        if (mc_stat_split(r->p, &el->v[i], &n, value) && n.len == nlen &&
            memcmp(r->p + n.off, name, nlen) == 0) {
            return true;
        }
    }
    return false;
}

static bool mc_stat_first_only(const uint8_t *name, size_t len)
{
    for (size_t i = 0; i < sizeof(mc_stat_first) / sizeof(mc_stat_first[0]); i++) {
        if (mc_bytes_are(name, len, mc_stat_first[i])) {
            return true;
        }
    }
    return false;
}

/* The sum of stat line `i` of the first response over every response; false
 * (keep the first line) when the stat is not additive or not a number everywhere. */
static bool mc_stat_sum(const struct frag_rsp *rsps, uint32_t nrsps, uint32_t i, struct buf *out)
{
    const struct frag_rsp *r0 = &rsps[0];
    struct span name, value;
    uint64_t whole = 0, frac = 0;
    unsigned fdig = 0;
    if (!mc_stat_split(r0->p, &r0->info->elems.v[i], &name, &value) ||
        mc_stat_first_only(r0->p + name.off, name.len)) {
        return false;
    }
    for (uint32_t f = 0; f < nrsps; f++) {
        uint64_t w, fr;
        unsigned fd;
        if ((f > 0 && !mc_stat_find(&rsps[f], r0->p + name.off, name.len, i, &value)) ||
            !mc_stat_number(rsps[f].p + value.off, value.len, &w, &fr, &fd) || w == UINT64_MAX ||
            whole > UINT64_MAX - w - 1) {
            return false;
        }
        whole += w;
        frac += fr;
        if (frac >= 1000000000u) {
            whole++;
            frac -= 1000000000u;
        }
        fdig = fd > fdig ? fd : fdig;
    }
    size_t mark = out->len;
    int rc = buf_append_str(out, "STAT ");
    rc |= buf_append(out, r0->p + name.off, name.len);
    rc |= buf_printf(out, " %llu", (unsigned long long)whole);
    if (fdig > 0) {
        char digits[24];
        snprintf(digits, sizeof(digits), "%09llu", (unsigned long long)frac);
        rc |= buf_printf(out, ".%.*s", (int)fdig, digits);
    }
    rc |= buf_append(out, "\r\n", 2);
    /* a line no longer than a server may send (a sum has a digit more) */
    return rc == 0 && out->len - mark <= MC_LINE_MAX;
}

/* `stats`: the first server's lines, in its order, numbers summed over all. */
static int mc_merge_stats_sum(struct buf *out, const struct frag_rsp *rsps, uint32_t nrsps)
{
    const struct frag_rsp *r0 = &rsps[0];
    for (uint32_t i = 0; i < r0->info->elems.n; i++) {
        size_t mark = out->len;
        if (!mc_stat_sum(rsps, nrsps, i, out)) {
            out->len = mark;
            const struct span *e = &r0->info->elems.v[i];
            if (buf_append(out, r0->p + e->off, e->len) < 0) {
                return -1;
            }
        }
    }
    return buf_append(out, "END\r\n", 5);
}

/* stats whose lines list what each server holds (cachedump, detail dump). */
static int mc_merge_stats_concat(struct buf *out, const struct frag_rsp *rsps, uint32_t nrsps)
{
    for (uint32_t f = 0; f < nrsps; f++) {
        const struct spans *el = &rsps[f].info->elems;
        for (uint32_t i = 0; i < el->n; i++) {
            if (buf_append(out, rsps[f].p + el->v[i].off, el->v[i].len) < 0) {
                return -1;
            }
        }
    }
    return buf_append(out, "END\r\n", 5);
}

/* stats sent to every server (mc_req_stats_route says which). A one-line
 * answer (RESET, OK) is every server's: the first one's is the reply. */
static int mc_merge_stats(struct buf *out, const struct req_info *info, const struct frag_rsp *rsps,
                          uint32_t nrsps)
{
    const struct frag_rsp *r0 = &rsps[0];
    if (nrsps == 0 || r0->p == NULL) {
        return -1;
    }
    if (r0->info->elems.n == 0 && r0->len > 0 &&
        !(r0->len == 5 && memcmp(r0->p, "END\r\n", 5) == 0)) {
        return buf_append(out, r0->p, r0->len);
    }
    return info->args.n == 1 ? mc_merge_stats_sum(out, rsps, nrsps)
                             : mc_merge_stats_concat(out, rsps, nrsps);
}

int mc_merge(struct buf *out, const uint8_t *req, const struct req_info *info,
             const struct frag_map *map, const struct frag_rsp *rsps, uint32_t nrsps)
{
    const struct frag_rsp *bad = mc_merge_first_error(rsps, nrsps);
    size_t mark = out->len;
    int rc;

    if (bad != NULL) {
        rc = mc_merge_error(out, bad);
    } else if (map == NULL && info->cmd == MC_CMD_STATS) {
        rc = mc_merge_stats(out, info, rsps, nrsps);
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
