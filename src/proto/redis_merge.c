/*
 * redis_merge: merges of the requests every server answers (SCRIPT, FLUSHALL) or every
 * server of a sharded pool answers for its share of the keys (KEYS, DBSIZE,
 * RANDOMKEY) or of the subscriptions (PUBSUB CHANNELS, NUMSUB, NUMPAT). Each gives what one server
 * holding every key would have given, in the protocol the servers spoke (RESP3 connections give
 * RESP3 replies: nulls are `_`, arrays may be sets); a reply of the wrong shape gives an error,
 * never a crash.
 */
#include "proto/redis_merge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/redis_cmd.h"
#include "proto/redis_same.h"
#include "proto/redis_wire.h"

static bool merge_is(const struct frag_rsp *r, const char *types)
{
    return r->info != NULL && r->info->len <= r->len && r->info->type != 0 &&
           strchr(types, r->info->type) != NULL;
}

/* KEYS: every server's keys, one aggregate (of the servers' own type). */
static int merge_concat(struct buf *out, const struct frag_rsp *rsps, uint32_t n)
{
    char type = rsps[0].info != NULL ? rsps[0].info->type : 0;
    uint64_t elems = 0, bytes = 0;
    for (uint32_t f = 0; f < n; f++) {
        const struct rsp_info *ri = rsps[f].info;
        if (!merge_is(&rsps[f], "*~%") || ri->type != type) {
            return redis_wire_error(out, REDIS_BAD_REPLY);
        }
        elems += ri->elems.n;
        bytes += ri->elems.n > 0 ? ri->len - ri->elems.v[0].off : 0;
    }
    if (buf_reserve(out, bytes + REDIS_WIRE_NUM_MAX + 3) != 0 ||
        redis_wire_num(out, type, (int64_t)(type == '%' ? elems / 2 : elems)) != 0) {
        return -1;
    }
    for (uint32_t f = 0; f < n; f++) {
        const struct rsp_info *ri = rsps[f].info;
        if (ri->elems.n > 0) { /* cannot fail: reserved */
            buf_append(out, rsps[f].p + ri->elems.v[0].off, ri->len - ri->elems.v[0].off);
        }
    }
    return 0;
}

/* DBSIZE: the counts add up. */
static int merge_sum(struct buf *out, const struct frag_rsp *rsps, uint32_t n)
{
    int64_t sum = 0;
    for (uint32_t f = 0; f < n; f++) {
        if (!merge_is(&rsps[f], ":") || __builtin_add_overflow(sum, rsps[f].info->integer, &sum)) {
            return redis_wire_error(out, REDIS_BAD_REPLY);
        }
    }
    return redis_wire_num(out, ':', sum);
}

static bool merge_nil(const struct frag_rsp *r)
{
    return r->info->type == '_' || (r->info->type == '$' && r->info->integer < 0);
}

/* One element of a server's array, for sorting. */
struct merge_elem {
    const uint8_t *p;
    uint32_t len;
};

static int merge_elem_cmp(const void *x, const void *y)
{
    const struct merge_elem *a = x, *b = y;
    if (a->len != b->len) {
        return a->len < b->len ? -1 : 1;
    }
    return memcmp(a->p, b->p, a->len);
}

/* PUBSUB CHANNELS: every server's channels, each once (sorted by length, then
 * bytes, to find the repeats: a server lists them in no order either). */
static int merge_union(struct buf *out, const struct frag_rsp *rsps, uint32_t n)
{
    uint64_t total = 0;
    for (uint32_t f = 0; f < n; f++) {
        if (!merge_is(&rsps[f], "*~") || rsps[f].info->type != rsps[0].info->type) {
            return redis_wire_error(out, REDIS_BAD_REPLY);
        }
        total += rsps[f].info->elems.n;
    }
    struct merge_elem *v = malloc((total ? total : 1) * sizeof(*v));
    if (v == NULL) {
        return -1;
    }
    size_t m = 0;
    for (uint32_t f = 0; f < n; f++) {
        for (uint32_t i = 0; i < rsps[f].info->elems.n; i++) {
            struct span e = rsps[f].info->elems.v[i];
            v[m++] = (struct merge_elem){rsps[f].p + e.off, e.len};
        }
    }
    qsort(v, m, sizeof(*v), merge_elem_cmp);
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        if (k == 0 || merge_elem_cmp(&v[k - 1], &v[i]) != 0) {
            v[k++] = v[i];
        }
    }
    int rc = redis_wire_num(out, rsps[0].info->type, (int64_t)k);
    for (size_t i = 0; i < k && rc == 0; i++) {
        rc = buf_append(out, v[i].p, v[i].len);
    }
    free(v);
    return rc;
}

