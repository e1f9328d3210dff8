/*
 * fuzz_redis_rsp: arbitrary server bytes through the RESP2/RESP3 response parser,
 * consumed reply by reply (as the reply to SUBSCRIBE too, so that a subscribed
 * connection's replies are classified), then each reply merged as if it were a
 * fragment of MGET, DEL, MSET or one server's answer to KEYS, DBSIZE, RANDOMKEY,
 * SCRIPT LOAD/EXISTS, FLUSHALL, PUBSUB CHANNELS/NUMSUB/NUMPAT, FUNCTION LIST/DUMP (compared with
 * another server's in any order, either way round), and read as a SCAN reply: a hostile server may
 * make the merge answer an error, never crash it or make it emit a malformed reply.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/redis.h"
#include "proto/redis_cmd.h"
#include "proto/redis_same.h"
#include "fuzz.h"

static struct rsp_info info, check;

static void merge_as(const char *req, const struct frag_map *map, const struct frag_rsp *rsps,
                     uint32_t n)
{
    struct req_info ri;
    struct buf out;
    req_info_init(&ri);
    buf_init(&out);
    FUZZ_ASSERT(redis_req_parse((const uint8_t *)req, strlen(req), &ri) == PARSE_OK);
    FUZZ_ASSERT(redis_merge(&out, (const uint8_t *)req, &ri, map, rsps, n) == 0);
    FUZZ_ASSERT(redis_rsp_parse(out.data, out.len, 0, &check) == PARSE_OK);
    FUZZ_ASSERT(check.len == out.len);
    buf_free(&out);
    req_info_free(&ri);
}

/* The fuzzed reply as server 1 of 3 answering a request sent to every server, the
 * others answering `good`. */
static void merge_all_as(const char *req, const char *good, const uint8_t *p, size_t len)
{
    const uint8_t *g = (const uint8_t *)good;
    size_t glen = strlen(good);
    struct rsp_info other;
    rsp_info_init(&other);
    FUZZ_ASSERT(redis_rsp_parse(g, glen, 0, &other) == PARSE_OK);
    struct frag_rsp rsps[3] = {{g, glen, &other}, {p, len, &info}, {g, glen, &other}};
    struct req_info ri;
    struct buf out;
    req_info_init(&ri);
    buf_init(&out);
    FUZZ_ASSERT(redis_req_parse((const uint8_t *)req, strlen(req), &ri) == PARSE_OK);
    ri.seed = (uint32_t)len;
    FUZZ_ASSERT(redis_merge(&out, (const uint8_t *)req, &ri, NULL, rsps, 3) == 0);
    FUZZ_ASSERT(redis_rsp_parse(out.data, out.len, 0, &check) == PARSE_OK);
    FUZZ_ASSERT(check.len == out.len);
    buf_free(&out);
    req_info_free(&ri);
    rsp_info_free(&other);
}

static void cursor_as(const uint8_t *p)
{
    uint64_t cursor;
    struct buf out;
    buf_init(&out);
    if (redis_cursor_get(p, &info, &cursor) == 0) {
        FUZZ_ASSERT(redis_cursor_reply(&out, p, &info, cursor + 1) == 0);
        FUZZ_ASSERT(redis_rsp_parse(out.data, out.len, 0, &check) == PARSE_OK);
        FUZZ_ASSERT(check.len == out.len && redis_cursor_get(out.data, &check, &cursor) == 0);
    } else {
        FUZZ_ASSERT(redis_cursor_reply(&out, p, &info, 1) == -1 && out.len == 0);
    }
    buf_free(&out);
}

/* A subscribed connection's reply: what it is must agree with its bytes. */
static void push_as(const uint8_t *p, size_t len)
{
    FUZZ_ASSERT(redis_rsp_parse(p, len, REDIS_CMD_SUBSCRIBE, &check) == PARSE_OK);
    FUZZ_ASSERT(check.len == info.len && check.push <= PUSH_PONG);
    if (check.push == PUSH_CONFIRM) {
        FUZZ_ASSERT(check.sub >= SUB_SUBSCRIBE && check.sub <= SUB_PUNSUBSCRIBE);
        FUZZ_ASSERT((size_t)check.chan.off + check.chan.len <= len);
        FUZZ_ASSERT(!check.chan_null || check.chan.len == 0);
        struct buf out;
        buf_init(&out);
        FUZZ_ASSERT(redis_sub_reply(&out, check.sub, check.chan_null ? NULL : p + check.chan.off,
                                    check.chan.len, check.count, 3) == 0);
        FUZZ_ASSERT(redis_rsp_parse(out.data, out.len, REDIS_CMD_UNSUBSCRIBE, &check) == PARSE_OK);
        FUZZ_ASSERT(check.push == PUSH_CONFIRM && check.len == out.len);
        buf_free(&out);
    }
}

