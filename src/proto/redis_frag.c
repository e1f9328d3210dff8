/*
 * redis_frag: split commands. A fragment is a fresh RESP array with the client's
 * command name and the arguments of a subset of the keys (MSET: each key with its
 * value); the merge turns the fragments' replies back into the one reply the client
 * would have had from a single server.
 *
 * Replies come from servers we do not control: every shape is checked before
 * anything is written, and a wrong one becomes an error reply, never a crash.
 */
#include "proto/redis.h"
#include "proto/redis_cmd.h"
#include "proto/redis_merge.h"
#include "proto/redis_wire.h"

#define FRAG_BAD_REPLY REDIS_BAD_REPLY

static bool frag_is_split(const struct redis_cmd *c)
{
    return c->handling == REDIS_H_SPLIT_ARRAY || c->handling == REDIS_H_SPLIT_SUM ||
           c->handling == REDIS_H_SPLIT_OK;
}

/* Argument index of key i: split commands keep their keys at first + i * step. */
static bool frag_key_arg(const struct redis_cmd *c, const struct req_info *info, uint32_t i,
                         uint32_t *arg)
{
    if (i >= info->keys.n) {
        return false;
    }
    uint64_t a = (uint64_t)c->first + (uint64_t)i * (uint64_t)c->step;
    if (a + (uint64_t)c->step > info->args.n || info->args.v[a].off != info->keys.v[i].off) {
        return false;
    }
    *arg = (uint32_t)a;
    return true;
}

/* Where the client's encoding of an argument starts: the request was parsed as
 * RESP, so "$<its length>\r\n" sits right before the bytes and "\r\n" after
 * them. false when it does not (then the argument is encoded afresh). */
static bool frag_arg_head(const uint8_t *req, struct span s, uint32_t *head)
{
    if (s.off < 4 || req[s.off - 1] != '\n' || req[s.off - 2] != '\r' ||
        req[s.off + s.len] != '\r' || req[s.off + s.len + 1] != '\n') {
        return false;
    }
    uint32_t h = s.off - 2;
    while (h > 1 && s.off - 2 - h < 10 && req[h - 1] >= '0' && req[h - 1] <= '9') {
        h--;
    }
    if (h == s.off - 2 || req[h - 1] != '$') {
        return false;
    }
    uint64_t v = 0;
    for (uint32_t i = h; i < s.off - 2; i++) {
        v = v * 10 + (uint64_t)(req[i] - '0');
    }
    *head = h - 1;
    return v == s.len;
}

/* Append args[a .. a + n) as the client sent them, in one copy. The parser (RESP,
 * or an inline request rewritten as RESP) lays each argument out as
 * "$<len>\r\n<bytes>\r\n" right after the one before it, so a run of arguments
 * starts where the argument before it ends, past its CRLF; the first argument's
 * header is found before its bytes. A run that does not start with a header
 * (never from the parser) is encoded afresh. */
static int frag_args(struct buf *out, const uint8_t *req, const struct req_info *info, uint32_t a,
                     uint32_t n)
{
    uint32_t from;
    bool ok;
    if (a == 0) {
        ok = frag_arg_head(req, info->args.v[0], &from);
    } else {
        struct span prev = info->args.v[a - 1];
        from = prev.off + prev.len + 2;
        ok = req[from] == '$';
    }
    if (ok) {
        struct span last = info->args.v[a + n - 1];
        return buf_append(out, req + from, last.off + last.len + 2 - from);
    }
    int rc = 0;
    for (uint32_t j = 0; j < n && rc == 0; j++) {
        struct span s = info->args.v[a + j];
        rc = redis_wire_bulk(out, req + s.off, s.len);
    }
    return rc;
}

int redis_frag_build(struct buf *out, const uint8_t *req, const struct req_info *info,
                     const uint32_t *idx, uint32_t nidx)
{
    const struct redis_cmd *c = redis_cmd_get(info->cmd);
    if (!frag_is_split(c) || nidx == 0 || c->step <= 0 || c->first <= 0) {
        return -1;
    }
    size_t start = out->len;
    uint32_t group = (uint32_t)c->step; /* a key and what belongs to it (MSET: its value) */
    int rc = redis_wire_num(out, '*', 1 + (int64_t)nidx * group);
    rc |= frag_args(out, req, info, 0, 1);
    for (uint32_t k = 0; k < nidx && rc == 0; k++) {
        uint32_t arg;
        if (!frag_key_arg(c, info, idx[k], &arg)) {
            rc = -1;
            break;
        }
        rc = frag_args(out, req, info, arg, group);
    }
    if (rc != 0) {
        out->len = start;
        return -1;
    }
    return 0;
}