/* PUBSUB NUMPAT: the largest count. */
static int merge_max(struct buf *out, const struct frag_rsp *rsps, uint32_t n)
{
    int64_t max = 0;
    for (uint32_t f = 0; f < n; f++) {
        if (!merge_is(&rsps[f], ":")) {
            return redis_wire_error(out, REDIS_BAD_REPLY);
        }
        max = rsps[f].info->integer > max ? rsps[f].info->integer : max;
    }
    return redis_wire_num(out, ':', max);
}

/* PUBSUB NUMSUB a b...: [a count b count ...] (an array, or a map), the names
 * as every server says them, each count the largest. */
static int merge_max_pairs(struct buf *out, const struct frag_rsp *rsps, uint32_t n)
{
    const struct rsp_info *r0 = rsps[0].info;
    for (uint32_t f = 0; f < n; f++) {
        const struct rsp_info *ri = rsps[f].info;
        if (!merge_is(&rsps[f], "*%") || ri->type != r0->type || ri->elems.n != r0->elems.n ||
            ri->elems.n % 2 != 0) {
            return redis_wire_error(out, REDIS_BAD_REPLY);
        }
    }
    size_t start = out->len;
    uint32_t pairs = r0->elems.n / 2;
    int rc = redis_wire_num(out, r0->type, r0->type == '%' ? pairs : 2 * (int64_t)pairs);
    for (uint32_t i = 0; i < pairs && rc == 0; i++) {
        struct span name = r0->elems.v[2 * i];
        int64_t max = 0, v;
        for (uint32_t f = 0; f < n; f++) {
            struct span nf = rsps[f].info->elems.v[2 * i];
            if (nf.len != name.len ||
                memcmp(rsps[f].p + nf.off, rsps[0].p + name.off, name.len) != 0 ||
                !redis_wire_elem_int(rsps[f].p, rsps[f].info->elems.v[2 * i + 1], &v)) {
                out->len = start;
                return redis_wire_error(out, REDIS_BAD_REPLY);
            }
            max = v > max ? v : max;
        }
        rc = buf_append(out, rsps[0].p + name.off, name.len);
        rc = rc == 0 ? redis_wire_num(out, ':', max) : rc;
    }
    return rc;
}

/* RANDOMKEY: a key of the first server from seed on that has one; nil only when none
 * has (a random start, so that every server's keys come up). */
static int merge_pick(struct buf *out, uint32_t seed, const struct frag_rsp *rsps, uint32_t n)
{
    for (uint32_t f = 0; f < n; f++) {
        if (!merge_is(&rsps[f], "$_")) {
            return redis_wire_error(out, REDIS_BAD_REPLY);
        }
    }
    const struct frag_rsp *pick = &rsps[0];
    for (uint32_t i = 0; i < n; i++) {
        const struct frag_rsp *r = &rsps[(seed % n + i) % n];
        if (!merge_nil(r)) {
            pick = r;
            break;
        }
    }
    return buf_append(out, pick->p, pick->info->len);
}

/* The replies' text (a string's payload, another reply's bytes) from a little
 * before where they first differ, so that the error shows the difference. */
static void merge_quote_diff(char *qa, char *qb, size_t cap, const struct frag_rsp *a,
                             const struct frag_rsp *b)
{
    struct span wa = {0, (uint32_t)a->info->len}, wb = {0, (uint32_t)b->info->len}, sa, sb;
    if (!redis_wire_elem_str(a->p, wa, &sa) || !redis_wire_elem_str(b->p, wb, &sb)) {
        sa = wa;
        sb = wb;
    }
    uint32_t d = 0;
    while (d < sa.len && d < sb.len && a->p[sa.off + d] == b->p[sb.off + d]) {
        d++;
    }
    uint32_t from = d > 16 ? d - 16 : 0;
    const char *lead = from > 0 ? "..." : "";
    int k = snprintf(qa, cap, "%s", lead);
    redis_wire_quote(qa + k, cap - (size_t)k, a->p + sa.off + from, sa.len - from);
    k = snprintf(qb, cap, "%s", lead);
    redis_wire_quote(qb + k, cap - (size_t)k, b->p + sb.off + from, sb.len - from);
}

/* Whether two servers' replies say the same: FUNCTION LIST and DUMP list what a
 * server holds in its own order (redis_same.h); anything else byte for byte. */
static bool merge_alike(const struct req_info *info, const struct frag_rsp *a,
                        const struct frag_rsp *b)
{
    struct span sa, sb;
    if (info->cmd == REDIS_CMD_FUNCTION_DUMP &&
        redis_wire_elem_str(a->p, (struct span){0, (uint32_t)a->info->len}, &sa) &&
        redis_wire_elem_str(b->p, (struct span){0, (uint32_t)b->info->len}, &sb)) {
        return redis_same_fdump(a->p + sa.off, sa.len, b->p + sb.off, sb.len);
    }
    return redis_same_unordered(a->p, a->info->len, b->p, b->info->len);
}

