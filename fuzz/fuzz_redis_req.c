/*
 * fuzz_redis_req: arbitrary client bytes through the redis request parser, consumed
 * message by message as the core does, with the parser's promises checked:
 * lengths in range, spans inside the message, every prefix of a message is
 * PARSE_AGAIN with a hint no larger than the message, and a split request's
 * fragments parse back into the same command.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/redis.h"

static struct req_info info, sub;

#define FUZZ_ASSERT(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

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

static void split_check(const uint8_t *p)
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

static void local_check(const uint8_t *p, bool authed)
{
    struct local_ctx lc = {"pw", 2, 1, authed, "0.5.0"};
    struct buf out;
    buf_init(&out);
    int rc = redis_local(&out, p, &info, &lc);
    FUZZ_ASSERT(rc == 0 || rc == 1);
    /* whatever local says must be one well-formed reply (the full COMMAND table is
     * skipped: re-parsing 90 KB per input would starve the fuzzer) */
    if (out.len > 0 && out.len <= 4096) {
        struct rsp_info r;
        rsp_info_init(&r);
        FUZZ_ASSERT(redis_rsp_parse(out.data, out.len, 0, &r) == PARSE_OK && r.len == out.len);
        rsp_info_free(&r);
    }
    buf_free(&out);
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
        spans_in(&info.keys, info.len);
        spans_in(&info.args, info.len);
        if (info.route == ROUTE_REJECT || info.route == ROUTE_DATASET) {
            /* DATASET: the refusal a sharded pool answers */
            FUZZ_ASSERT(info.err[0] != '\0');
            error_check();
        }
        if (info.len <= 4096) {
            size_t len = info.len;
            prefix_check(p, len);
            redis_req_parse(p, n, &info); /* restore */
        }
        if (info.route == ROUTE_SPLIT && info.keys.n >= 2) {
            split_check(p);
        }
        local_check(p, false);
        local_check(p, true);
        pos += info.len;
    }
    return 0;
}
