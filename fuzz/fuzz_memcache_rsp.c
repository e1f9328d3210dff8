/*
 * fuzz_memcache_rsp: the first byte picks the command the responses answer;
 * the rest is server bytes, parsed the way the core does (one response, drop
 * info->len bytes, go on). Checks: lengths and spans within the input, the
 * response alone parses the same and a byte less is incomplete, and a
 * retrieval response merged back through a split request is itself a valid
 * retrieval response.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "proto/memcache.h"
#include "proto/proto.h"

static const struct proto *P = &proto_memcache;

static void fuzz_spans_check(const struct spans *s, size_t len)
{
    for (uint32_t i = 0; i < s->n; i++) {
        assert((size_t)s->v[i].off + s->v[i].len <= len);
    }
}

/* Ask for the response's keys plus one more on one fragment, merge, and parse
 * the merged reply: every block comes back, then END. */
static void fuzz_merge_check(const uint8_t *p, const struct rsp_info *info)
{
    struct buf req, out;
    struct req_info rinfo;
    struct rsp_info merged;
    uint32_t nkeys = info->ekeys.n + 1;
    struct frag_map *map = malloc(nkeys * sizeof(*map));
    struct frag_rsp frag = {.p = p, .len = info->len, .info = info};

    buf_init(&req);
    buf_init(&out);
    req_info_init(&rinfo);
    rsp_info_init(&merged);
    buf_append_str(&req, "get");
    for (uint32_t i = 0; i < info->ekeys.n; i++) {
        buf_append(&req, " ", 1);
        buf_append(&req, p + info->ekeys.v[i].off, info->ekeys.v[i].len);
    }
    buf_append_str(&req, " zz\r\n");
    for (uint32_t i = 0; i < nkeys; i++) {
        map[i] = (struct frag_map){0, i};
    }
    /* Keys that are not valid request keys (spaces, too long) are skipped. */
    if (P->req_parse(req.data, req.len, &rinfo) == PARSE_OK && rinfo.keys.n == nkeys) {
        assert(P->merge(&out, req.data, &rinfo, map, &frag, 1) == 0);
        assert(P->rsp_parse(out.data, out.len, MC_CMD_GET, &merged) == PARSE_OK);
        assert(merged.len == out.len && merged.is_error == info->is_error);
        if (!info->is_error) {
            assert(merged.elems.n == info->elems.n);
        }
    }
    rsp_info_free(&merged);
    req_info_free(&rinfo);
    buf_free(&out);
    buf_free(&req);
    free(map);
}

/* A stats response from three servers merged (summed, or lines listed) is
 * itself a stats response with the same outcome. */
static void fuzz_stats_merge_check(const uint8_t *p, const struct rsp_info *info)
{
    static const char *const reqs[] = {"stats\r\n", "stats cachedump 1 0\r\n"};
    struct frag_rsp frags[3];
    struct rsp_info merged;
    struct req_info rinfo;
    struct buf out;

    rsp_info_init(&merged);
    req_info_init(&rinfo);
    buf_init(&out);
    for (int f = 0; f < 3; f++) {
        frags[f] = (struct frag_rsp){.p = p, .len = info->len, .info = info};
    }
    for (size_t r = 0; r < 2; r++) {
        buf_reset(&out);
        assert(P->req_parse((const uint8_t *)reqs[r], strlen(reqs[r]), &rinfo) == PARSE_OK);
        assert(rinfo.route == ROUTE_ALL);
        assert(P->merge(&out, (const uint8_t *)reqs[r], &rinfo, NULL, frags, 3) == 0);
        assert(P->rsp_parse(out.data, out.len, MC_CMD_STATS, &merged) == PARSE_OK);
        assert(merged.len == out.len && merged.is_error == info->is_error);
    }
    buf_free(&out);
    req_info_free(&rinfo);
    rsp_info_free(&merged);
}

static void fuzz_response_check(const uint8_t *p, size_t n, uint16_t cmd,
                                const struct rsp_info *info)
{
    struct rsp_info again;

    assert(info->len > 0 && info->len <= n);
    assert(cmd == MC_CMD_STATS ? info->ekeys.n == 0 : info->elems.n == info->ekeys.n);
    fuzz_spans_check(&info->elems, info->len);
    fuzz_spans_check(&info->ekeys, info->len);
    rsp_info_init(&again);
    assert(P->rsp_parse(p, info->len, cmd, &again) == PARSE_OK);
    assert(again.len == info->len && again.is_error == info->is_error);
    assert(P->rsp_parse(p, info->len - 1, cmd, &again) == PARSE_AGAIN);
    rsp_info_free(&again);
    if (cmd >= MC_CMD_GET && cmd <= MC_CMD_GATS) {
        fuzz_merge_check(p, info);
    }
    if (cmd == MC_CMD_STATS) {
        fuzz_stats_merge_check(p, info);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct rsp_info info;
    static int ready;

    if (!ready) {
        rsp_info_init(&info);
        ready = 1;
    }
    if (size == 0) {
        return 0;
    }
    uint16_t cmd = (uint16_t)(data[0] % (MC_CMD_COUNT + 1));
    size_t off = 1;
    while (off < size) {
        int rc = P->rsp_parse(data + off, size - off, cmd, &info);
        if (rc == PARSE_AGAIN) {
            assert(info.len == 0 || info.len > size - off);
            break;
        }
        if (rc == PARSE_ERROR) {
            assert(info.err[0] != '\0');
            break;
        }
        assert(rc == PARSE_OK);
        fuzz_response_check(data + off, size - off, cmd, &info);
        off += info.len;
    }
    return 0;
}