static void merges(const uint8_t *p, size_t len)
{
    static const char mget[] = "*4\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n";
    static const char del[] = "*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nb\r\n";
    static const char mset[] = "*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n";
    static const uint8_t two[] = "*1\r\n$1\r\nx\r\n";
    struct rsp_info other;
    rsp_info_init(&other);
    redis_rsp_parse(two, sizeof(two) - 1, 0, &other);
    /* a and c from the fuzzed reply, b from a good one */
    struct frag_rsp rsps[2] = {{p, len, &info}, {two, sizeof(two) - 1, &other}};
    struct frag_map map3[3] = {{0, 0}, {1, 0}, {0, 1}};
    merge_as(mget, map3, rsps, 2);
    struct frag_map map2[2] = {{0, 0}, {1, 0}};
    merge_as(del, map2, rsps, 2);
    merge_as(mset, map2, rsps, 2);
    rsp_info_free(&other);
    static const char *const all[][2] = {
        {"*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n", "*1\r\n$1\r\nx\r\n"},
        {"*1\r\n$6\r\nDBSIZE\r\n", ":1\r\n"},
        {"*1\r\n$9\r\nRANDOMKEY\r\n", "_\r\n"},
        {"*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n$1\r\nx\r\n", "$2\r\nab\r\n"},
        {"*4\r\n$6\r\nSCRIPT\r\n$6\r\nEXISTS\r\n$1\r\na\r\n$1\r\nb\r\n", "*2\r\n:1\r\n:0\r\n"},
        {"*1\r\n$8\r\nFLUSHALL\r\n", "+OK\r\n"},
        {"*2\r\n$8\r\nFUNCTION\r\n$4\r\nLIST\r\n", "*1\r\n*2\r\n$4\r\nname\r\n$1\r\nx\r\n"},
        {"*2\r\n$6\r\nPUBSUB\r\n$8\r\nCHANNELS\r\n", "*1\r\n$1\r\nx\r\n"},
        {"*3\r\n$6\r\nPUBSUB\r\n$6\r\nNUMSUB\r\n$1\r\nx\r\n", "*2\r\n$1\r\nx\r\n:1\r\n"},
        {"*2\r\n$6\r\nPUBSUB\r\n$6\r\nNUMPAT\r\n", ":1\r\n"},
        {"*2\r\n$8\r\nFUNCTION\r\n$4\r\nDUMP\r\n", "$13\r\n\xf5\x01x\x0a\x01"
                                                   "abcdefgh\r\n"}};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        merge_all_as(all[i][0], all[i][1], p, len);
    }
    /* the reply's halves compared either way round give one answer */
    const uint8_t *x = p, *y = p + len / 2;
    size_t xn = len / 2, yn = len - len / 2;
    FUZZ_ASSERT(redis_same_unordered(x, xn, y, yn) == redis_same_unordered(y, yn, x, xn));
    FUZZ_ASSERT(redis_same_fdump(x, xn, y, yn) == redis_same_fdump(y, yn, x, xn));
    cursor_as(p);
    push_as(p, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    while (pos < size) {
        const uint8_t *p = data + pos;
        size_t n = size - pos;
        int rc = redis_rsp_parse(p, n, 0, &info);
        if (rc == PARSE_AGAIN) {
            FUZZ_ASSERT(info.len == 0 || info.len > n);
            break;
        }
        if (rc == PARSE_ERROR) {
            break;
        }
        FUZZ_ASSERT(info.len > 0 && info.len <= n);
        for (uint32_t i = 0; i < info.elems.n; i++) {
            FUZZ_ASSERT((size_t)info.elems.v[i].off + info.elems.v[i].len <= info.len);
        }
        if (info.len <= 4096) { /* every strict prefix waits for more, in its own copy */
            size_t m = info.len - 1;
            uint8_t *copy = malloc(m ? m : 1);
            memcpy(copy, p, m);
            FUZZ_ASSERT(redis_rsp_parse(copy, m, 0, &check) == PARSE_AGAIN);
            FUZZ_ASSERT(check.len == 0 || (check.len > m && check.len <= info.len));
            free(copy);
        }
        merges(p, info.len);
        pos += info.len;
    }
    return 0;
}