/* The first fragment reply that is an error, which then stands for the whole reply. */
static const struct frag_rsp *frag_first_error(const struct frag_rsp *rsps, uint32_t nrsps)
{
    for (uint32_t f = 0; f < nrsps; f++) {
        if (rsps[f].info != NULL && rsps[f].info->is_error) {
            return &rsps[f];
        }
    }
    return NULL;
}

static bool frag_rsp_is(const struct frag_rsp *r, char type)
{
    return r->info != NULL && r->info->type == type && r->info->len <= r->len;
}

/* MGET: each fragment answered an array with one element per key it was given (a
 * RESP3 server's null elements are `_`, copied as they are for a RESP3 client). */
static int frag_merge_array(struct buf *out, const struct req_info *info,
                            const struct frag_map *map, const struct frag_rsp *rsps, uint32_t nrsps)
{
    uint64_t elems = 0, bytes = 0;
    for (uint32_t f = 0; f < nrsps; f++) {
        if (!frag_rsp_is(&rsps[f], '*')) {
            return redis_wire_error(out, FRAG_BAD_REPLY);
        }
        elems += rsps[f].info->elems.n;
    }
    if (elems != info->keys.n) {
        return redis_wire_error(out, FRAG_BAD_REPLY);
    }
    for (uint32_t i = 0; i < info->keys.n; i++) {
        const struct frag_rsp *r = map[i].frag < nrsps ? &rsps[map[i].frag] : NULL;
        if (r == NULL || map[i].pos >= r->info->elems.n) {
            return redis_wire_error(out, FRAG_BAD_REPLY);
        }
        struct span e = r->info->elems.v[map[i].pos];
        if ((uint64_t)e.off + e.len > r->len) {
            return redis_wire_error(out, FRAG_BAD_REPLY);
        }
        bytes += e.len;
    }
    if (buf_reserve(out, bytes + REDIS_WIRE_NUM_MAX + 3) != 0 ||
        redis_wire_num(out, '*', info->keys.n) != 0) {
        return -1;
    }
    for (uint32_t i = 0; i < info->keys.n; i++) {
        const struct frag_rsp *r = &rsps[map[i].frag];
        struct span e = r->info->elems.v[map[i].pos];
        buf_append(out, r->p + e.off, e.len); /* cannot fail: reserved */
    }
    return 0;
}

/* DEL, UNLINK, TOUCH, EXISTS: the counts add up. */
static int frag_merge_sum(struct buf *out, const struct frag_rsp *rsps, uint32_t nrsps)
{
    int64_t sum = 0;
    for (uint32_t f = 0; f < nrsps; f++) {
        if (!frag_rsp_is(&rsps[f], ':') ||
            __builtin_add_overflow(sum, rsps[f].info->integer, &sum)) {
            return redis_wire_error(out, FRAG_BAD_REPLY);
        }
    }
    return redis_wire_num(out, ':', sum);
}

static int frag_merge_ok(struct buf *out, const struct frag_rsp *rsps, uint32_t nrsps)
{
    for (uint32_t f = 0; f < nrsps; f++) {
        if (!frag_rsp_is(&rsps[f], '+')) {
            return redis_wire_error(out, FRAG_BAD_REPLY);
        }
    }
    return redis_wire_status(out, "OK");
}

int redis_merge(struct buf *out, const uint8_t *req, const struct req_info *info,
                const struct frag_map *map, const struct frag_rsp *rsps, uint32_t nrsps)
{
    const struct redis_cmd *c = redis_cmd_get(info->cmd);
    if ((map == NULL) == frag_is_split(c)) {
        return -1; /* a split without its map, or a map for a whole request: a core bug */
    }
    if (nrsps == 0 || rsps == NULL) {
        return redis_wire_error(out, FRAG_BAD_REPLY);
    }
    /* SCRIPT KILL: every server but the busy one says NOTBUSY */
    const struct frag_rsp *bad =
        c->handling == REDIS_H_ALL_KILL ? NULL : frag_first_error(rsps, nrsps);
    if (bad != NULL) {
        return buf_append(out, bad->p, bad->len);
    }
    size_t start = out->len;
    int rc;
    if (map == NULL) {
        rc = redis_merge_all(out, c->handling, info, rsps, nrsps);
    } else if (c->handling == REDIS_H_SPLIT_ARRAY) {
        rc = frag_merge_array(out, info, map, rsps, nrsps);
    } else if (c->handling == REDIS_H_SPLIT_SUM) {
        rc = frag_merge_sum(out, rsps, nrsps);
    } else {
        rc = frag_merge_ok(out, rsps, nrsps);
    }
    if (rc != 0) {
        out->len = start;
    }
    return rc;
}
