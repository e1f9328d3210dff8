/*
 * fuzz_redis_req: arbitrary client bytes through the redis request parser, consumed
 * message by message as the core does, with the parser's promises checked:
 * lengths in range, spans inside the message (inside its rewrite for an inline
 * request, which parses back to the same command), every prefix of a message is
 * PARSE_AGAIN with a hint no larger than the message, a split request's fragments
 * and a SCAN's request for another cursor parse back into the same command, and the
 * local answers are well-formed RESP2 and RESP3 replies for every client state.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/redis.h"
#include "fuzz.h"

static struct req_info info, sub;

static void spans_in(const struct spans *s, size_t len)
{
    for (uint32_t i = 0; i < s->n; i++) {
        FUZZ_ASSERT((size_t)s->v[i].off + s->v[i].len <= len);
    }
}

/* Re-parse a strict prefix in its own allocation so ASan sees any over-read. */
static void prefix_check(const uint8_t *p, size_t len)
{
    size_t m = len - 1;
    uint8_t *copy = malloc(m ? m : 1);
    memcpy(copy, p, m);
    int rc = redis_req_parse(copy, m, &sub);
    FUZZ_ASSERT(rc == PARSE_AGAIN);
    FUZZ_ASSERT(sub.len == 0 || (sub.len > m && sub.len <= len));
    free(copy);
}

/* An inline request's rewrite is a RESP request of the same command. */
static void rewrite_check(void)
{
    struct buf w;
    buf_init(&w);
    buf_append(&w, info.wire.data, info.wire.len);
    FUZZ_ASSERT(redis_req_parse(w.data, w.len, &sub) == PARSE_OK);
    FUZZ_ASSERT(sub.len == w.len && sub.cmd == info.cmd && sub.route == info.route);
    FUZZ_ASSERT(!sub.rewritten && sub.args.n == info.args.n && sub.keys.n == info.keys.n);
    buf_free(&w);
}

static void cursor_check(const uint8_t *p)
{
    struct buf out;
    buf_init(&out);
    FUZZ_ASSERT(redis_cursor_request(&out, p, &info, 1234) == 0);
    FUZZ_ASSERT(redis_req_parse(out.data, out.len, &sub) == PARSE_OK);
    FUZZ_ASSERT(sub.len == out.len && sub.cmd == info.cmd && sub.args.n == info.args.n);
    buf_free(&out);
}

/* Fragments copy the client's argument runs: half the keys parse back into the same
 * command, and all of them in order give the request itself, byte for byte (the
 * parser takes canonical headers only, so nothing is encoded afresh). */
static void split_check(const uint8_t *p, size_t len)
{
    uint32_t n = info.keys.n, half = n / 2;
    uint32_t *idx = malloc(n * sizeof(*idx));
    for (uint32_t i = 0; i < n; i++) {
        idx[i] = i;
    }
    struct buf out;
    buf_init(&out);
    FUZZ_ASSERT(redis_frag_build(&out, p, &info, idx, half) == 0);
    FUZZ_ASSERT(redis_req_parse(out.data, out.len, &sub) == PARSE_OK);
    FUZZ_ASSERT(sub.len == out.len && sub.cmd == info.cmd && sub.keys.n == half);
    buf_reset(&out);
    FUZZ_ASSERT(redis_frag_build(&out, p, &info, idx, n) == 0);
    FUZZ_ASSERT(out.len == len && memcmp(out.data, p, len) == 0);
    buf_free(&out);
    free(idx);
}

/* The core answers rejects and protocol errors with error_reply(err): one RESP error. */
static void error_check(void)
{
    struct buf out;
    struct rsp_info r;
    buf_init(&out);
    rsp_info_init(&r);
    FUZZ_ASSERT(redis_error_reply(&out, info.err) == 0);
    FUZZ_ASSERT(redis_rsp_parse(out.data, out.len, 0, &r) == PARSE_OK);
    FUZZ_ASSERT(r.len == out.len && r.is_error);
    rsp_info_free(&r);
    buf_free(&out);
}

static void local_check(const uint8_t *p, bool authed, int resp, bool subscribed)
{
    struct local_ctx lc;
    memset(&lc, 0, sizeof(lc));
    lc.auth = "pw";
    lc.auth_len = 2;
    lc.db = 1;
    lc.authed = authed;
    lc.version = "0.5.0";
    lc.resp = resp;
    lc.subscribed = subscribed;
    lc.addr = "127.0.0.1:1";
    buf_init(&lc.name);
    struct buf out;
    buf_init(&out);
    int rc = redis_local(&out, p, &info, &lc);
    FUZZ_ASSERT(rc == 0 || rc == 1);
    FUZZ_ASSERT(lc.resp == 2 || lc.resp == 3);
    /* whatever local says must be one well-formed reply (the full COMMAND table is
     * skipped: re-parsing 90 KB per input would starve the fuzzer) */
    if (out.len > 0 && out.len <= 4096) {
        struct rsp_info r;
        rsp_info_init(&r);
        FUZZ_ASSERT(redis_rsp_parse(out.data, out.len, 0, &r) == PARSE_OK && r.len == out.len);
        rsp_info_free(&r);
    }
    buf_free(&out);
    buf_free(&lc.name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    while (pos < size) {
        const uint8_t *p = data + pos;
        size_t n = size - pos;
        int rc = redis_req_parse(p, n, &info);
        if (rc == PARSE_AGAIN) {
            FUZZ_ASSERT(info.len == 0 || info.len > n);
            break;
        }
        if (rc == PARSE_ERROR) {
            FUZZ_ASSERT(info.err[0] != '\0');
            error_check();
            break;
        }
        FUZZ_ASSERT(rc == PARSE_OK && info.len > 0 && info.len <= n);
        /* the bytes the spans point into: the request, or its rewrite */
        const uint8_t *req = info.rewritten ? info.wire.data : p;
        size_t req_len = info.rewritten ? info.wire.len : info.len;
        spans_in(&info.keys, req_len);
        spans_in(&info.args, req_len);
        if (info.route == ROUTE_REJECT || info.route == ROUTE_DATASET || info.flush) {
            /* DATASET: the refusal a sharded pool answers; flush: without allow_flush */
            FUZZ_ASSERT(info.err[0] != '\0');
            error_check();
        }
        if (info.rewritten) {
            rewrite_check();
        }
        if (info.len <= 4096) {
            size_t len = info.len;
            prefix_check(p, len);
            redis_req_parse(p, n, &info); /* restore */
            req = info.rewritten ? info.wire.data : p;
        }
        if (info.route == ROUTE_SPLIT && info.keys.n >= 2) {
            split_check(req, req_len);
        }
        if (info.cursor) {
            cursor_check(req);
        }
        local_check(req, false, 2, false);
        local_check(req, true, 2, false);
        local_check(req, true, 3, false);
        local_check(req, true, 2, true);
        pos += info.len;
    }
    return 0;
}
