/*
 * test_redis: the redis protocol module, byte for byte: request framing and
 * classification, responses, fragments, merges, local answers and AUTH.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/redis.h"
#include "proto/redis_cmd.h"
#include "unit.h"

static struct req_info rq;
static struct rsp_info rs;

/* ---- helpers --------------------------------------------------------------------- */

/* Build a RESP request from a space-separated word list ("SET k v"). */
static size_t resp_of(char *dst, size_t cap, const char *words)
{
    char tmp[4096];
    const char *w[256];
    int n = 0;
    snprintf(tmp, sizeof(tmp), "%s", words);
    for (char *s = strtok(tmp, " "); s != NULL && n < 256; s = strtok(NULL, " ")) {
        w[n++] = s;
    }
    size_t len = (size_t)snprintf(dst, cap, "*%d\r\n", n);
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(dst + len, cap - len, "$%zu\r\n%s\r\n", strlen(w[i]), w[i]);
    }
    return len;
}

static int parse_mem(const char *p, size_t n)
{
    return redis_req_parse((const uint8_t *)p, n, &rq);
}

static int parse_words(const char *words, char *buf, size_t cap)
{
    size_t n = resp_of(buf, cap, words);
    int rc = parse_mem(buf, n);
    if (rc == PARSE_OK && rq.len != n) {
        fprintf(stderr, "'%s': parsed %zu of %zu bytes\n", words, rq.len, n);
        unit_fail++;
    }
    return rc;
}

static bool key_is(const char *req, uint32_t i, const char *want)
{
    if (i >= rq.keys.n) {
        return false;
    }
    struct span s = rq.keys.v[i];
    return s.len == strlen(want) && memcmp(req + s.off, want, s.len) == 0;
}

/* Every strict prefix of a complete request must be PARSE_AGAIN with a sane hint,
 * and parsing it whole again must give the same answer. */
static bool req_incremental_ok(const char *p, size_t n)
{
    if (parse_mem(p, n) != PARSE_OK) {
        return false;
    }
    size_t len = rq.len;
    uint8_t route = rq.route;
    uint16_t cmd = rq.cmd;
    uint32_t nkeys = rq.keys.n;
    for (size_t m = 0; m < len; m++) {
        if (parse_mem(p, m) != PARSE_AGAIN || (rq.len != 0 && (rq.len <= m || rq.len > len))) {
            fprintf(stderr, "prefix %zu of %zu: rc/hint wrong (hint %zu)\n", m, len, rq.len);
            return false;
        }
    }
    return parse_mem(p, n) == PARSE_OK && rq.len == len && rq.route == route && rq.cmd == cmd &&
           rq.keys.n == nkeys;
}

static bool rsp_incremental_ok(const char *p, size_t n)
{
    if (redis_rsp_parse((const uint8_t *)p, n, 0, &rs) != PARSE_OK) {
        return false;
    }
    size_t len = rs.len;
    uint32_t elems = rs.elems.n;
    for (size_t m = 0; m < len; m++) {
        if (redis_rsp_parse((const uint8_t *)p, m, 0, &rs) != PARSE_AGAIN ||
            (rs.len != 0 && (rs.len <= m || rs.len > len))) {
            fprintf(stderr, "rsp prefix %zu of %zu: rc/hint wrong (hint %zu)\n", m, len, rs.len);
            return false;
        }
    }
    return redis_rsp_parse((const uint8_t *)p, n, 0, &rs) == PARSE_OK && rs.len == len &&
           rs.elems.n == elems;
}

#define CHECK_ERR(want) CHECK_MEM(rq.err, strlen(rq.err), want)

/* ---- requests: shapes and routes ------------------------------------------------- */