/* SCRIPT LOAD, FUNCTION LOAD|LIST|DUMP...: every server must answer alike (the
 * same sha1 of the same script, the same libraries), whatever the reply's type;
 * the answer is the first server's reply. */
static int merge_same(struct buf *out, const struct req_info *info, const struct frag_rsp *rsps,
                      uint32_t n)
{
    for (uint32_t f = 1; f < n; f++) {
        const struct frag_rsp *a = &rsps[0], *b = &rsps[f];
        if (merge_alike(info, a, b)) {
            continue;
        }
        char qa[64], qb[64], msg[256];
        merge_quote_diff(qa, qb, sizeof(qa), a, b);
        snprintf(msg, sizeof(msg),
                 "ERR the servers disagree on %s: server 0 answered '%s', server %u '%s'",
                 redis_cmd_get(info->cmd)->name, qa, f, qb);
        return redis_wire_error(out, msg);
    }
    return buf_append(out, rsps[0].p, rsps[0].info->len);
}

/* SCRIPT EXISTS sha...: a script exists through the proxy when every server has it. */
static int merge_and(struct buf *out, const struct req_info *info, const struct frag_rsp *rsps,
                     uint32_t n)
{
    uint32_t m = info->args.n > 2 ? info->args.n - 2 : 0;
    for (uint32_t f = 0; f < n; f++) {
        if (!merge_is(&rsps[f], "*") || rsps[f].info->elems.n != m) {
            return redis_wire_error(out, REDIS_BAD_REPLY);
        }
    }
    size_t start = out->len;
    int rc = redis_wire_num(out, '*', m);
    for (uint32_t i = 0; i < m && rc == 0; i++) {
        int64_t all = 1;
        for (uint32_t f = 0; f < n; f++) {
            int64_t v;
            if (!redis_wire_elem_int(rsps[f].p, rsps[f].info->elems.v[i], &v)) {
                out->len = start;
                return redis_wire_error(out, REDIS_BAD_REPLY);
            }
            all &= v != 0;
        }
        rc = redis_wire_num(out, ':', all);
    }
    return rc;
}

static bool merge_notbusy(const struct frag_rsp *r)
{
    return r->info->len >= 8 && memcmp(r->p, "-NOTBUSY", 8) == 0;
}

/* SCRIPT KILL / FUNCTION KILL: +OK from the server that killed its script;
 * else the error that is not NOTBUSY (UNKILLABLE: it wrote), else NOTBUSY. */
static int merge_kill(struct buf *out, const struct frag_rsp *rsps, uint32_t n)
{
    const struct frag_rsp *why = NULL;
    for (uint32_t f = 0; f < n; f++) {
        const struct frag_rsp *r = &rsps[f];
        if (r->info == NULL || r->info->len > r->len) {
            continue;
        }
        if (!r->info->is_error) {
            return redis_wire_status(out, "OK");
        }
        if (why == NULL || (!merge_notbusy(r) && merge_notbusy(why))) {
            why = r;
        }
    }
    return why != NULL ? buf_append(out, why->p, why->info->len)
                       : redis_wire_error(out, REDIS_BAD_REPLY);
}

static int merge_ok(struct buf *out, const struct frag_rsp *rsps, uint32_t n)
{
    for (uint32_t f = 0; f < n; f++) {
        if (!merge_is(&rsps[f], "+")) {
            return redis_wire_error(out, REDIS_BAD_REPLY);
        }
    }
    return redis_wire_status(out, "OK");
}

int redis_merge_all(struct buf *out, uint8_t h, const struct req_info *info,
                    const struct frag_rsp *rsps, uint32_t nrsps)
{
    switch (h) {
    case REDIS_H_DATASET_CONCAT:
        return merge_concat(out, rsps, nrsps);
    case REDIS_H_DATASET_SUM:
        return merge_sum(out, rsps, nrsps);
    case REDIS_H_DATASET_PICK:
        return merge_pick(out, info->seed, rsps, nrsps);
    case REDIS_H_DATASET_UNION:
        return merge_union(out, rsps, nrsps);
    case REDIS_H_DATASET_MAX:
        return merge_max(out, rsps, nrsps);
    case REDIS_H_DATASET_MAX_PAIRS:
        return merge_max_pairs(out, rsps, nrsps);
    case REDIS_H_ALL_SAME:
        return merge_same(out, info, rsps, nrsps);
    case REDIS_H_ALL_AND:
        return merge_and(out, info, rsps, nrsps);
    case REDIS_H_ALL_OK:
    case REDIS_H_FLUSH:
        return merge_ok(out, rsps, nrsps);
    case REDIS_H_ALL_KILL:
        return merge_kill(out, rsps, nrsps);
    default:
        return -1;
    }
}