static void test_req_basic(void)
{
    char b[8192];
    CHECK_EQ_INT(parse_words("GET foo", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_KEY);
    CHECK_EQ_INT(rq.cmd, REDIS_CMD_GET);
    CHECK(rq.readonly);
    CHECK_EQ_INT(rq.keys.n, 1);
    CHECK(key_is(b, 0, "foo"));
    CHECK_EQ_INT(rq.args.n, 2);
    CHECK_MEM(b + rq.args.v[0].off, rq.args.v[0].len, "GET");

    CHECK_EQ_INT(parse_words("sEt foo bar", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.cmd, REDIS_CMD_SET);
    CHECK(!rq.readonly);
    CHECK(key_is(b, 0, "foo"));

    CHECK_EQ_INT(parse_words("HSET h f v f2 v2", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.keys.n, 1);
    CHECK(key_is(b, 0, "h"));

    CHECK_EQ_INT(parse_words("SDIFF a b c", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_KEY); /* multi-key, not split: routed by the first key */
    CHECK_EQ_INT(rq.keys.n, 3);
    CHECK(key_is(b, 0, "a"));

    /* empty arguments and binary bytes are fine */
    const char bin[] = "*2\r\n$3\r\nGET\r\n$3\r\n\0\r\n\r\n";
    CHECK_EQ_INT(parse_mem(bin, sizeof(bin) - 1), PARSE_OK);
    CHECK_EQ_INT(rq.keys.v[0].len, 3);
    CHECK_EQ_INT(parse_words("GET", b, sizeof(b)), PARSE_OK);
    const char empty_key[] = "*2\r\n$3\r\nGET\r\n$0\r\n\r\n";
    CHECK_EQ_INT(parse_mem(empty_key, sizeof(empty_key) - 1), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_KEY);
    CHECK_EQ_INT(rq.keys.v[0].len, 0);
}

static void test_req_split(void)
{
    char b[8192];
    CHECK_EQ_INT(parse_words("MGET a b c", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_SPLIT);
    CHECK_EQ_INT(rq.cmd, REDIS_CMD_MGET);
    CHECK_EQ_INT(rq.keys.n, 3);
    CHECK(key_is(b, 2, "c"));
    CHECK(rq.readonly);
    CHECK_EQ_INT(parse_words("MGET a", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_KEY); /* one key: forwarded as is */

    CHECK_EQ_INT(parse_words("MSET k1 v1 k2 v2", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_SPLIT);
    CHECK_EQ_INT(rq.keys.n, 2);
    CHECK(key_is(b, 0, "k1") && key_is(b, 1, "k2"));
    CHECK_EQ_INT(parse_words("MSET k1 v1 k2", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_REJECT);
    CHECK_ERR("wrong number of arguments for 'mset' command");

    const char *sum[] = {"DEL", "UNLINK", "TOUCH", "EXISTS"};
    for (int i = 0; i < 4; i++) {
        char w[64];
        snprintf(w, sizeof(w), "%s x y", sum[i]);
        CHECK_EQ_INT(parse_words(w, b, sizeof(b)), PARSE_OK);
        CHECK_EQ_INT(rq.route, ROUTE_SPLIT);
        CHECK_EQ_INT(rq.keys.n, 2);
    }
}

static void test_req_movable_keys(void)
{
    char b[8192];
    CHECK_EQ_INT(parse_words("EVAL return 2 k1 k2 a1", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_KEY);
    CHECK_EQ_INT(rq.keys.n, 2);
    CHECK(key_is(b, 0, "k1") && key_is(b, 1, "k2"));
    CHECK_EQ_INT(parse_words("EVALSHA abc 1 k a b", b, sizeof(b)), PARSE_OK);
    CHECK(key_is(b, 0, "k") && rq.keys.n == 1);
    CHECK_EQ_INT(parse_words("EVAL_RO s 1 k", b, sizeof(b)), PARSE_OK);
    CHECK(rq.readonly && key_is(b, 0, "k"));
    CHECK_EQ_INT(parse_words("FCALL f 1 k", b, sizeof(b)), PARSE_OK);
    CHECK(key_is(b, 0, "k"));
    CHECK_EQ_INT(parse_words("EVAL s 0", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_KEY); /* no key: the first server */
    CHECK_EQ_INT(rq.keys.n, 0);
    /* a key count that gives no keys: no key to check, redis refuses the request itself */
    const char *bad_numkeys[] = {"EVAL s x k",  "EVAL s -1 k", "EVAL s 2 k",
                                 "EVAL s 01 k", "EVAL s +1 k", "EVAL s 9223372036854775807 k"};
    for (int i = 0; i < 6; i++) {
        CHECK_EQ_INT(parse_words(bad_numkeys[i], b, sizeof(b)), PARSE_OK);
        CHECK(rq.route == ROUTE_KEY && rq.keys.n == 0);
    }
    CHECK_EQ_INT(parse_words("ZUNIONSTORE d 5 a", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_KEY && rq.keys.n == 1 && key_is(b, 0, "d"));
    CHECK_EQ_INT(parse_words("PFMERGE d", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_KEY && rq.keys.n == 1 && key_is(b, 0, "d")); /* writes d */

    CHECK_EQ_INT(parse_words("ZUNIONSTORE dst 2 a b WEIGHTS 1 2", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.keys.n, 3);
    CHECK(key_is(b, 0, "dst") && key_is(b, 1, "a") && key_is(b, 2, "b"));
    CHECK_EQ_INT(parse_words("ZINTERSTORE dst 1 a", b, sizeof(b)), PARSE_OK);
    CHECK(key_is(b, 0, "dst"));
    CHECK_EQ_INT(parse_words("ZUNION 2 a b WITHSCORES", b, sizeof(b)), PARSE_OK);
    CHECK(rq.keys.n == 2 && key_is(b, 0, "a") && key_is(b, 1, "b"));
    CHECK_EQ_INT(parse_words("LMPOP 2 l1 l2 LEFT", b, sizeof(b)), PARSE_OK);
    CHECK(rq.keys.n == 2 && key_is(b, 0, "l1"));
    CHECK_EQ_INT(parse_words("SINTERCARD 1 s LIMIT 3", b, sizeof(b)), PARSE_OK);
    CHECK(rq.keys.n == 1 && key_is(b, 0, "s"));
    CHECK_EQ_INT(parse_words("ZMPOP 1 z MIN", b, sizeof(b)), PARSE_OK);
    CHECK(key_is(b, 0, "z"));

    /* keys only found through key specs or SORT's own option walk */
    CHECK_EQ_INT(parse_words("SORT list BY w_* GET o_* STORE dst", b, sizeof(b)), PARSE_OK);
    CHECK(rq.keys.n == 2 && key_is(b, 0, "list") && key_is(b, 1, "dst"));
    CHECK_EQ_INT(parse_words("SORT l STORE a LIMIT 0 1 store b ALPHA", b, sizeof(b)), PARSE_OK);
    CHECK(rq.keys.n == 2 && key_is(b, 1, "b")); /* the last STORE wins, as in SORT */
    CHECK_EQ_INT(parse_words("SORT l GET store", b, sizeof(b)), PARSE_OK);
    CHECK(rq.keys.n == 1); /* a pattern named "store" is no STORE */
    CHECK_EQ_INT(parse_words("SORT_RO l BY w_* GET o_*", b, sizeof(b)), PARSE_OK);
    CHECK(rq.keys.n == 1 && key_is(b, 0, "l") && rq.readonly);
    CHECK_EQ_INT(parse_words("GEORADIUS g 15 37 200 km STORE d", b, sizeof(b)), PARSE_OK);
    CHECK(rq.keys.n == 2 && key_is(b, 0, "g") && key_is(b, 1, "d"));
    CHECK_EQ_INT(parse_words("GEORADIUS g 15 37 200 km STOREDIST e STORE d", b, sizeof(b)),
                 PARSE_OK);
    CHECK(rq.keys.n == 3 && key_is(b, 1, "d") && key_is(b, 2, "e")); /* in key spec order */
    CHECK_EQ_INT(parse_words("GEORADIUSBYMEMBER g m 200 km storedist d", b, sizeof(b)), PARSE_OK);
    CHECK(rq.keys.n == 2 && key_is(b, 1, "d"));
    CHECK_EQ_INT(parse_words("GEORADIUS g 15 37 200 km STORE", b, sizeof(b)), PARSE_OK);
    CHECK(rq.keys.n == 1); /* STORE without its key: redis answers a syntax error */

    CHECK_EQ_INT(parse_words("XREAD COUNT 2 STREAMS s1 s2 0 0", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_KEY);
    CHECK(rq.keys.n == 2 && key_is(b, 0, "s1") && key_is(b, 1, "s2"));
    CHECK_EQ_INT(parse_words("XREADGROUP GROUP g c STREAMS s >", b, sizeof(b)), PARSE_OK);
    CHECK(rq.keys.n == 1 && key_is(b, 0, "s") && !rq.readonly);
    CHECK_EQ_INT(parse_words("XREAD BLOCK 0 STREAMS s $", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_REJECT);
    CHECK_ERR("unsupported command 'xread' with BLOCK (blocking)");
    CHECK_EQ_INT(parse_words("XREADGROUP GROUP block c STREAMS s >", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_KEY && key_is(b, 0, "s")); /* a group named block */
    CHECK_EQ_INT(parse_words("XREAD STREAMS block 0", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_KEY && key_is(b, 0, "block"));
    /* unbalanced or missing STREAMS: the keys redis' key spec finds; redis refuses them */
    CHECK_EQ_INT(parse_words("XREAD STREAMS a b c", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_KEY && rq.keys.n == 1 && key_is(b, 0, "a"));
    CHECK_EQ_INT(parse_words("XREAD COUNT 1 2 3", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_KEY && rq.keys.n == 0);

    CHECK_EQ_INT(parse_words("OBJECT ENCODING k", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.cmd, REDIS_CMD_OBJECT_ENCODING);
    CHECK(key_is(b, 0, "k"));
    CHECK_EQ_INT(parse_words("xinfo STREAM s", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_KEY && key_is(b, 0, "s"));
    CHECK_EQ_INT(parse_words("XADD s * f v", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_KEY && key_is(b, 0, "s"));
    CHECK_EQ_INT(parse_words("GETEX k PERSIST", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_KEY && key_is(b, 0, "k"));
    CHECK_EQ_INT(parse_words("LOLWUT VERSION 5", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_KEY && rq.keys.n == 0);
}

static void test_req_local(void)
{
    char b[8192];
    CHECK_EQ_INT(parse_words("PING", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_LOCAL && rq.cmd == REDIS_CMD_PING && !rq.quit);
    CHECK_EQ_INT(parse_words("quit", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_LOCAL && rq.quit);
    const char *loc[] = {"ECHO x", "SELECT 0", "HELLO", "COMMAND", "COMMAND DOCS", "AUTH pw"};
    for (int i = 0; i < 6; i++) {
        CHECK_EQ_INT(parse_words(loc[i], b, sizeof(b)), PARSE_OK);
        CHECK_EQ_INT(rq.route, ROUTE_LOCAL);
    }
    CHECK_EQ_INT(parse_mem("*0\r\n", 4), PARSE_OK);
    CHECK(rq.route == ROUTE_LOCAL && rq.cmd == REDIS_CMD_NOOP && rq.len == 4);
    CHECK_EQ_INT(parse_mem("*-1\r\n*1\r\n", 9), PARSE_OK);
    CHECK(rq.route == ROUTE_LOCAL && rq.cmd == REDIS_CMD_NOOP && rq.len == 5);
}

static void test_req_reject(void)
{
    char b[8192];
    CHECK_EQ_INT(parse_words("FOOBAR x", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_REJECT);
    CHECK_EQ_INT(rq.len, strlen(b));
    CHECK_ERR("unknown command 'FOOBAR', with args beginning with: 'x' "); /* redis' words */
    /* keyless commands about the whole dataset: the core decides, err is for sharded pools */
    const char *dataset[] = {"KEYS *", "SCAN 0", "RANDOMKEY", "DBSIZE", "scan 0 MATCH k* COUNT 5"};
    const char *dataset_err[] = {"keys", "scan", "randomkey", "dbsize", "scan"};
    for (int i = 0; i < 5; i++) {
        char want[80];
        CHECK_EQ_INT(parse_words(dataset[i], b, sizeof(b)), PARSE_OK);
        CHECK(rq.route == ROUTE_DATASET && rq.keys.n == 0 && rq.readonly);
        snprintf(want, sizeof(want), "unsupported command '%s' (no key to route by)",
                 dataset_err[i]);
        CHECK_ERR(want);
    }
    CHECK_EQ_INT(parse_words("BLPOP l 0", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("unsupported command 'blpop' (blocking)");
    CHECK_EQ_INT(parse_words("SUBSCRIBE c", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("unsupported command 'subscribe' (pub/sub)");
    CHECK_EQ_INT(parse_words("MULTI", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("unsupported command 'multi' (transactions)");
    CHECK_EQ_INT(parse_words("WATCH k", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("unsupported command 'watch' (transactions)");
    CHECK_EQ_INT(parse_words("CONFIG GET x", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("unsupported command 'config' (no key to route by)");
    CHECK_EQ_INT(parse_words("SHUTDOWN", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("unsupported command 'shutdown' (admin)");
    const char *more[] = {
        "SWAPDB 0 1",   "INFO",     "FLUSHALL", "BRPOP l 0",    "BLMOVE a b LEFT LEFT 0",
        "BZPOPMIN z 0", "WAIT 1 0", "EXEC",     "CLUSTER INFO", "MIGRATE h 1 k 0 5"};
    for (int i = 0; i < 10; i++) {
        CHECK_EQ_INT(parse_words(more[i], b, sizeof(b)), PARSE_OK);
        CHECK_EQ_INT(rq.route, ROUTE_REJECT);
    }
    CHECK_EQ_INT(parse_words("GET", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("wrong number of arguments for 'get' command");
    CHECK_EQ_INT(parse_words("GET a b", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("wrong number of arguments for 'get' command");
    CHECK_EQ_INT(parse_words("OBJECT", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("wrong number of arguments for 'object' command");
    CHECK_EQ_INT(parse_words("OBJECT FOO k", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("unknown subcommand 'FOO'. Try OBJECT HELP.");
    CHECK_EQ_INT(parse_words("xInfo bar", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("unknown subcommand 'bar'. Try XINFO HELP.");
    CHECK_EQ_INT(parse_words("OBJECT HELP", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("unsupported command 'object|help' (no key to route by)");
    CHECK_EQ_INT(parse_words("OBJECT ENCODING", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("wrong number of arguments for 'object|encoding' command");

    /* an unknown name with CR/LF and quotes stays on one line */
    const char odd[] = "*1\r\n$5\r\na\r'\nb\r\n";
    CHECK_EQ_INT(parse_mem(odd, sizeof(odd) - 1), PARSE_OK);
    CHECK_ERR("unknown command 'a\r'\nb', with args beginning with: ");
    struct buf reply;
    buf_init(&reply);
    redis_error_reply(&reply, rq.err); /* CR and LF become spaces, as in redis */
    CHECK_MEM(reply.data, reply.len,
              "-ERR unknown command 'a ' b', with args beginning with: \r\n");
    buf_free(&reply);
    /* 128 bytes of the name at most, and of the arguments */
    char longreq[1024], want[600];
    memset(longreq, 0, sizeof(longreq));
    char name[201], arg[101];
    memset(name, 'n', 200);
    name[200] = '\0';
    memset(arg, 'a', 100);
    arg[100] = '\0';
    snprintf(want, sizeof(want), "%s %s %s x", name, arg, arg);
    CHECK_EQ_INT(parse_words(want, longreq, sizeof(longreq)), PARSE_OK);
    snprintf(want, sizeof(want),
             "unknown command '%.128s', with args beginning with: '%s' '%.25s' ", name, arg, arg);
    CHECK_ERR(want);

    /* after a reject, the next request parses normally */
    size_t n = resp_of(b, sizeof(b), "INFO");
    n += resp_of(b + n, sizeof(b) - n, "GET x");
    CHECK_EQ_INT(parse_mem(b, n), PARSE_OK);
    size_t first = rq.len;
    CHECK_EQ_INT(parse_mem(b + first, n - first), PARSE_OK);
    CHECK(rq.route == ROUTE_KEY && rq.len == n - first);
}

static void test_req_inline(void)
{
    CHECK_EQ_INT(parse_mem("PING\r\nGET", 9), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_REJECT);
    CHECK_EQ_INT(rq.len, 6);
    CHECK_ERR("inline commands are not supported, use the RESP protocol");
    CHECK_EQ_INT(parse_mem("PING", 4), PARSE_AGAIN);
    CHECK_EQ_INT(parse_mem("get x\n", 6), PARSE_OK);
    CHECK_EQ_INT(rq.len, 6);
    CHECK_EQ_INT(parse_mem("\r\n", 2), PARSE_OK);
    CHECK(rq.route == ROUTE_LOCAL && rq.cmd == REDIS_CMD_NOOP && rq.len == 2);
    size_t big = REDIS_MAX_INLINE + 10;
    char *p = malloc(big);
    memset(p, 'a', big);
    CHECK_EQ_INT(parse_mem(p, REDIS_MAX_INLINE - 1), PARSE_AGAIN);
    CHECK_EQ_INT(parse_mem(p, big), PARSE_ERROR);
    CHECK_ERR("Protocol error: too big inline request");
    free(p);
}

static void test_req_errors(void)
{
    struct {
        const char *in;
        const char *err;
    } cases[] = {
        {"*abc\r\n", "Protocol error: invalid multibulk length"},
        {"*1x\r\n", "Protocol error: invalid multibulk length"},
        {"*01\r\n", "Protocol error: invalid multibulk length"},
        {"*1\n", "Protocol error: invalid multibulk length"},
        {"*1048577\r\n", "Protocol error: invalid multibulk length"},
        {"*123456789012345678901234", "Protocol error: invalid multibulk length"},
        {"*3\r\n$-5\r\n", "Protocol error: invalid bulk length"},
        {"*3\r\n$-1\r\n", "Protocol error: invalid bulk length"},
        {"*1\r\n$536870913\r\n", "Protocol error: invalid bulk length"},
        {"*1\r\n$x\r\n", "Protocol error: invalid bulk length"},
        {"*1\r\n$3\r\nGETX\r\n", "Protocol error: missing CRLF after bulk argument"},
        {"*1\r\n:3\r\n", "Protocol error: expected '$', got ':'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_EQ_INT(parse_mem(cases[i].in, strlen(cases[i].in)), PARSE_ERROR);
        CHECK_ERR(cases[i].err);
    }
    /* the largest legal shapes are waited for, not refused */
    CHECK_EQ_INT(parse_mem("*1048576\r\n", 10), PARSE_AGAIN);
    CHECK_EQ_INT(parse_mem("*1\r\n$536870912\r\n", 16), PARSE_AGAIN);
    CHECK_EQ_INT(rq.len, 16 + 536870912 + 2);
}

static void test_req_key_too_long(void)
{
    size_t klen = PROTO_MAX_KEY_LEN_REDIS + 1;
    char *p = malloc(klen + 64);
    size_t n = (size_t)sprintf(p, "*2\r\n$3\r\nGET\r\n$%zu\r\n", klen);
    memset(p + n, 'k', klen);
    memcpy(p + n + klen, "\r\n", 2);
    CHECK_EQ_INT(parse_mem(p, n + klen + 2), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_REJECT);
    CHECK_EQ_INT(rq.len, n + klen + 2);
    CHECK(strncmp(rq.err, "key too long", 12) == 0);
    free(p);
}

static void test_req_incremental(void)
{
    const char *words[] = {"GET foo", "MSET a 1 b 2 c 3",  "EVAL s 2 k1 k2 x",    "KEYS *",
                           "PING",    "XREAD STREAMS s 0", "ZUNIONSTORE d 2 a b", "FOO"};
    char b[8192];
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t n = resp_of(b, sizeof(b), words[i]);
        CHECK(req_incremental_ok(b, n));
    }
    CHECK(req_incremental_ok("*0\r\n", 4));
    CHECK(req_incremental_ok("PING\r\n", 6));
    const char big[] = "*2\r\n$3\r\nGET\r\n$10\r\n0123456789\r\n";
    CHECK(req_incremental_ok(big, sizeof(big) - 1));
    /* the hint points past a known bulk */
    CHECK_EQ_INT(parse_mem(big, 20), PARSE_AGAIN);
    CHECK_EQ_INT(rq.len, sizeof(big) - 1);
}

static void test_req_pipeline(void)
{
    char b[8192];
    size_t n = 0;
    const char *words[] = {"SET a 1", "GET a", "MGET a b", "PING", "DEL a b c"};
    for (int i = 0; i < 5; i++) {
        n += resp_of(b + n, sizeof(b) - n, words[i]);
    }
    uint16_t want[] = {REDIS_CMD_SET, REDIS_CMD_GET, REDIS_CMD_MGET, REDIS_CMD_PING, REDIS_CMD_DEL};
    size_t pos = 0;
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(parse_mem(b + pos, n - pos), PARSE_OK);
        CHECK_EQ_INT(rq.cmd, want[i]);
        pos += rq.len;
    }
    CHECK_EQ_INT(pos, n);
    CHECK_EQ_INT(parse_mem(b + pos, 0), PARSE_AGAIN);
}

/* A core that re-parses only when the hint is reached: total work stays near-linear
 * for a request with many small arguments arriving in small reads. */
static void test_req_hint_cost(void)
{
    uint32_t nkeys = 100000;
    size_t cap = (size_t)nkeys * 20 + 64, n;
    char *p = malloc(cap);
    n = (size_t)sprintf(p, "*%u\r\n$4\r\nMGET\r\n", nkeys + 1);
    for (uint32_t i = 0; i < nkeys; i++) {
        n += (size_t)sprintf(p + n, "$9\r\nkey%06u\r\n", i);
    }
    size_t have = 0, need = 0, work = 0;
    int rc = PARSE_AGAIN;
    while (rc == PARSE_AGAIN && have < n) {
        have = have + 4096 < n ? have + 4096 : n;
        if (have < need) {
            continue;
        }
        rc = parse_mem(p, have);
        work += have;
        need = rq.len;
    }
    CHECK_EQ_INT(rc, PARSE_OK);
    CHECK_EQ_INT(rq.keys.n, nkeys);
    CHECK(work < 40 * n);
    free(p);
}

/* ---- the command table ---------------------------------------------------------- */

static void test_table(void)
{
    for (uint16_t id = REDIS_CMD_NOOP + 2; id < REDIS_CMD_COUNT; id++) {
        const struct redis_cmd *a = redis_cmd_get(id - 1), *c = redis_cmd_get(id);
        size_t m = a->name_len < c->name_len ? a->name_len : c->name_len;
        int d = memcmp(a->name, c->name, m);
        CHECK(d < 0 || (d == 0 && a->name_len < c->name_len));
    }
    for (uint16_t id = REDIS_CMD_NOOP + 1; id < REDIS_CMD_COUNT; id++) {
        const struct redis_cmd *c = redis_cmd_get(id);
        char up[REDIS_CMD_NAME_MAX + 1];
        CHECK(c->name_len > 0 && c->name_len <= REDIS_CMD_NAME_MAX);
        for (size_t i = 0; i < c->name_len; i++) {
            up[i] = (char)(c->name[i] >= 'a' && c->name[i] <= 'z' ? c->name[i] - 32 : c->name[i]);
        }
        if (redis_cmd_lookup((const uint8_t *)up, c->name_len) != id) {
            CHECK(!"lookup of every name");
        }
    }
    CHECK_EQ_INT(redis_cmd_lookup((const uint8_t *)"ge", 2), REDIS_CMD_UNKNOWN);
    CHECK_EQ_INT(redis_cmd_lookup((const uint8_t *)"gett", 4), REDIS_CMD_UNKNOWN);
    CHECK_EQ_INT(redis_cmd_lookup((const uint8_t *)"", 0), REDIS_CMD_UNKNOWN);
}

/* Every command twemproxy accepts must be routable through us. */
static void test_twemproxy_commands(void)
{
    FILE *f = unit_vectors_open("redis-commands.txt");
    CHECK(f != NULL);
    if (f == NULL) {
        return;
    }
    char line[256], words[1024], b[8192];
    int seen = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n ")] = '\0';
        if (line[0] == '#' || line[0] == '\0') {
            continue;
        }
        uint16_t id = redis_cmd_lookup((const uint8_t *)line, strlen(line));
        const struct redis_cmd *c = redis_cmd_get(id);
        if (id == REDIS_CMD_UNKNOWN || !redis_cmd_supported(c)) {
            fprintf(stderr, "twemproxy command %s is not supported\n", line);
            unit_fail++;
            continue;
        }
        /* enough arguments for the arity, numkeys = 1 where there is one */
        int argc = c->arity < 0 ? -c->arity : c->arity;
        int numkeys_at = -1;
        for (uint32_t s = 0; s < c->nspecs; s++) {
            const struct redis_keyspec *ks = &redis_keyspec_table[c->spec0 + s];
            if (ks->find == REDIS_FIND_KEYNUM && ks->keyword == NULL) {
                numkeys_at = ks->begin + ks->keynumidx;
            }
        }
        if (numkeys_at > 0 && argc < numkeys_at + 2) {
            argc = numkeys_at + 2;
        }
        size_t w = (size_t)snprintf(words, sizeof(words), "%s", line);
        for (int i = 1; i < argc; i++) {
            w += (size_t)snprintf(words + w, sizeof(words) - w, i == numkeys_at ? " 1" : " a%d", i);
        }
        if (parse_words(words, b, sizeof(b)) != PARSE_OK || rq.route == ROUTE_REJECT ||
            (rq.route == ROUTE_KEY && redis_cmd_has_keys(c) && rq.keys.n == 0)) {
            fprintf(stderr, "'%s' is not routable: %s\n", words, rq.err);
            unit_fail++;
        } else {
            unit_pass++;
        }
        seen++;
    }
    fclose(f);
    CHECK(seen >= 130);
}

/* "k1 k2" against keys (space-separated, as in redis-getkeys.tsv). */
static bool keys_are(const char *req, const struct spans *keys, const char *want)
{
    char tmp[1024];
    uint32_t i = 0;
    snprintf(tmp, sizeof(tmp), "%s", want);
    for (char *k = strtok(tmp, " "); k != NULL; k = strtok(NULL, " "), i++) {
        if (i >= keys->n || keys->v[i].len != strlen(k) ||
            memcmp(req + keys->v[i].off, k, keys->v[i].len) != 0) {
            return false;
        }
    }
    return i == keys->n;
}

/* The parser finds every key redis' COMMAND GETKEYS finds, in the same order
 * (tests/vectors/redis-getkeys.tsv, from a live redis-server). Requests the proxy
 * refuses (blocking) are checked against the table itself. */
static void test_getkeys_vectors(void)
{
    FILE *f = unit_vectors_open("redis-getkeys.tsv");
    CHECK(f != NULL);
    if (f == NULL) {
        return;
    }
    char line[1024], b[8192];
    int seen = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *tab = strchr(line, '\t');
        if (line[0] == '#' || tab == NULL) {
            continue;
        }
        *tab = '\0';
        tab[1 + strcspn(tab + 1, "\r\n")] = '\0';
        bool ok = parse_words(line, b, sizeof(b)) == PARSE_OK;
        const struct spans *keys = &rq.keys;
        struct spans table;
        spans_init(&table);
        if (ok && rq.route == ROUTE_REJECT) {
            /* refused on purpose (MIGRATE, WATCH): nothing to compare; blocking ones
             * (XREAD BLOCK): the table must still know their keys */
            const struct redis_cmd *c = redis_cmd_get(
                redis_cmd_lookup((const uint8_t *)b + rq.args.v[0].off, rq.args.v[0].len));
            ok = c->name_len > 0 &&
                 redis_cmd_keys(c, (const uint8_t *)b, rq.args.v, rq.args.n, &table) == 0;
            keys = &table;
            if (ok && (c->flags & REDIS_F(BLOCKING)) == 0) {
                unit_pass++;
                spans_free(&table);
                continue;
            }
        }
        if (ok && keys_are(b, keys, tab + 1)) {
            unit_pass++;
        } else {
            fprintf(stderr, "'%s': keys differ from redis' (%s), route %d %s\n", line, tab + 1,
                    rq.route, rq.err);
            unit_fail++;
        }
        spans_free(&table);
        seen++;
    }
    fclose(f);
    CHECK(seen >= 80);
}

/* ---- responses -------------------------------------------------------------------- */

static int rsp(const char *p)
{
    return redis_rsp_parse((const uint8_t *)p, strlen(p), 0, &rs);
}

static void test_rsp_shapes(void)
{
    CHECK_EQ_INT(rsp("+OK\r\n"), PARSE_OK);
    CHECK(rs.len == 5 && rs.type == '+' && !rs.is_error);
    CHECK_EQ_INT(rsp("-ERR boom\r\n+OK\r\n"), PARSE_OK);
    CHECK(rs.len == 11 && rs.is_error && rs.type == '-');
    CHECK_EQ_INT(rsp(":42\r\n"), PARSE_OK);
    CHECK(rs.type == ':' && rs.integer == 42);
    CHECK_EQ_INT(rsp(":-5\r\n"), PARSE_OK);
    CHECK_EQ_INT(rs.integer, -5);
    CHECK_EQ_INT(rsp("$3\r\nfoo\r\n"), PARSE_OK);
    CHECK(rs.len == 9 && rs.type == '$');
    CHECK_EQ_INT(rsp("$0\r\n\r\n"), PARSE_OK);
    CHECK_EQ_INT(rsp("$-1\r\n"), PARSE_OK);
    CHECK(rs.len == 5 && rs.integer == -1);
    CHECK_EQ_INT(rsp("*-1\r\n"), PARSE_OK);
    CHECK(rs.len == 5 && rs.type == '*' && rs.elems.n == 0);
    CHECK_EQ_INT(rsp("*0\r\n"), PARSE_OK);
    CHECK(rs.len == 4 && rs.integer == 0);

    const char *arr = "*3\r\n$1\r\na\r\n$-1\r\n:7\r\n";
    CHECK_EQ_INT(rsp(arr), PARSE_OK);
    CHECK(rs.len == strlen(arr) && rs.integer == 3 && rs.elems.n == 3);
    CHECK_MEM(arr + rs.elems.v[0].off, rs.elems.v[0].len, "$1\r\na\r\n");
    CHECK_MEM(arr + rs.elems.v[1].off, rs.elems.v[1].len, "$-1\r\n");
    CHECK_MEM(arr + rs.elems.v[2].off, rs.elems.v[2].len, ":7\r\n");

    const char *nest = "*3\r\n*2\r\n:1\r\n*1\r\n+x\r\n*0\r\n$2\r\nhi\r\n";
    CHECK_EQ_INT(rsp(nest), PARSE_OK);
    CHECK(rs.len == strlen(nest) && rs.elems.n == 3);
    CHECK_MEM(nest + rs.elems.v[0].off, rs.elems.v[0].len, "*2\r\n:1\r\n*1\r\n+x\r\n");
    CHECK_MEM(nest + rs.elems.v[1].off, rs.elems.v[1].len, "*0\r\n");
    CHECK_MEM(nest + rs.elems.v[2].off, rs.elems.v[2].len, "$2\r\nhi\r\n");
    CHECK_EQ_INT(rsp("*2\r\n-ERR a\r\n*-1\r\n"), PARSE_OK);
    CHECK(!rs.is_error && rs.elems.n == 2);

    CHECK(rsp_incremental_ok(arr, strlen(arr)));
    CHECK(rsp_incremental_ok(nest, strlen(nest)));
    CHECK(rsp_incremental_ok("-ERR x\r\n", 8));
    CHECK_EQ_INT(rsp("$100\r\nab"), PARSE_AGAIN);
    CHECK_EQ_INT(rs.len, 6 + 100 + 2);
}

static void test_rsp_errors(void)
{
    const char *bad[] = {"HTTP/1.1 400\r\n",
                         ":abc\r\n",
                         ":\r\n",
                         "$3\r\nfooX\r\n",
                         "$-2\r\n",
                         "*-2\r\n",
                         "+OK\rX",
                         "+O\nK\r\n",
                         "*1\r\n?\r\n",
                         "_\r\n",
                         ":12345678901234567890123\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (rsp(bad[i]) != PARSE_ERROR) {
            fprintf(stderr, "response %zu accepted\n", i);
            unit_fail++;
        } else {
            unit_pass++;
        }
    }
}

static void test_rsp_deep(void)
{
    size_t depth = 1000000, n = depth * 4 + 4;
    char *p = malloc(n + 1);
    for (size_t i = 0; i < depth; i++) {
        memcpy(p + i * 4, "*1\r\n", 4);
    }
    memcpy(p + depth * 4, ":1\r\n", 5);
    CHECK_EQ_INT(redis_rsp_parse((const uint8_t *)p, n, 0, &rs), PARSE_OK);
    CHECK(rs.len == n && rs.elems.n == 1);
    CHECK_EQ_INT(redis_rsp_parse((const uint8_t *)p, n - 1, 0, &rs), PARSE_AGAIN);
    free(p);
}

/* ---- fragments and merges ----------------------------------------------------------- */

static void test_frag_build(void)
{
    char b[8192];
    struct buf out;
    buf_init(&out);
    parse_words("mget a bb c", b, sizeof(b));
    uint32_t idx[] = {0, 2};
    CHECK_EQ_INT(redis_frag_build(&out, (uint8_t *)b, &rq, idx, 2), 0);
    CHECK_MEM(out.data, out.len, "*3\r\n$4\r\nmget\r\n$1\r\na\r\n$1\r\nc\r\n");

    buf_reset(&out);
    parse_words("MSET k1 v1 k2 v2 k3 v3", b, sizeof(b));
    uint32_t idx2[] = {2, 0};
    CHECK_EQ_INT(redis_frag_build(&out, (uint8_t *)b, &rq, idx2, 2), 0);
    CHECK_MEM(out.data, out.len,
              "*5\r\n$4\r\nMSET\r\n$2\r\nk3\r\n$2\r\nv3\r\n$2\r\nk1\r\n$2\r\nv1\r\n");

    buf_reset(&out);
    parse_words("DEL x y", b, sizeof(b));
    uint32_t one = 1, bad = 5;
    CHECK_EQ_INT(redis_frag_build(&out, (uint8_t *)b, &rq, &one, 1), 0);
    CHECK_MEM(out.data, out.len, "*2\r\n$3\r\nDEL\r\n$1\r\ny\r\n");
    size_t keep = out.len;
    CHECK_EQ_INT(redis_frag_build(&out, (uint8_t *)b, &rq, &bad, 1), -1);
    CHECK_EQ_INT(out.len, keep);
    parse_words("GET x", b, sizeof(b));
    uint32_t zero = 0;
    CHECK_EQ_INT(redis_frag_build(&out, (uint8_t *)b, &rq, &zero, 1), -1);
    buf_free(&out);
}

struct frag_fixture {
    struct rsp_info info[4];
    struct frag_rsp rsps[4];
};

static void fixture_set(struct frag_fixture *fx, uint32_t n, const char *const *replies)
{
    for (uint32_t i = 0; i < n; i++) {
        rsp_info_init(&fx->info[i]);
        fx->rsps[i].p = (const uint8_t *)replies[i];
        fx->rsps[i].len = strlen(replies[i]);
        fx->rsps[i].info = &fx->info[i];
        redis_rsp_parse(fx->rsps[i].p, fx->rsps[i].len, 0, &fx->info[i]);
    }
}

static void fixture_free(struct frag_fixture *fx, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        rsp_info_free(&fx->info[i]);
    }
}

static void merge_check(const char *words, const struct frag_map *map, uint32_t n,
                        const char *const *replies, const char *want)
{
    char b[8192];
    struct frag_fixture fx;
    struct buf out;
    buf_init(&out);
    parse_words(words, b, sizeof(b));
    fixture_set(&fx, n, replies);
    CHECK_EQ_INT(redis_merge(&out, (uint8_t *)b, &rq, map, fx.rsps, n), 0);
    CHECK_MEM(out.data, out.len, want);
    fixture_free(&fx, n);
    buf_free(&out);
}

static void test_merge(void)
{
    /* MGET a b c: a and c on fragment 0, b on fragment 1 */
    struct frag_map m3[] = {{0, 0}, {1, 0}, {0, 1}};
    const char *mget_ok[] = {"*2\r\n$2\r\nva\r\n$-1\r\n", "*1\r\n$2\r\nvb\r\n"};
    merge_check("MGET a b c", m3, 2, mget_ok, "*3\r\n$2\r\nva\r\n$2\r\nvb\r\n$-1\r\n");
    const char *mget_err[] = {"*2\r\n$2\r\nva\r\n$-1\r\n", "-LOADING busy\r\n"};
    merge_check("MGET a b c", m3, 2, mget_err, "-LOADING busy\r\n");
    const char *mget_int[] = {"*2\r\n$2\r\nva\r\n$-1\r\n", ":1\r\n"};
    merge_check("MGET a b c", m3, 2, mget_int, "-ERR bad reply from server\r\n");
    const char *mget_short[] = {"*1\r\n$2\r\nva\r\n", "*1\r\n$2\r\nvb\r\n"};
    merge_check("MGET a b c", m3, 2, mget_short, "-ERR bad reply from server\r\n");
    struct frag_map mbad[] = {{0, 0}, {7, 0}, {0, 1}};
    merge_check("MGET a b c", mbad, 2, mget_ok, "-ERR bad reply from server\r\n");

    struct frag_map m2[] = {{0, 0}, {1, 0}};
    const char *sum[] = {":1\r\n", ":2\r\n"};
    merge_check("DEL a b", m2, 2, sum, ":3\r\n");
    merge_check("EXISTS a b", m2, 2, sum, ":3\r\n");
    const char *sum_bad[] = {":1\r\n", "+OK\r\n"};
    merge_check("UNLINK a b", m2, 2, sum_bad, "-ERR bad reply from server\r\n");
    const char *ok[] = {"+OK\r\n", "+OK\r\n"};
    merge_check("MSET a 1 b 2", m2, 2, ok, "+OK\r\n");
    const char *ok_err[] = {"+OK\r\n", "-OOM no memory\r\n"};
    merge_check("MSET a 1 b 2", m2, 2, ok_err, "-OOM no memory\r\n");

    /* ROUTE_ALL is not a redis route */
    char b[256];
    struct buf out;
    struct frag_fixture fx;
    buf_init(&out);
    parse_words("DEL a b", b, sizeof(b));
    fixture_set(&fx, 2, sum);
    CHECK_EQ_INT(redis_merge(&out, (uint8_t *)b, &rq, NULL, fx.rsps, 2), -1);
    CHECK_EQ_INT(out.len, 0);
    fixture_free(&fx, 2);
    buf_free(&out);
}

/* ---- local answers, AUTH ------------------------------------------------------------ */

static struct local_ctx lctx(const char *auth, int db)
{
    struct local_ctx lc;
    memset(&lc, 0, sizeof(lc));
    lc.auth = auth;
    lc.auth_len = auth ? strlen(auth) : 0;
    lc.db = db;
    lc.version = "0.5.0";
    lc.resp = 2;
    return lc;
}

/* Parse words, call local, compare the reply; returns local's return value. */
static int local_check(const char *words, struct local_ctx *lc, const char *want)
{
    char b[8192];
    struct buf out;
    buf_init(&out);
    parse_words(words, b, sizeof(b));
    int rc = redis_local(&out, (uint8_t *)b, &rq, lc);
    if (want != NULL) {
        CHECK_MEM(out.len ? (const char *)out.data : "", out.len, want);
    }
    buf_free(&out);
    return rc;
}

static void test_local(void)
{
    struct local_ctx lc = lctx(NULL, 0);
    CHECK_EQ_INT(local_check("PING", &lc, "+PONG\r\n"), 1);
    CHECK_EQ_INT(local_check("ping hello", &lc, "$5\r\nhello\r\n"), 1);
    local_check("PING a b", &lc, "-ERR wrong number of arguments for 'ping' command\r\n");
    CHECK_EQ_INT(local_check("ECHO hi", &lc, "$2\r\nhi\r\n"), 1);
    CHECK_EQ_INT(local_check("QUIT", &lc, "+OK\r\n"), 1);
    CHECK(rq.quit);
    local_check("SELECT 0", &lc, "+OK\r\n");
    local_check("SELECT 1", &lc, "-ERR SELECT is not allowed through the proxy (pool db is 0)\r\n");
    local_check("SELECT x", &lc, "-ERR value is not an integer or out of range\r\n");
    struct local_ctx lc3 = lctx(NULL, 3);
    local_check("SELECT 3", &lc3, "+OK\r\n");
    CHECK_EQ_INT(local_check("GET k", &lc, ""), 0);
    CHECK_EQ_INT(local_check("FOO", &lc, ""), 0);

    const char *hello =
        "*14\r\n$6\r\nserver\r\n$10\r\nnutcracker\r\n$7\r\nversion\r\n$5\r\n0.5.0\r\n"
        "$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:0\r\n$4\r\nmode\r\n$5\r\nproxy\r\n"
        "$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";
    local_check("HELLO", &lc, hello);
    local_check("HELLO 2", &lc, hello);
    local_check("HELLO 2 SETNAME me", &lc, hello);
    local_check("HELLO 3", &lc, "-NOPROTO unsupported protocol version\r\n");
    local_check("HELLO 1", &lc, "-NOPROTO unsupported protocol version\r\n");
    local_check("HELLO x", &lc, "-ERR Protocol version is not an integer or out of range\r\n");
    local_check("HELLO 2 FOO", &lc, "-ERR Syntax error in HELLO option 'FOO'\r\n");
    local_check("HELLO 2 AUTH u", &lc, "-ERR Syntax error in HELLO option 'AUTH'\r\n");

    /* empty request: answered, with nothing */
    struct buf out;
    buf_init(&out);
    parse_mem("*0\r\n", 4);
    CHECK_EQ_INT(redis_local(&out, (const uint8_t *)"*0\r\n", &rq, &lc), 1);
    CHECK_EQ_INT(out.len, 0);
    buf_free(&out);
}

static void test_local_command(void)
{
    struct local_ctx lc = lctx(NULL, 0);
    local_check("COMMAND DOCS", &lc, "*0\r\n");
    local_check("COMMAND INFO get nosuch info", &lc,
                "*3\r\n*6\r\n$3\r\nget\r\n:2\r\n*2\r\n+fast\r\n+readonly\r\n:1\r\n:1\r\n:1\r\n"
                "$-1\r\n$-1\r\n");
    local_check("COMMAND INFO mset", &lc,
                "*1\r\n*6\r\n$4\r\nmset\r\n:-3\r\n*2\r\n+denyoom\r\n+write\r\n:1\r\n:-1\r\n:2\r\n");
    local_check("COMMAND GETKEYS EVAL s 2 a b x", &lc, "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    local_check("COMMAND GETKEYS MSET a 1 b 2", &lc, "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    local_check("COMMAND GETKEYS PING x", &lc, "-ERR The command has no key arguments\r\n");
    local_check("COMMAND GETKEYS PING", &lc,
                "-ERR wrong number of arguments for 'command|getkeys' command\r\n");
    local_check("COMMAND GETKEYS KEYS *", &lc, "-ERR The command has no key arguments\r\n");
    local_check("COMMAND GETKEYS INFO x", &lc, "-ERR Invalid command specified\r\n");
    local_check("COMMAND GETKEYS EVAL s 0", &lc, "*0\r\n"); /* keys are optional */
    local_check("COMMAND GETKEYS ZUNION 3 a", &lc,
                "-ERR Invalid arguments specified for command\r\n");
    local_check("COMMAND GETKEYS XREAD BLOCK 0 STREAMS s $", &lc, "*1\r\n$1\r\ns\r\n");
    local_check("COMMAND GETKEYS SORT k STORE d", &lc, "*2\r\n$1\r\nk\r\n$1\r\nd\r\n");
    local_check("COMMAND GETKEYS GET a b", &lc,
                "-ERR Invalid number of arguments specified for command\r\n");
    local_check("COMMAND FOO", &lc,
                "-ERR unknown subcommand or wrong number of arguments for 'FOO'. Try COMMAND "
                "HELP.\r\n");

    /* COMMAND, COMMAND COUNT and COMMAND LIST agree, and COMMAND parses as RESP */
    char b[256];
    struct buf out;
    buf_init(&out);
    parse_words("COMMAND COUNT", b, sizeof(b));
    redis_local(&out, (uint8_t *)b, &rq, &lc);
    CHECK_EQ_INT(redis_rsp_parse(out.data, out.len, 0, &rs), PARSE_OK);
    int64_t count = rs.integer;
    CHECK(count > 150 && count < REDIS_CMD_COUNT);
    const char *forms[] = {"COMMAND", "COMMAND LIST", "COMMAND INFO"};
    for (int i = 0; i < 3; i++) {
        buf_reset(&out);
        parse_words(forms[i], b, sizeof(b));
        CHECK_EQ_INT(redis_local(&out, (uint8_t *)b, &rq, &lc), 1);
        CHECK_EQ_INT(redis_rsp_parse(out.data, out.len, 0, &rs), PARSE_OK);
        CHECK(rs.len == out.len && rs.type == '*' && rs.elems.n == count);
    }
    buf_reset(&out);
    parse_words("COMMAND HELP", b, sizeof(b));
    redis_local(&out, (uint8_t *)b, &rq, &lc);
    CHECK_EQ_INT(redis_rsp_parse(out.data, out.len, 0, &rs), PARSE_OK);
    buf_free(&out);
}

static void test_auth(void)
{
    struct local_ctx lc = lctx("secret", 0);
    CHECK_EQ_INT(local_check("GET k", &lc, "-NOAUTH Authentication required.\r\n"), 1);
    CHECK_EQ_INT(local_check("PING", &lc, "-NOAUTH Authentication required.\r\n"), 1);
    CHECK_EQ_INT(local_check("COMMAND", &lc, "-NOAUTH Authentication required.\r\n"), 1);
    CHECK_EQ_INT(local_check("INFO", &lc, ""), 0); /* rejected before NOAUTH */
    CHECK_EQ_INT(local_check("KEYS *", &lc, "-NOAUTH Authentication required.\r\n"), 1);
    local_check("HELLO 2", &lc,
                "-NOAUTH HELLO must be called with the client already authenticated, otherwise "
                "the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the "
                "client and select the RESP protocol version at the same time\r\n");
    CHECK_EQ_INT(local_check("AUTH wrong", &lc, "-ERR invalid password\r\n"), 1);
    CHECK(!lc.authed);
    CHECK_EQ_INT(local_check("AUTH secretx", &lc, "-ERR invalid password\r\n"), 1);
    CHECK_EQ_INT(local_check("AUTH bob secret", &lc, "-ERR invalid password\r\n"), 1);
    CHECK(!lc.authed);
    local_check("AUTH a b c", &lc, "-ERR syntax error\r\n");
    CHECK_EQ_INT(local_check("AUTH secret", &lc, "+OK\r\n"), 1);
    CHECK(lc.authed);
    CHECK_EQ_INT(local_check("GET k", &lc, ""), 0);
    CHECK_EQ_INT(local_check("PING", &lc, "+PONG\r\n"), 1);
    local_check("AUTH nope", &lc, "-ERR invalid password\r\n");
    CHECK(!lc.authed);
    CHECK_EQ_INT(local_check("AUTH default secret", &lc, "+OK\r\n"), 1);
    CHECK(lc.authed);

    struct local_ctx lc2 = lctx("secret", 0);
    local_check("HELLO 2 AUTH default nope", &lc2, "-ERR invalid password\r\n");
    CHECK(!lc2.authed);
    CHECK_EQ_INT(local_check("HELLO 2 AUTH default secret SETNAME x", &lc2, NULL), 1);
    CHECK(lc2.authed);
    struct local_ctx lc3 = lctx("secret", 0);
    CHECK_EQ_INT(local_check("QUIT", &lc3, "+OK\r\n"), 1);

    struct local_ctx none = lctx(NULL, 0);
    local_check("AUTH x", &none, "-ERR Client sent AUTH, but no password is set\r\n");
    CHECK(!none.authed);
}

static void test_error_reply_conn_init(void)
{
    struct buf out;
    buf_init(&out);
    redis_error_reply(&out, "boom");
    CHECK_MEM(out.data, out.len, "-ERR boom\r\n");
    buf_reset(&out);
    redis_error_reply(&out, "NOAUTH Authentication required.");
    CHECK_MEM(out.data, out.len, "-NOAUTH Authentication required.\r\n");
    buf_reset(&out);
    redis_error_reply(&out, "SELECT is not allowed");
    CHECK_MEM(out.data, out.len, "-ERR SELECT is not allowed\r\n");
    buf_reset(&out);
    redis_error_reply(&out, "a\r\nb");
    CHECK_MEM(out.data, out.len, "-ERR a  b\r\n");

    buf_reset(&out);
    CHECK_EQ_INT(redis_conn_init(&out, "pw", 2, 0, 2), 1);
    CHECK_MEM(out.data, out.len, "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n");
    buf_reset(&out);
    CHECK_EQ_INT(redis_conn_init(&out, NULL, 0, 3, 2), 1);
    CHECK_MEM(out.data, out.len, "*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n");
    buf_reset(&out);
    CHECK_EQ_INT(redis_conn_init(&out, "pw", 2, 15, 2), 2);
    CHECK_MEM(out.data, out.len,
              "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*2\r\n$6\r\nSELECT\r\n$2\r\n15\r\n");
    buf_reset(&out);
    CHECK_EQ_INT(redis_conn_init(&out, NULL, 0, 0, 2), 0);
    CHECK_EQ_INT(out.len, 0);
    CHECK(proto_redis.req_parse == redis_req_parse && proto_redis.local == redis_local);
    buf_free(&out);
}

int main(void)
{
    req_info_init(&rq);
    rsp_info_init(&rs);
    test_req_basic();
    test_req_split();
    test_req_movable_keys();
    test_req_local();
    test_req_reject();
    test_req_inline();
    test_req_errors();
    test_req_key_too_long();
    test_req_incremental();
    test_req_pipeline();
    test_req_hint_cost();
    test_table();
    test_twemproxy_commands();
    test_getkeys_vectors();
    test_rsp_shapes();
    test_rsp_errors();
    test_rsp_deep();
    test_frag_build();
    test_merge();
    test_local();
    test_local_command();
    test_auth();
    test_error_reply_conn_init();
    req_info_free(&rq);
    rsp_info_free(&rs);
    UNIT_DONE("test_redis");
}
