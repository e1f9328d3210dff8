/*
 * test_redis: the redis protocol module, byte for byte: request framing and
 * classification, responses, fragments, merges, local answers and AUTH.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/redis.h"
#include "proto/redis_cmd.h"
#include "proto/redis_wire.h"
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
    /* redis finds that only when it runs MSET: a transaction queues it by its first key */
    CHECK(rq.late_err);
    CHECK_EQ_INT(rq.keys.n, 1);
    CHECK(key_is(b, 0, "k1"));
    CHECK_EQ_INT(parse_words("MSET k1", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_REJECT);
    CHECK(!rq.late_err); /* under redis' arity: refused when queued, as redis does */
    CHECK_EQ_INT(parse_words("GET a b", b, sizeof(b)), PARSE_OK);
    CHECK(!rq.late_err);

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
    /* the command writes the last STORE or STOREDIST key: the one routed by (redis'
     * key specs, and COMMAND GETKEYS, name the first of each) */
    CHECK_EQ_INT(parse_words("GEORADIUS g 15 37 200 km STOREDIST e STORE d", b, sizeof(b)),
                 PARSE_OK);
    CHECK(rq.keys.n == 2 && key_is(b, 0, "g") && key_is(b, 1, "d"));
    CHECK_EQ_INT(parse_words("GEORADIUS g 15 37 200 km STORE a COUNT 3 STORE b", b, sizeof(b)),
                 PARSE_OK);
    CHECK(rq.keys.n == 2 && key_is(b, 1, "b"));
    CHECK_EQ_INT(parse_words("GEORADIUSBYMEMBER g m 200 km STORE store STOREDIST x", b, sizeof(b)),
                 PARSE_OK);
    CHECK(rq.keys.n == 2 && key_is(b, 1, "x"));
    CHECK_EQ_INT(parse_words("GEORADIUS g 15 37 200 km STORE STORE", b, sizeof(b)), PARSE_OK);
    CHECK(rq.keys.n == 2 && key_is(b, 1, "STORE")); /* a key named STORE */
    CHECK_EQ_INT(parse_words("GEORADIUSBYMEMBER g m 200 km storedist d", b, sizeof(b)), PARSE_OK);
    CHECK(rq.keys.n == 2 && key_is(b, 1, "d"));
    CHECK_EQ_INT(parse_words("GEORADIUS g 15 37 200 km STORE", b, sizeof(b)), PARSE_OK);
    CHECK(rq.keys.n == 1); /* STORE without its key: redis answers a syntax error */

    CHECK_EQ_INT(parse_words("XREAD COUNT 2 STREAMS s1 s2 0 0", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_KEY);
    CHECK(rq.keys.n == 2 && key_is(b, 0, "s1") && key_is(b, 1, "s2"));
    CHECK_EQ_INT(parse_words("XREADGROUP GROUP g c STREAMS s >", b, sizeof(b)), PARSE_OK);
    CHECK(rq.keys.n == 1 && key_is(b, 0, "s") && !rq.readonly);
    CHECK(!rq.blocking); /* XREADGROUP without BLOCK */
    CHECK_EQ_INT(parse_words("XREAD BLOCK 0 STREAMS s $", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_KEY && rq.blocking && rq.block_ms == REDIS_BLOCK_FOREVER);
    CHECK(rq.keys.n == 1 && key_is(b, 0, "s"));
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
    CHECK(!rq.local_only); /* a server answers PING and ECHO alike: queued in MULTI */
    CHECK_EQ_INT(parse_words("quit", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_LOCAL && rq.quit);
    const char *loc[] = {"ECHO x", "SELECT 0", "HELLO", "COMMAND", "COMMAND DOCS", "AUTH pw"};
    for (int i = 0; i < 6; i++) {
        CHECK_EQ_INT(parse_words(loc[i], b, sizeof(b)), PARSE_OK);
        CHECK_EQ_INT(rq.route, ROUTE_LOCAL);
        CHECK_EQ_INT(rq.local_only, i > 0); /* (ECHO is the first) */
    }
    CHECK_EQ_INT(parse_mem("*0\r\n", 4), PARSE_OK);
    CHECK(rq.route == ROUTE_LOCAL && rq.cmd == REDIS_CMD_NOOP && rq.len == 4);
    CHECK_EQ_INT(parse_mem("*-1\r\n*1\r\n", 9), PARSE_OK);
    CHECK(rq.route == ROUTE_LOCAL && rq.cmd == REDIS_CMD_NOOP && rq.len == 5);
}

/* Blocking commands: keyed, and how long each may wait, read as redis reads
 * its timeout (seconds as a decimal; XREAD BLOCK whole milliseconds). */
static void test_req_blocking(void)
{
    char b[8192];
    const struct {
        const char *words;
        int64_t ms;
        uint32_t nkeys;
    } cases[] = {
        {"BLPOP a b 1.5", 1500, 2},
        {"BRPOP l 0.0001", 1, 1},
        {"BLPOP l 1e3", 1000000, 1},
        {"BRPOPLPUSH a b 3", 3000, 2},
        {"BLMOVE a b LEFT RIGHT 0", REDIS_BLOCK_FOREVER, 2},
        {"BLMPOP 2 2 a b LEFT", 2000, 2},
        {"BZMPOP 0.25 1 z MIN", 250, 1},
        {"BZPOPMIN z 0", REDIS_BLOCK_FOREVER, 1},
        {"BZPOPMAX z1 z2 7", 7000, 2},
        {"XREAD COUNT 1 BLOCK 250 STREAMS s t 0 0", 250, 2},
        {"XREADGROUP GROUP g c BLOCK 0 STREAMS s >", REDIS_BLOCK_FOREVER, 1},
        /* timeouts redis refuses: it answers at once */
        {"BLPOP l -1", 0, 1},
        {"BLPOP l soon", 0, 1},
        {"BLPOP l inf", 0, 1},
        {"BLPOP l 1x", 0, 1},
        {"XREAD BLOCK 1.5 STREAMS s 0", 0, 1},
        {"XREAD BLOCK -5 STREAMS s 0", 0, 1},
        {"BLPOP l 99999999999999999999", REDIS_BLOCK_FOREVER, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_EQ_INT(parse_words(cases[i].words, b, sizeof(b)), PARSE_OK);
        CHECK(rq.route == ROUTE_KEY && rq.blocking);
        CHECK_EQ_INT(rq.block_ms, cases[i].ms);
        CHECK_EQ_INT(rq.keys.n, cases[i].nkeys);
    }
    const char *still[] = {"XREAD STREAMS s 0", "XREADGROUP GROUP block c STREAMS s >", "LPOP l",
                           "GET block"};
    for (size_t i = 0; i < sizeof(still) / sizeof(still[0]); i++) {
        CHECK_EQ_INT(parse_words(still[i], b, sizeof(b)), PARSE_OK);
        CHECK(rq.route == ROUTE_KEY && !rq.blocking);
    }
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
        /* SCAN's cursor is one node's: not a read a replica may take */
        CHECK(rq.route == ROUTE_DATASET && rq.keys.n == 0 && rq.readonly == (i != 1 && i != 4));
        snprintf(want, sizeof(want), "unsupported command '%s' (no key to route by)",
                 dataset_err[i]);
        CHECK_ERR(want);
    }
    CHECK_EQ_INT(parse_words("BLPOP l 0", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_KEY && rq.blocking && rq.block_ms == REDIS_BLOCK_FOREVER);
    CHECK_EQ_INT(parse_words("SSUBSCRIBE c", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("unsupported command 'ssubscribe' (pub/sub)");
    CHECK_EQ_INT(parse_words("PUBSUB NUMSUB a b", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_DATASET && rq.keys.n == 0); /* where the subscriptions are */
    CHECK_EQ_INT(parse_words("PUBSUB SHARDCHANNELS", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("unsupported command 'pubsub|shardchannels' (pub/sub)");
    CHECK_EQ_INT(parse_words("CONFIG GET x", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("unsupported command 'config' (no key to route by)");
    CHECK_EQ_INT(parse_words("SHUTDOWN", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("unsupported command 'shutdown' (admin)");
    CHECK_EQ_INT(parse_words("CLIENT KILL ID 1", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("unsupported command 'client|kill' (admin)");
    CHECK_EQ_INT(parse_words("CLIENT LIST", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_LOCAL); /* the client's own line (redis_local_client.c) */
    CHECK_EQ_INT(parse_words("SCRIPT KILL", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_ALL && rq.own_conn); /* not behind the busy script */
    CHECK_EQ_INT(parse_words("FUNCTION KILL", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_ALL && rq.own_conn);
    CHECK_EQ_INT(parse_words("SCRIPT FLUSH", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_ALL && !rq.own_conn);
    const char *more[] = {"SWAPDB 0 1",      "CLIENT KILL x y", "CLIENT TRACKING on", "WAIT 1 0",
                          "SCRIPT DEBUG no", "CLUSTER INFO",    "MIGRATE h 1 k 0 5"};
    for (int i = 0; i < 7; i++) {
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
    size_t n = resp_of(b, sizeof(b), "CONFIG GET x");
    n += resp_of(b + n, sizeof(b) - n, "GET x");
    CHECK_EQ_INT(parse_mem(b, n), PARSE_OK);
    size_t first = rq.len;
    CHECK_EQ_INT(parse_mem(b + first, n - first), PARSE_OK);
    CHECK(rq.route == ROUTE_KEY && rq.len == n - first);
}

static void test_req_inline(void)
{
    /* each line's rewrite: the RESP request redis-server 7.0 ran for it (checked with
     * RPUSH l <line> then LRANGE l 0 -1 against a live server) */
    static const struct {
        const char *in;
        size_t in_len;
        const char *wire;
    } ok[] = {
#define L(s) s, sizeof(s) - 1
        {L("PING\r\n"), "*1\r\n$4\r\nPING\r\n"},
        {L("SET k v\r\nGET k\r\n"), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"},
        {L("get k\n"), "*2\r\n$3\r\nget\r\n$1\r\nk\r\n"},
        {L("  get   k  \r\n"), "*2\r\n$3\r\nget\r\n$1\r\nk\r\n"},
        {L("get\tk\r\n"), "*2\r\n$3\r\nget\r\n$1\r\nk\r\n"},
        {L("get k\r\r\n"), "*2\r\n$3\r\nget\r\n$1\r\nk\r\n"},
        {L("PING\rPING\r\n"), "*2\r\n$4\r\nPING\r\n$4\r\nPING\r\n"},
        {L("set \"a b\" \"c\\x41\\n\"\r\n"), "*3\r\n$3\r\nset\r\n$3\r\na b\r\n$3\r\ncA\n\r\n"},
        {L("set k 'a\\'b'\r\n"), "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$3\r\na'b\r\n"},
        {L("set k 'a\\nb'\r\n"), "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$4\r\na\\nb\r\n"},
        {L("set k \"a\\'b\\q\\\\\\\"\"\r\n"), "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$6\r\na'bq\\\"\r\n"},
        {L("set k \"\\x4g\\x41\\X41\"\r\n"), "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$7\r\nx4gAX41\r\n"},
        {L("set k \"\\a\\b\\t\\r\"\r\n"), "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$4\r\n\a\b\t\r\r\n"},
        {L("set k a\"b c\"\r\n"), "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$4\r\nab c\r\n"},
        {L("set k a'b c'\r\n"), "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$4\r\nab c\r\n"},
        {L("set k \"a\"\vq\r\n"), "*4\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\na\r\n$1\r\nq\r\n"},
        {L("set k a\vb\r\n"), "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$3\r\na\vb\r\n"},
        {L("\vset\fk\fv\r\n"), "*1\r\n$7\r\nset\fk\fv\r\n"},
        {L("get \"\" ''\r\n"), "*3\r\n$3\r\nget\r\n$0\r\n\r\n$0\r\n\r\n"},
        {L("\"\\x\" \"\\x1\" \"a\\\\\"\r\n"), "*3\r\n$1\r\nx\r\n$2\r\nx1\r\n$2\r\na\\\r\n"},
        {L("set k \"\xc3\xa9\"\r\n"), "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$2\r\n\xc3\xa9\r\n"},
#undef L
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int rc = parse_mem(ok[i].in, ok[i].in_len);
        const char *nl = memchr(ok[i].in, '\n', ok[i].in_len);
        CHECK_EQ_INT(rc, PARSE_OK);
        CHECK_EQ_INT(rq.len, nl - ok[i].in + 1);
        CHECK(rq.rewritten);
        CHECK_MEM(rq.wire.data, rq.wire.len, ok[i].wire);
        /* the rewrite parses back to the same request */
        size_t len = rq.len;
        uint16_t cmd = rq.cmd;
        uint8_t route = rq.route;
        struct buf w;
        buf_init(&w);
        buf_append(&w, rq.wire.data, rq.wire.len);
        CHECK(redis_req_parse(w.data, w.len, &rq) == PARSE_OK && rq.len == w.len && rq.cmd == cmd &&
              rq.route == route && !rq.rewritten);
        buf_free(&w);
        (void)len;
    }

    /* classified like the RESP form, spans into wire */
    CHECK_EQ_INT(parse_mem("SET k v\r\n", 9), PARSE_OK);
    CHECK(rq.cmd == REDIS_CMD_SET && rq.route == ROUTE_KEY && rq.keys.n == 1);
    CHECK(key_is((const char *)rq.wire.data, 0, "k"));
    CHECK_EQ_INT(parse_mem("mget a b\n", 9), PARSE_OK);
    CHECK(rq.route == ROUTE_SPLIT && key_is((const char *)rq.wire.data, 1, "b"));
    CHECK_EQ_INT(parse_mem("PING\r\n", 6), PARSE_OK);
    CHECK(rq.route == ROUTE_LOCAL && rq.cmd == REDIS_CMD_PING);
    CHECK_EQ_INT(parse_mem("FOO \"x y\"\r\n", 11), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_REJECT);
    CHECK_EQ_INT(rq.len, 11);
    CHECK_ERR("unknown command 'FOO', with args beginning with: 'x y' ");
    CHECK_EQ_INT(parse_mem("\"\" \r\n", 5), PARSE_OK); /* redis: unknown command '' */
    CHECK_ERR("unknown command '', with args beginning with: ");
    CHECK_EQ_INT(parse_mem("get\r\r\n", 6), PARSE_OK);
    CHECK_ERR("wrong number of arguments for 'get' command");

    /* a web request: closed without an answer, as redis does (h50) */
    const char *web[] = {"POST / HTTP/1.1\r\n", "Host: x\r\n", "host:\r\n",
                         "*2\r\n$4\r\nPoSt\r\n$1\r\n/\r\n"};
    for (size_t i = 0; i < sizeof(web) / sizeof(web[0]); i++) {
        CHECK_EQ_INT(parse_mem(web[i], strlen(web[i])), PARSE_ERROR);
        CHECK(rq.err_wire && rq.wire.len == 0);
    }
    CHECK_EQ_INT(parse_mem("posts\r\n", 7), PARSE_OK); /* an unknown command */
    CHECK(!rq.err_wire);
    CHECK_EQ_INT(parse_mem("GET / HTTP/1.1\r\n", 16), PARSE_OK); /* redis: an arity error */

    /* redis closes with this error; the proxy too (PARSE_ERROR) */
    const char *unbalanced[] = {"set 'a' 'b'c\r\n",    "set \"a\"b c\r\n", "get \"a\r\n",
                                "set k a\"b c\"d\r\n", "set k \"a\\\r\n",  "get 'a\n"};
    for (size_t i = 0; i < sizeof(unbalanced) / sizeof(unbalanced[0]); i++) {
        CHECK_EQ_INT(parse_mem(unbalanced[i], strlen(unbalanced[i])), PARSE_ERROR);
        CHECK_ERR("Protocol error: unbalanced quotes in request");
    }
    /* redis waits forever for a line end past a NUL (strchr): an error instead */
    CHECK_EQ_INT(parse_mem("get a\0b\r\n", 9), PARSE_ERROR);
    CHECK_ERR("Protocol error: NUL byte in inline request");
    CHECK_EQ_INT(parse_mem("get a\0", 6), PARSE_ERROR);
    CHECK_EQ_INT(parse_mem("PING\r\nget\0", 10), PARSE_OK); /* not before its own line */

    /* blank lines: skipped, as redis does */
    const char *blank[] = {"\r\n", "\n", "   \r\n", "\v\f\t\r\n"};
    for (size_t i = 0; i < sizeof(blank) / sizeof(blank[0]); i++) {
        CHECK_EQ_INT(parse_mem(blank[i], strlen(blank[i])), PARSE_OK);
        CHECK(rq.route == ROUTE_LOCAL && rq.cmd == REDIS_CMD_NOOP && rq.len == strlen(blank[i]));
    }
    CHECK_EQ_INT(parse_mem("PING", 4), PARSE_AGAIN);
    CHECK_EQ_INT(rq.len, 0);

    /* 64 KB lines: the limit is redis' (an unended line longer than it is refused) */
    size_t big = REDIS_MAX_INLINE + 10;
    char *p = malloc(big);
    memset(p, 'a', big);
    CHECK_EQ_INT(parse_mem(p, REDIS_MAX_INLINE), PARSE_AGAIN);
    CHECK_EQ_INT(parse_mem(p, REDIS_MAX_INLINE + 1), PARSE_ERROR);
    CHECK_ERR("Protocol error: too big inline request");
    p[REDIS_MAX_INLINE] = '\n';
    CHECK_EQ_INT(parse_mem(p, big), PARSE_OK);
    CHECK(rq.route == ROUTE_REJECT && rq.len == REDIS_MAX_INLINE + 1); /* an unknown command */
    memset(p, ' ', REDIS_MAX_INLINE);
    memcpy(p, "GET", 3);
    CHECK_EQ_INT(parse_mem(p, big), PARSE_OK);
    CHECK(rq.route == ROUTE_REJECT && rq.len == REDIS_MAX_INLINE + 1);
    CHECK_ERR("wrong number of arguments for 'get' command");
    free(p);
}

static void test_req_routes(void)
{
    char b[8192];
    /* transactions: the core keeps them; WATCH's keys decide the server */
    const char *txn[] = {"MULTI", "EXEC", "DISCARD", "WATCH a b", "UNWATCH"};
    const uint8_t txn_kind[] = {TXN_MULTI, TXN_EXEC, TXN_DISCARD, TXN_WATCH, TXN_UNWATCH};
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(parse_words(txn[i], b, sizeof(b)), PARSE_OK);
        CHECK(rq.route == ROUTE_TXN && rq.txn == txn_kind[i] && rq.sub == SUB_NONE);
    }
    CHECK(rq.keys.n == 0);
    parse_words("WATCH a b", b, sizeof(b));
    CHECK(rq.keys.n == 2 && key_is(b, 0, "a") && key_is(b, 1, "b"));
    CHECK_EQ_INT(parse_words("WATCH", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("wrong number of arguments for 'watch' command");
    CHECK_EQ_INT(parse_words("EXEC x", b, sizeof(b)), PARSE_OK);
    CHECK_EQ_INT(rq.route, ROUTE_REJECT);
    CHECK_EQ_INT(rq.txn, TXN_EXEC); /* refused, it still ends the transaction, as in redis */
    CHECK_ERR("EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' "
              "command");

    /* subscriptions: every channel or pattern in keys */
    CHECK_EQ_INT(parse_words("SUBSCRIBE a b", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_PUBSUB && rq.sub == SUB_SUBSCRIBE && rq.keys.n == 2);
    CHECK(key_is(b, 0, "a") && key_is(b, 1, "b") && rq.txn == TXN_NONE);
    CHECK_EQ_INT(parse_words("psubscribe n*", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_PUBSUB && rq.sub == SUB_PSUBSCRIBE && key_is(b, 0, "n*"));
    CHECK_EQ_INT(parse_words("UNSUBSCRIBE", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_PUBSUB && rq.sub == SUB_UNSUBSCRIBE && rq.keys.n == 0);
    CHECK_EQ_INT(parse_words("PUNSUBSCRIBE x y", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_PUBSUB && rq.sub == SUB_PUNSUBSCRIBE && rq.keys.n == 2);
    CHECK_EQ_INT(parse_words("SUBSCRIBE", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("wrong number of arguments for 'subscribe' command");

    /* a message goes where its channel is placed */
    CHECK_EQ_INT(parse_words("PUBLISH ch msg", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_KEY && rq.keys.n == 1 && key_is(b, 0, "ch"));
    CHECK_EQ_INT(parse_words("SPUBLISH ch msg", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_KEY && rq.keys.n == 1 && key_is(b, 0, "ch"));

    const char *any[] = {"TIME", "LASTSAVE"};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(parse_words(any[i], b, sizeof(b)), PARSE_OK);
        CHECK(rq.route == ROUTE_ANY && rq.keys.n == 0);
    }

    /* the dataset: SCAN walks with a cursor, the others are merged */
    CHECK_EQ_INT(parse_words("SCAN 0 MATCH k* COUNT 5 TYPE string", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_DATASET && rq.cursor && !rq.flush && !rq.readonly);
    const char *key_cursors[] = {"HSCAN h 0", "SSCAN s 0", "ZSCAN z 0 COUNT 5"};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(parse_words(key_cursors[i], b, sizeof(b)), PARSE_OK);
        CHECK(rq.route == ROUTE_KEY && rq.keys.n == 1 && !rq.readonly);
    }
    CHECK_EQ_INT(parse_words("HGETALL h", b, sizeof(b)), PARSE_OK);
    CHECK(rq.readonly); /* (a read without a cursor may) */
    const char *dataset[] = {"KEYS *", "DBSIZE", "RANDOMKEY"};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(parse_words(dataset[i], b, sizeof(b)), PARSE_OK);
        CHECK(rq.route == ROUTE_DATASET && !rq.cursor && rq.keys.n == 0);
    }

    /* every server, merged; FLUSHDB/FLUSHALL only where the pool allows it */
    const char *all[] = {"SCRIPT LOAD return", "SCRIPT EXISTS a b", "SCRIPT FLUSH",
                         "script flush async", "FLUSHDB",           "FLUSHALL ASYNC"};
    for (int i = 0; i < 6; i++) {
        CHECK_EQ_INT(parse_words(all[i], b, sizeof(b)), PARSE_OK);
        CHECK(rq.route == ROUTE_ALL && rq.flush == (i >= 4));
    }
    CHECK_ERR("unsupported command 'flushall' (allow_flush is off for this pool)");
    CHECK_EQ_INT(parse_words("SCRIPT LOAD", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("wrong number of arguments for 'script|load' command");

    /* INFO: the proxy's figures, once a live server answered (ROUTE_ANY with facts) */
    CHECK_EQ_INT(parse_words("INFO", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_ANY && rq.facts);
    CHECK_EQ_INT(parse_words("INFO keyspace server", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_ANY && rq.facts);
    CHECK(rq.local_only); /* the proxy's figures: not queued in MULTI */
    CHECK_EQ_INT(parse_words("TIME", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_ANY && !rq.facts && !rq.local_only);

    /* answered by the proxy */
    const char *local[] = {"RESET",
                           "CLIENT SETNAME x",
                           "CLIENT GETNAME",
                           "CLIENT ID",
                           "CLIENT INFO",
                           "CLIENT SETINFO lib-name x",
                           "CLIENT NO-EVICT on",
                           "CLIENT NO-TOUCH off",
                           "CLIENT REPLY ON",
                           "client help"};
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
        CHECK_EQ_INT(parse_words(local[i], b, sizeof(b)), PARSE_OK);
        CHECK_EQ_INT(rq.route, ROUTE_LOCAL);
        CHECK(rq.local_only);
    }
    CHECK_EQ_INT(parse_words("CLIENT SETINFO lib-name", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("wrong number of arguments for 'client|setinfo' command");
    CHECK_EQ_INT(parse_words("CLIENT FOO", b, sizeof(b)), PARSE_OK);
    CHECK_ERR("unknown subcommand 'FOO'. Try CLIENT HELP.");

    /* RESET starts the connection over: the core's transaction and subscriptions too */
    CHECK_EQ_INT(parse_words("RESET", b, sizeof(b)), PARSE_OK);
    CHECK(rq.route == ROUTE_LOCAL && rq.txn == TXN_DISCARD && rq.sub == SUB_UNSUBSCRIBE);

    /* fields of one parse do not leak into the next */
    parse_words("SCAN 0", b, sizeof(b));
    parse_words("GET k", b, sizeof(b));
    CHECK(!rq.cursor && !rq.flush && rq.txn == TXN_NONE && rq.sub == SUB_NONE && !rq.rewritten);
    parse_mem("GET k\r\n", 7);
    parse_words("GET k", b, sizeof(b));
    CHECK(!rq.rewritten);
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
    /* between two arguments the next byte is enough to tell a wrong one */
    CHECK_EQ_INT(parse_mem("*16\r\n$3\r\nGET\r\n", 14), PARSE_AGAIN);
    CHECK_EQ_INT(rq.len, 15);
    CHECK_EQ_INT(parse_mem("*16\r\n$3\r\nGET\r\nX", 15), PARSE_ERROR);
    CHECK_ERR("Protocol error: expected '$', got 'X'");
    /* a wrong argument is shorter than the smallest right one ("$0\r\n\r\n"): no
     * prefix's hint may point past it, or a client that sent it in two writes
     * and waits would wait forever */
    const char *bad[] = {"*2\r\n$3\r\nGET\r\n$-5\r\n", "*2\r\n$3\r\nGET\r\n$x\r\n",
                         "*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$-2\r\n", "*1\r\n$-3\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len = strlen(bad[i]);
        CHECK_EQ_INT(parse_mem(bad[i], len), PARSE_ERROR);
        for (size_t m = 1; m < len; m++) {
            /* (a prefix may already be refused: "$x" is no number) */
            CHECK(parse_mem(bad[i], m) == PARSE_ERROR || rq.len <= len);
        }
    }
    /* the same with 200 arguments, the smallest there are, and a wrong last one */
    char *many = malloc(2048);
    size_t len = (size_t)sprintf(many, "*200\r\n");
    for (int i = 0; i < 199; i++) {
        len += (size_t)sprintf(many + len, "$0\r\n\r\n");
    }
    len += (size_t)sprintf(many + len, "$-5\r\n");
    CHECK_EQ_INT(parse_mem(many, len), PARSE_ERROR);
    for (size_t m = 1; m < len; m++) {
        CHECK(parse_mem(many, m) == PARSE_AGAIN && rq.len <= len);
    }
    free(many);
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
        uint16_t want = strchr(c->name, '|') != NULL ? REDIS_CMD_UNKNOWN : id;
        if (redis_cmd_lookup((const uint8_t *)up, c->name_len) != want ||
            redis_cmd_lookup_name((const uint8_t *)up, c->name_len) != id) {
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

static int span_collect(void *ctx, struct span key, uint32_t flags)
{
    (void)flags;
    return spans_push(ctx, key.off, key.len);
}

/* The parser finds every key redis' COMMAND GETKEYS finds, in the same order
 * (tests/vectors/redis-getkeys.tsv, from a live redis-server). Requests the proxy
 * refuses (blocking) are checked against the table itself, and GEORADIUS*, routed
 * by the key it writes (REDIS_KEYS_GEO), by what the proxy's GETKEYS says. */
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
        const struct redis_cmd *geo =
            ok ? redis_cmd_get(
                     redis_cmd_lookup((const uint8_t *)b + rq.args.v[0].off, rq.args.v[0].len))
               : NULL;
        if (geo != NULL && geo->keys_kind == REDIS_KEYS_GEO) {
            ok = redis_cmd_keys_each(geo, (const uint8_t *)b, rq.args.v, rq.args.n, span_collect,
                                     &table) == 0;
            keys = &table;
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

/* redis_cmd_fixed_key, the parser's shortcut, names the key the key specs'
 * walk finds, for every command of the table and every argument count. */
static void test_fixed_key_is_the_walks_key(void)
{
    static const char req[] = "a0a1a2a3a4a5a6a7a8";
    struct span args[9];
    for (uint32_t i = 0; i < 9; i++) {
        args[i] = (struct span){2 * i, 2};
    }
    int shortcuts = 0;
    for (uint16_t id = 0; id < REDIS_CMD_COUNT; id++) {
        const struct redis_cmd *c = redis_cmd_get(id);
        for (uint32_t argc = 1; argc <= 9; argc++) {
            uint32_t k = redis_cmd_fixed_key(c, argc);
            if (k == 0) {
                continue;
            }
            struct spans walk;
            spans_init(&walk);
            bool same = redis_cmd_keys(c, (const uint8_t *)req, args, argc, &walk) == 0 &&
                        walk.n == 1 && walk.v[0].off == args[k].off && k < argc;
            if (!same) {
                fprintf(stderr, "'%s' argc %u: fixed key %u, the walk found %u keys\n", c->name,
                        argc, k, walk.n);
            }
            CHECK(same);
            shortcuts++;
            spans_free(&walk);
        }
    }
    CHECK(shortcuts > 500); /* most commands take it */
    CHECK_EQ_INT(redis_cmd_fixed_key(redis_cmd_get(REDIS_CMD_GET), 2), 1);
    CHECK_EQ_INT(redis_cmd_fixed_key(redis_cmd_get(REDIS_CMD_GET), 1), 0);
    CHECK_EQ_INT(redis_cmd_fixed_key(redis_cmd_get(REDIS_CMD_MGET), 3), 0);
}

/* redis_cmd_rejected, the parser's shortcut, agrees with the reasons. */
static void test_rejected_is_a_reason(void)
{
    int rejected = 0;
    for (uint16_t id = 0; id < REDIS_CMD_COUNT; id++) {
        const struct redis_cmd *c = redis_cmd_get(id);
        CHECK(redis_cmd_rejected(c) == (redis_cmd_reject_reason(c) != NULL));
        rejected += redis_cmd_rejected(c);
    }
    CHECK(rejected > 10);
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
                         "_ \r\n",
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

/* RESP3 replies as redis-server 7.0 sends them (DEBUG PROTOCOL <type>, HELLO 3). */
static void test_rsp_resp3(void)
{
    static const struct {
        const char *in;
        char type;
        int64_t integer;
        uint32_t elems;
        bool error;
    } shapes[] = {
        {"_\r\n", '_', 0, 0, false},
        {",3.141\r\n", ',', 0, 0, false},
        {",-inf\r\n", ',', 0, 0, false},
        {"#t\r\n", '#', 1, 0, false},
        {"#f\r\n", '#', 0, 0, false},
        {"(1234567999999999999999999999999999999\r\n", '(', 0, 0, false},
        {"(-12\r\n", '(', 0, 0, false},
        {"=29\r\ntxt:This is a verbatim\nstring\r\n", '=', 29, 0, false},
        {"!21\r\nSYNTAX invalid syntax\r\n", '!', 21, 0, true},
        {"%3\r\n:0\r\n#f\r\n:1\r\n#t\r\n:2\r\n#f\r\n", '%', 3, 6, false},
        {"~3\r\n:0\r\n:1\r\n:2\r\n", '~', 3, 3, false},
        {">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n", '>', 2, 2, false},
        {"%0\r\n", '%', 0, 0, false},
        {"~0\r\n", '~', 0, 0, false},
        {"|1\r\n$14\r\nkey-popularity\r\n*2\r\n$7\r\nkey:123\r\n:90\r\n$39\r\n"
         "Some real reply following the attribute\r\n",
         '$', 39, 0, false},
        {"|1\r\n+a\r\n+b\r\n*2\r\n:1\r\n:2\r\n", '*', 2, 2, false},
        {"|0\r\n:5\r\n", ':', 5, 0, false},
        {"*2\r\n_\r\n%1\r\n+k\r\n~1\r\n#t\r\n", '*', 2, 2, false},
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        const char *in = shapes[i].in;
        CHECK_EQ_INT(rsp(in), PARSE_OK);
        CHECK(rs.len == strlen(in) && rs.type == shapes[i].type);
        CHECK(rs.integer == shapes[i].integer && rs.elems.n == shapes[i].elems);
        CHECK(rs.is_error == shapes[i].error);
        CHECK(rsp_incremental_ok(in, strlen(in)));
    }
    /* elements: a map's keys and values one by one, an attribute with its value */
    const char *map = "%2\r\n$1\r\na\r\n*1\r\n:1\r\n+b\r\n_\r\n";
    CHECK_EQ_INT(rsp(map), PARSE_OK);
    CHECK_EQ_INT(rs.elems.n, 4);
    CHECK_MEM(map + rs.elems.v[1].off, rs.elems.v[1].len, "*1\r\n:1\r\n");
    CHECK_MEM(map + rs.elems.v[3].off, rs.elems.v[3].len, "_\r\n");
    const char *attr = "*2\r\n|1\r\n+a\r\n%1\r\n+x\r\n+y\r\n:1\r\n:2\r\n";
    CHECK_EQ_INT(rsp(attr), PARSE_OK);
    CHECK_EQ_INT(rs.elems.n, 2);
    CHECK_MEM(attr + rs.elems.v[0].off, rs.elems.v[0].len, "|1\r\n+a\r\n%1\r\n+x\r\n+y\r\n:1\r\n");
    CHECK_MEM(attr + rs.elems.v[1].off, rs.elems.v[1].len, ":2\r\n");
    CHECK(rsp_incremental_ok(attr, strlen(attr)));
    const char *top_attr = "|1\r\n+a\r\n+b\r\n*2\r\n:1\r\n:2\r\n";
    CHECK_EQ_INT(rsp(top_attr), PARSE_OK);
    CHECK_MEM(top_attr + rs.elems.v[0].off, rs.elems.v[0].len, ":1\r\n");
    CHECK_EQ_INT(rsp("|1\r\n+a\r\n+b\r\n"), PARSE_AGAIN); /* the value is still to come */

    const char *hello3 =
        "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:"
        "3\r\n"
        "$2\r\nid\r\n:19\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
        "$7\r\nmodules\r\n*0\r\n";
    CHECK_EQ_INT(rsp(hello3), PARSE_OK);
    CHECK(rs.type == '%' && rs.elems.n == 14 && rs.len == strlen(hello3));

    /* a big number is any line: redis 7 writes a script's {big_number=...} as it is */
    const char *big[] = {"(\r\n", "(12a\r\n", "(-\r\n", "(12  34\r\n", "(1.5\r\n"};
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        CHECK_EQ_INT(rsp(big[i]), PARSE_OK);
        CHECK_EQ_INT(rs.len, strlen(big[i]));
    }
    const char *bad[] = {"_x\r\n",    "#x\r\n",         "#\r\n",       "#tt\r\n", ",\r\n",
                         "~-1\r\n",   "%-1\r\n",        ">-1\r\n",     "|-1\r\n", "=-1\r\n",
                         "!-1\r\n",   "$?\r\n",         "*?\r\n",      ";3\r\n",  ".\r\n",
                         "(1\n2\r\n", "=3\r\nabcd\r\n", "!1\r\nab\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (rsp(bad[i]) != PARSE_ERROR) {
            fprintf(stderr, "RESP3 reply %zu accepted\n", i);
            unit_fail++;
        } else {
            unit_pass++;
        }
    }

    /* attributes nested a hundred thousand deep cost counters, not stack */
    size_t depth = 100000, n = depth * 12 + 4;
    char *p = malloc(n + 1);
    for (size_t i = 0; i < depth; i++) {
        memcpy(p + i * 4, "|1\r\n", 4);
        memcpy(p + depth * 4 + i * 8, "+k\r\n+v\r\n", 8);
    }
    memcpy(p + depth * 12, ":1\r\n", 5);
    CHECK_EQ_INT(redis_rsp_parse((const uint8_t *)p, n, 0, &rs), PARSE_OK);
    CHECK(rs.len == n && rs.type == ':' && rs.integer == 1);
    free(p);
}

static int rsp_sub(const char *p, uint16_t cmd)
{
    return redis_rsp_parse((const uint8_t *)p, strlen(p), cmd, &rs);
}

/* Replies of a subscribed connection, as redis-server 7.0 sends them. */
static void test_rsp_push(void)
{
    static const struct {
        const char *in;
        uint8_t push, sub;
        const char *chan; /* NULL: none (chan_null) */
        int64_t count;
    } cases[] = {
        {"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n", PUSH_CONFIRM, SUB_SUBSCRIBE, "a", 1},
        {"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:0\r\n", PUSH_CONFIRM, SUB_UNSUBSCRIBE, "a", 0},
        {"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n", PUSH_CONFIRM, SUB_UNSUBSCRIBE, NULL, 0},
        {"*3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:2\r\n", PUSH_CONFIRM, SUB_PSUBSCRIBE, "c*", 2},
        {"*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n", PUSH_CONFIRM, SUB_PUNSUBSCRIBE, NULL, 0},
        {">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", PUSH_CONFIRM, SUB_SUBSCRIBE, "ch", 1},
        {">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n", PUSH_CONFIRM, SUB_UNSUBSCRIBE, NULL, 0},
        {"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n", PUSH_MESSAGE, 0, "", 0},
        {"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$5\r\nhello\r\n", PUSH_MESSAGE, 0, "", 0},
        {">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n", PUSH_MESSAGE, 0, "", 0},
        {">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$5\r\nhello\r\n", PUSH_MESSAGE, 0, "", 0},
        {">3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$1\r\nx\r\n", PUSH_MESSAGE, 0, "", 0},
        {">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n", PUSH_MESSAGE, 0, "", 0},
        {"*2\r\n$4\r\npong\r\n$0\r\n\r\n", PUSH_PONG, 0, "", 0},
        {"*2\r\n$4\r\npong\r\n$2\r\nhi\r\n", PUSH_PONG, 0, "", 0},
        {"+PONG\r\n", PUSH_PONG, 0, "", 0},
        {"$2\r\nhi\r\n", PUSH_NONE, 0, "", 0},
        {"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
         "RESET are allowed in this context\r\n",
         PUSH_NONE, 0, "", 0},
        {"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n$1\r\n1\r\n", PUSH_NONE, 0, "", 0},
        {"*2\r\n$7\r\nmessage\r\n$1\r\na\r\n", PUSH_NONE, 0, "", 0},
        {"*1\r\n:1\r\n", PUSH_NONE, 0, "", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_EQ_INT(rsp_sub(cases[i].in, REDIS_CMD_SUBSCRIBE), PARSE_OK);
        CHECK_EQ_INT(rs.push, cases[i].push);
        if (cases[i].push == PUSH_CONFIRM) {
            CHECK(rs.sub == cases[i].sub && rs.count == cases[i].count);
            CHECK(rs.chan_null == (cases[i].chan == NULL));
            CHECK_MEM(cases[i].in + rs.chan.off, rs.chan.len,
                      cases[i].chan != NULL ? cases[i].chan : "");
        }
    }
    uint16_t others[] = {REDIS_CMD_PSUBSCRIBE, REDIS_CMD_UNSUBSCRIBE, REDIS_CMD_PUNSUBSCRIBE};
    for (int i = 0; i < 3; i++) {
        CHECK(rsp_sub(cases[0].in, others[i]) == PARSE_OK && rs.push == PUSH_CONFIRM);
    }
    /* any other command: a plain reply, whatever it looks like */
    CHECK(rsp_sub(cases[0].in, REDIS_CMD_LRANGE) == PARSE_OK && rs.push == PUSH_NONE);
    CHECK(rsp_sub("+PONG\r\n", REDIS_CMD_PING) == PARSE_OK && rs.push == PUSH_NONE);
}

static void test_sub_reply(void)
{
    struct buf out;
    buf_init(&out);
    static const struct {
        uint8_t kind;
        const char *chan;
        int64_t count;
        int resp;
        const char *want;
    } cases[] = {
        {SUB_SUBSCRIBE, "a", 1, 2, "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"},
        {SUB_PSUBSCRIBE, "c*", 2, 2, "*3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:2\r\n"},
        {SUB_UNSUBSCRIBE, NULL, 0, 2, "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"},
        {SUB_PUNSUBSCRIBE, "b*", 0, 2, "*3\r\n$12\r\npunsubscribe\r\n$2\r\nb*\r\n:0\r\n"},
        {SUB_SUBSCRIBE, "a", 1, 3, ">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"},
        {SUB_UNSUBSCRIBE, NULL, 0, 3, ">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_reset(&out);
        const char *c = cases[i].chan;
        CHECK_EQ_INT(redis_sub_reply(&out, cases[i].kind, (const uint8_t *)c, c ? strlen(c) : 0,
                                     cases[i].count, cases[i].resp),
                     0);
        CHECK_MEM(out.data, out.len, cases[i].want);
    }
    buf_reset(&out);
    CHECK_EQ_INT(redis_sub_reply(&out, SUB_NONE, NULL, 0, 0, 2), -1);
    CHECK_EQ_INT(out.len, 0);
    buf_free(&out);
}

static void test_cursor(void)
{
    char b[512];
    struct buf out;
    buf_init(&out);
    parse_words("scan 0 MATCH k* COUNT 5 TYPE string", b, sizeof(b));
    CHECK_EQ_INT(redis_cursor_request(&out, (uint8_t *)b, &rq, 18446744073709551615u), 0);
    CHECK_MEM(out.data, out.len,
              "*8\r\n$4\r\nscan\r\n$20\r\n18446744073709551615\r\n$5\r\nMATCH\r\n$2\r\nk*\r\n"
              "$5\r\nCOUNT\r\n$1\r\n5\r\n$4\r\nTYPE\r\n$6\r\nstring\r\n");
    buf_reset(&out);
    parse_mem("SCAN 17\r\n", 9); /* inline: the spans point into the rewrite */
    CHECK_EQ_INT(redis_cursor_request(&out, rq.wire.data, &rq, 0), 0);
    CHECK_MEM(out.data, out.len, "*2\r\n$4\r\nSCAN\r\n$1\r\n0\r\n");
    parse_words("GET k", b, sizeof(b));
    CHECK_EQ_INT(redis_cursor_request(&out, (uint8_t *)b, &rq, 0), -1);

    /* SCAN's reply (the same in RESP2 and RESP3) */
    const char *reply = "*2\r\n$1\r\n2\r\n*1\r\n$1\r\na\r\n";
    uint64_t cur = 9;
    rsp(reply);
    CHECK_EQ_INT(redis_cursor_get((const uint8_t *)reply, &rs, &cur), 0);
    CHECK_EQ_INT(cur, 2);
    buf_reset(&out);
    CHECK_EQ_INT(redis_cursor_reply(&out, (const uint8_t *)reply, &rs, 1234567), 0);
    CHECK_MEM(out.data, out.len, "*2\r\n$7\r\n1234567\r\n*1\r\n$1\r\na\r\n");
    const char *last = "*2\r\n$1\r\n0\r\n*0\r\n";
    rsp(last);
    CHECK(redis_cursor_get((const uint8_t *)last, &rs, &cur) == 0 && cur == 0);
    const char *huge = "*2\r\n$20\r\n18446744073709551615\r\n*0\r\n";
    rsp(huge);
    CHECK(redis_cursor_get((const uint8_t *)huge, &rs, &cur) == 0 && cur == UINT64_MAX);
    const char *not_cursor[] = {"-ERR invalid cursor\r\n",
                                "*2\r\n$1\r\nx\r\n*0\r\n",
                                "*2\r\n$20\r\n18446744073709551616\r\n*0\r\n",
                                "*1\r\n$1\r\n0\r\n",
                                "*2\r\n:0\r\n*0\r\n",
                                "*2\r\n$1\r\n0\r\n:1\r\n",
                                "*2\r\n$2\r\n-1\r\n*0\r\n"};
    for (size_t i = 0; i < sizeof(not_cursor) / sizeof(not_cursor[0]); i++) {
        rsp(not_cursor[i]);
        CHECK_EQ_INT(redis_cursor_get((const uint8_t *)not_cursor[i], &rs, &cur), -1);
    }
    rsp(not_cursor[0]);
    CHECK_EQ_INT(redis_cursor_reply(&out, (const uint8_t *)not_cursor[0], &rs, 1), -1);
    buf_free(&out);
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

    /* A run is copied from where the argument before it ends; one that does not
     * start with a '$' header there is encoded afresh (same bytes out). */
    buf_reset(&out);
    parse_words("MSET k1 v1 k2 v2", b, sizeof(b));
    b[rq.args.v[3].off - 4] = 'X'; /* k2's '$' */
    uint32_t idx3[] = {1, 0};
    CHECK_EQ_INT(redis_frag_build(&out, (uint8_t *)b, &rq, idx3, 2), 0);
    CHECK_MEM(out.data, out.len,
              "*5\r\n$4\r\nMSET\r\n$2\r\nk2\r\n$2\r\nv2\r\n$2\r\nk1\r\n$2\r\nv1\r\n");

    /* an inline request's arguments are runs of its rewrite */
    buf_reset(&out);
    const char *inl = "mset  k1 \"v 1\" k2 v2\r\n";
    CHECK_EQ_INT(parse_mem(inl, strlen(inl)), PARSE_OK);
    CHECK(rq.rewritten);
    uint32_t idx4[] = {1};
    CHECK_EQ_INT(redis_frag_build(&out, rq.wire.data, &rq, idx4, 1), 0);
    CHECK_MEM(out.data, out.len, "*3\r\n$4\r\nmset\r\n$2\r\nk2\r\n$2\r\nv2\r\n");
    buf_reset(&out);
    idx4[0] = 0;
    CHECK_EQ_INT(redis_frag_build(&out, rq.wire.data, &rq, idx4, 1), 0);
    CHECK_MEM(out.data, out.len, "*3\r\n$4\r\nmset\r\n$2\r\nk1\r\n$3\r\nv 1\r\n");

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

/* A request every server answered (map NULL): replies merged as one server holding
 * every key would answer (RESP2 and RESP3 replies, as redis-server 7.0 sends them). */
static void merge_all_check(const char *words, uint32_t seed, uint32_t n,
                            const char *const *replies, const char *want)
{
    char b[8192];
    struct frag_fixture fx;
    struct buf out;
    buf_init(&out);
    parse_words(words, b, sizeof(b));
    rq.seed = seed;
    fixture_set(&fx, n, replies);
    CHECK_EQ_INT(redis_merge(&out, (uint8_t *)b, &rq, NULL, fx.rsps, n), 0);
    CHECK_MEM(out.data, out.len, want);
    if (out.len > 0) { /* whatever the merge answers is one well-formed reply */
        CHECK(redis_rsp_parse(out.data, out.len, 0, &rs) == PARSE_OK && rs.len == out.len);
    }
    fixture_free(&fx, n);
    buf_free(&out);
}

static void test_merge_all(void)
{
    const char *keys[] = {"*2\r\n$1\r\na\r\n$1\r\nb\r\n", "*0\r\n", "*1\r\n$1\r\nc\r\n"};
    merge_all_check("KEYS *", 0, 3, keys, "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
    const char *keys_none[] = {"*0\r\n", "*0\r\n"};
    merge_all_check("KEYS *", 0, 2, keys_none, "*0\r\n");
    const char *keys_set[] = {"~1\r\n$1\r\na\r\n", "~1\r\n$1\r\nb\r\n"};
    merge_all_check("KEYS *", 0, 2, keys_set, "~2\r\n$1\r\na\r\n$1\r\nb\r\n");
    const char *keys_map[] = {"%1\r\n+a\r\n:1\r\n", "%1\r\n+b\r\n:2\r\n"};
    merge_all_check("KEYS *", 0, 2, keys_map, "%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n");
    const char *keys_mixed[] = {"*1\r\n$1\r\na\r\n", "~1\r\n$1\r\nb\r\n"};
    merge_all_check("KEYS *", 0, 2, keys_mixed, "-ERR bad reply from server\r\n");
    const char *keys_err[] = {"*1\r\n$1\r\na\r\n", "-LOADING loading\r\n"};
    merge_all_check("KEYS *", 0, 2, keys_err, "-LOADING loading\r\n");

    const char *dbsize[] = {":2\r\n", ":0\r\n", ":5\r\n"};
    merge_all_check("DBSIZE", 0, 3, dbsize, ":7\r\n");
    const char *dbsize_bad[] = {":2\r\n", "$1\r\n5\r\n"};
    merge_all_check("DBSIZE", 0, 2, dbsize_bad, "-ERR bad reply from server\r\n");
    const char *dbsize_big[] = {":9223372036854775807\r\n", ":1\r\n"};
    merge_all_check("DBSIZE", 0, 2, dbsize_big, "-ERR bad reply from server\r\n");

    /* RANDOMKEY: the first server from seed on that has a key */
    const char *rk[] = {"$-1\r\n", "$1\r\nb\r\n", "$1\r\nc\r\n"};
    merge_all_check("RANDOMKEY", 0, 3, rk, "$1\r\nb\r\n");
    merge_all_check("RANDOMKEY", 2, 3, rk, "$1\r\nc\r\n");
    merge_all_check("RANDOMKEY", 3, 3, rk, "$1\r\nb\r\n");
    merge_all_check("RANDOMKEY", 5, 3, rk, "$1\r\nc\r\n");
    const char *rk_none[] = {"$-1\r\n", "$-1\r\n"};
    merge_all_check("RANDOMKEY", 1, 2, rk_none, "$-1\r\n");
    const char *rk3[] = {"_\r\n", "_\r\n", "$1\r\nz\r\n"};
    merge_all_check("RANDOMKEY", 0, 3, rk3, "$1\r\nz\r\n");
    merge_all_check("RANDOMKEY", 0, 2, rk3, "_\r\n");
    const char *rk_bad[] = {"$-1\r\n", "*0\r\n"};
    merge_all_check("RANDOMKEY", 0, 2, rk_bad, "-ERR bad reply from server\r\n");

    const char *sha = "$40\r\ne0e1f9fabfc9d4800c877a703b823ac0578ff8db\r\n";
    const char *load[] = {sha, sha, sha};
    merge_all_check("SCRIPT LOAD x", 0, 3, load, sha);
    const char *load_diff[] = {sha, sha, "$3\r\nabc\r\n"};
    merge_all_check("SCRIPT LOAD x", 0, 3, load_diff,
                    "-ERR the servers disagree on script|load: server 0 answered "
                    "'e0e1f9fabfc9d4800c877a703b823ac0578ff8db', server 2 'abc'\r\n");
    const char *load_err[] = {sha, "-ERR Error compiling script\r\n"};
    merge_all_check("SCRIPT LOAD x", 0, 2, load_err, "-ERR Error compiling script\r\n");

    const char *exists[] = {"*3\r\n:1\r\n:0\r\n:1\r\n", "*3\r\n:1\r\n:0\r\n:0\r\n"};
    merge_all_check("SCRIPT EXISTS a b c", 0, 2, exists, "*3\r\n:1\r\n:0\r\n:0\r\n");
    const char *exists_short[] = {"*3\r\n:1\r\n:0\r\n:1\r\n", "*2\r\n:1\r\n:0\r\n"};
    merge_all_check("SCRIPT EXISTS a b c", 0, 2, exists_short, "-ERR bad reply from server\r\n");
    const char *exists_bad[] = {"*1\r\n:1\r\n", "*1\r\n$1\r\n1\r\n"};
    merge_all_check("SCRIPT EXISTS a", 0, 2, exists_bad, "-ERR bad reply from server\r\n");

    /* PUBSUB: channels each once (sorted), counts the largest, names as said */
    const char *chans[] = {"*2\r\n$2\r\nch\r\n$1\r\nb\r\n", "*0\r\n",
                           "*2\r\n$1\r\nb\r\n$1\r\na\r\n"};
    merge_all_check("PUBSUB CHANNELS", 0, 3, chans, "*3\r\n$1\r\na\r\n$1\r\nb\r\n$2\r\nch\r\n");
    const char *chans_bad[] = {"*1\r\n$1\r\na\r\n", ":1\r\n"};
    merge_all_check("PUBSUB CHANNELS", 0, 2, chans_bad, "-ERR bad reply from server\r\n");
    const char *numpat[] = {":2\r\n", ":3\r\n", ":0\r\n"};
    merge_all_check("PUBSUB NUMPAT", 0, 3, numpat, ":3\r\n");
    const char *numsub[] = {"*4\r\n$1\r\na\r\n:0\r\n$1\r\nb\r\n:2\r\n",
                            "*4\r\n$1\r\na\r\n:5\r\n$1\r\nb\r\n:1\r\n"};
    merge_all_check("PUBSUB NUMSUB a b", 0, 2, numsub, "*4\r\n$1\r\na\r\n:5\r\n$1\r\nb\r\n:2\r\n");
    const char *numsub3[] = {"%1\r\n$1\r\na\r\n:1\r\n", "%1\r\n$1\r\na\r\n:4\r\n"};
    merge_all_check("PUBSUB NUMSUB a", 0, 2, numsub3, "%1\r\n$1\r\na\r\n:4\r\n");
    const char *numsub_odd[] = {"*2\r\n$1\r\na\r\n:0\r\n", "*2\r\n$1\r\nz\r\n:0\r\n"};
    merge_all_check("PUBSUB NUMSUB a", 0, 2, numsub_odd, "-ERR bad reply from server\r\n");
    const char *numsub_none[] = {"*0\r\n", "*0\r\n"};
    merge_all_check("PUBSUB NUMSUB", 0, 2, numsub_none, "*0\r\n");

    /* SCRIPT KILL: the server that killed it, else the error that says why not */
    const char *nb = "-NOTBUSY No scripts in execution right now.\r\n";
    const char *unk = "-UNKILLABLE Sorry the script already executed write commands\r\n";
    const char *kill_ok[] = {nb, "+OK\r\n", nb};
    merge_all_check("SCRIPT KILL", 0, 3, kill_ok, "+OK\r\n");
    const char *kill_none[] = {nb, nb};
    merge_all_check("SCRIPT KILL", 0, 2, kill_none, nb);
    const char *kill_unk[] = {nb, unk, nb};
    merge_all_check("FUNCTION KILL", 0, 3, kill_unk, unk);
    const char *kill_short[] = {"-ERR\r\n", nb};
    merge_all_check("SCRIPT KILL", 0, 2, kill_short, "-ERR\r\n");

    const char *ok[] = {"+OK\r\n", "+OK\r\n"};
    merge_all_check("SCRIPT FLUSH", 0, 2, ok, "+OK\r\n");
    merge_all_check("FLUSHALL", 0, 2, ok, "+OK\r\n");
    merge_all_check("FLUSHDB ASYNC", 0, 2, ok, "+OK\r\n");
    const char *ok_bad[] = {"+OK\r\n", ":1\r\n"};
    merge_all_check("FLUSHDB", 0, 2, ok_bad, "-ERR bad reply from server\r\n");
    const char *blob_err[] = {"+OK\r\n", "!7\r\nERR x y\r\n"};
    merge_all_check("FLUSHDB", 0, 2, blob_err, "!7\r\nERR x y\r\n");

    /* a split command's merge needs its map, a whole request's none */
    char b[256];
    struct buf out;
    struct frag_fixture fx;
    buf_init(&out);
    parse_words("SCAN 0", b, sizeof(b));
    fixture_set(&fx, 2, ok);
    struct frag_map m[1] = {{0, 0}};
    CHECK_EQ_INT(redis_merge(&out, (uint8_t *)b, &rq, m, fx.rsps, 2), -1);
    CHECK_EQ_INT(redis_merge(&out, (uint8_t *)b, &rq, NULL, fx.rsps, 2), -1); /* walked */
    parse_words("GET k", b, sizeof(b));
    CHECK_EQ_INT(redis_merge(&out, (uint8_t *)b, &rq, NULL, fx.rsps, 2), -1);
    CHECK_EQ_INT(out.len, 0);
    fixture_free(&fx, 2);
    buf_free(&out);

    /* RESP3 fragments of a split: MGET's nulls are `_`, and stay so for a RESP3 client */
    struct frag_map m3[] = {{0, 0}, {1, 0}, {0, 1}};
    const char *mget3[] = {"*2\r\n$1\r\n1\r\n_\r\n", "*1\r\n_\r\n"};
    merge_check("MGET a b c", m3, 2, mget3, "*3\r\n$1\r\n1\r\n_\r\n_\r\n");
    const char *mget_blob_err[] = {"*2\r\n$1\r\n1\r\n_\r\n", "!3\r\nERR\r\n"};
    merge_check("MGET a b c", m3, 2, mget_blob_err, "!3\r\nERR\r\n");
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
    buf_init(&lc.name);
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

    local_check("HELLO 1", &lc, "-NOPROTO unsupported protocol version\r\n");
    local_check("HELLO 2 FOO", &lc, "-ERR Syntax error in HELLO option 'FOO'\r\n");

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
    local_check("COMMAND INFO get nosuch blpop", &lc,
                "*3\r\n*6\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n"
                "$-1\r\n*6\r\n$5\r\nblpop\r\n:-3\r\n*3\r\n+write\r\n+noscript\r\n+blocking\r\n"
                ":1\r\n:-2\r\n:1\r\n");
    local_check("COMMAND INFO mset", &lc,
                "*1\r\n*6\r\n$4\r\nmset\r\n:-3\r\n*2\r\n+write\r\n+denyoom\r\n:1\r\n:-1\r\n:2\r\n");
    local_check("COMMAND GETKEYS EVAL s 2 a b x", &lc, "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    local_check("COMMAND GETKEYS MSET a 1 b 2", &lc, "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    local_check("COMMAND GETKEYS PING x", &lc, "-ERR The command has no key arguments\r\n");
    local_check("COMMAND GETKEYS PING", &lc,
                "-ERR wrong number of arguments for 'command|getkeys' command\r\n");
    local_check("COMMAND GETKEYS KEYS *", &lc, "-ERR The command has no key arguments\r\n");
    local_check("COMMAND GETKEYS INFO x", &lc, "-ERR The command has no key arguments\r\n");
    local_check("COMMAND GETKEYS FOOBAR x", &lc, "-ERR Invalid command specified\r\n");
    local_check("COMMAND GETKEYS BLPOP l 0", &lc, "*1\r\n$1\r\nl\r\n");
    local_check("COMMAND GETKEYS EVAL s 0", &lc, "*0\r\n"); /* keys are optional */
    local_check("COMMAND GETKEYS ZUNION 3 a", &lc,
                "-ERR Invalid arguments specified for command\r\n");
    local_check("COMMAND GETKEYS XREAD BLOCK 0 STREAMS s $", &lc, "*1\r\n$1\r\ns\r\n");
    local_check("COMMAND GETKEYS SORT k STORE d", &lc, "*2\r\n$1\r\nk\r\n$1\r\nd\r\n");
    local_check("COMMAND GETKEYS GET a b", &lc,
                "-ERR Invalid number of arguments specified for command\r\n");
    local_check("COMMAND FOO", &lc, "-ERR unknown subcommand 'FOO'. Try COMMAND HELP.\r\n");
    local_check("COMMAND COUNT x", &lc,
                "-ERR wrong number of arguments for 'command|count' command\r\n");
    local_check("COMMAND help x", &lc,
                "-ERR wrong number of arguments for 'command|help' command\r\n");

    /* GETKEYSANDFLAGS: each key's spec flags; variable ones as the request decides */
    local_check("COMMAND GETKEYSANDFLAGS LMOVE a b left left", &lc,
                "*2\r\n*2\r\n$1\r\na\r\n*3\r\n+RW\r\n+access\r\n+delete\r\n"
                "*2\r\n$1\r\nb\r\n*2\r\n+RW\r\n+insert\r\n");
    local_check("COMMAND GETKEYSANDFLAGS SET k v", &lc,
                "*1\r\n*2\r\n$1\r\nk\r\n*2\r\n+OW\r\n+update\r\n");
    local_check("COMMAND GETKEYSANDFLAGS SET k v GET", &lc,
                "*1\r\n*2\r\n$1\r\nk\r\n*3\r\n+RW\r\n+access\r\n+update\r\n");
    local_check("COMMAND GETKEYSANDFLAGS BITFIELD k GET u8 0", &lc,
                "*1\r\n*2\r\n$1\r\nk\r\n*2\r\n+RO\r\n+access\r\n");
    local_check("COMMAND GETKEYSANDFLAGS SORT k STORE d", &lc,
                "*2\r\n*2\r\n$1\r\nk\r\n*2\r\n+RO\r\n+access\r\n"
                "*2\r\n$1\r\nd\r\n*2\r\n+OW\r\n+update\r\n");
    local_check("COMMAND GETKEYSANDFLAGS GET", &lc,
                "-ERR wrong number of arguments for 'command|getkeysandflags' command\r\n");

    /* COMMAND LIST: served subcommands too, and redis 7's filters */
    local_check("COMMAND LIST FILTERBY MODULE m", &lc, "*0\r\n");
    local_check("COMMAND LIST FILTERBY PATTERN getd*", &lc, "*1\r\n$6\r\ngetdel\r\n");
    local_check("COMMAND LIST FILTERBY PATTERN OBJECT|ENC*", &lc,
                "*1\r\n$15\r\nobject|encoding\r\n");
    local_check("COMMAND LIST FILTERBY ACLCAT HyperLogLog", &lc,
                "*3\r\n$5\r\npfadd\r\n$7\r\npfcount\r\n$7\r\npfmerge\r\n");
    local_check("COMMAND LIST FILTERBY ACLCAT nope", &lc, "*0\r\n");
    local_check("COMMAND LIST bogus", &lc, "-ERR syntax error\r\n");
    local_check("COMMAND LIST FILTERBY NAME x", &lc, "-ERR syntax error\r\n");
    local_check("COMMAND LIST FILTERBY PATTERN", &lc, "-ERR syntax error\r\n");

    /* COMMAND, COMMAND COUNT and COMMAND INFO agree, COMMAND LIST adds the
     * subcommands, and COMMAND parses as RESP */
    char b[256];
    struct buf out;
    buf_init(&out);
    parse_words("COMMAND COUNT", b, sizeof(b));
    redis_local(&out, (uint8_t *)b, &rq, &lc);
    CHECK_EQ_INT(redis_rsp_parse(out.data, out.len, 0, &rs), PARSE_OK);
    int64_t count = rs.integer;
    CHECK(count > 150 && count < REDIS_CMD_COUNT);
    const char *forms[] = {"COMMAND", "COMMAND INFO", "COMMAND LIST"};
    for (int i = 0; i < 3; i++) {
        buf_reset(&out);
        parse_words(forms[i], b, sizeof(b));
        CHECK_EQ_INT(redis_local(&out, (uint8_t *)b, &rq, &lc), 1);
        CHECK_EQ_INT(redis_rsp_parse(out.data, out.len, 0, &rs), PARSE_OK);
        CHECK(rs.len == out.len && rs.type == '*');
        CHECK(i < 2 ? rs.elems.n == count : rs.elems.n > count);
    }
    buf_reset(&out);
    parse_words("COMMAND HELP", b, sizeof(b));
    redis_local(&out, (uint8_t *)b, &rq, &lc);
    CHECK_EQ_INT(redis_rsp_parse(out.data, out.len, 0, &rs), PARSE_OK);
    buf_free(&out);
}

/* Parse a request made of argc arguments (spaces allowed), call local, compare. */
static int local_checkv(int argc, const char *const *argv, struct local_ctx *lc, const char *want)
{
    char b[8192];
    size_t len = (size_t)snprintf(b, sizeof(b), "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        len +=
            (size_t)snprintf(b + len, sizeof(b) - len, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
    }
    struct buf out;
    buf_init(&out);
    CHECK_EQ_INT(parse_mem(b, len), PARSE_OK);
    int rc = redis_local(&out, (uint8_t *)b, &rq, lc);
    CHECK_MEM(out.len ? (const char *)out.data : "", out.len, want);
    buf_free(&out);
    return rc;
}

#define HELLO_FIELDS(proto, id)                                                                    \
    "$6\r\nserver\r\n$10\r\nnutcracker\r\n$7\r\nversion\r\n$5\r\n0.5.0\r\n$5\r\nproto\r\n:" proto  \
    "\r\n$2\r\nid\r\n:" id "\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n" \
    "$7\r\nmodules\r\n*0\r\n"

/* HELLO as redis-server 7.0 lays it out (its own server, version and id differ):
 *   %7 server redis version 7.0.15 proto :3 id :19 mode standalone role master modules *0 */
static void test_local_hello(void)
{
    struct local_ctx lc = lctx(NULL, 0);
    lc.id = 42;
    const char *hello2 = "*14\r\n" HELLO_FIELDS("2", "42");
    const char *hello3 = "%7\r\n" HELLO_FIELDS("3", "42");
    local_check("HELLO", &lc, hello2);
    local_check("HELLO 2", &lc, hello2);
    CHECK_EQ_INT(lc.resp, 2);
    CHECK_EQ_INT(local_check("HELLO 3", &lc, hello3), 1);
    CHECK_EQ_INT(lc.resp, 3);
    local_check("HELLO", &lc, hello3); /* no version: the protocol stays */
    local_check("PING", &lc, "+PONG\r\n");
    local_check("CLIENT GETNAME", &lc, "_\r\n");
    local_check("COMMAND DOCS", &lc, "%0\r\n");
    local_check("COMMAND INFO get nosuch", &lc,
                "*2\r\n*6\r\n$3\r\nget\r\n:2\r\n~2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n"
                "_\r\n");
    local_check("HELLO 2", &lc, hello2);
    CHECK_EQ_INT(lc.resp, 2);
    local_check("HELLO 4", &lc, "-NOPROTO unsupported protocol version\r\n");
    local_check("HELLO 0", &lc, "-NOPROTO unsupported protocol version\r\n");
    local_check("HELLO x", &lc, "-ERR Protocol version is not an integer or out of range\r\n");
    local_check("HELLO 3 FOO", &lc, "-ERR Syntax error in HELLO option 'FOO'\r\n");
    local_check("HELLO 3 AUTH u", &lc, "-ERR Syntax error in HELLO option 'AUTH'\r\n");
    local_check("HELLO 3 SETNAME", &lc, "-ERR Syntax error in HELLO option 'SETNAME'\r\n");
    CHECK_EQ_INT(lc.resp, 2);

    /* SETNAME is checked before anything changes (redis: the protocol stays 2) */
    const char *bad_name[] = {"HELLO", "3", "SETNAME", "a b"};
    local_checkv(4, bad_name, &lc,
                 "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    CHECK(lc.resp == 2 && lc.name.len == 0);
    CHECK_EQ_INT(local_check("HELLO 3 SETNAME me", &lc, hello3), 1);
    CHECK_MEM(lc.name.data, lc.name.len, "me");
    /* without a pool password, any AUTH is the default user's, as in redis */
    local_check("HELLO 2 AUTH default whatever", &lc, hello2);
    buf_free(&lc.name);

    /* with one: AUTH, then the name, then NOAUTH */
    struct local_ctx pw = lctx("secret", 0);
    local_checkv(4, bad_name, &pw,
                 "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    local_check("HELLO 3 SETNAME x", &pw,
                "-NOAUTH HELLO must be called with the client already authenticated, otherwise "
                "the HELLO AUTH <user> <pass> option can be used to authenticate the "
                "client and select the RESP protocol version at the same time\r\n");
    CHECK(pw.resp == 2 && pw.name.len == 0);
    local_check("HELLO 3 AUTH default nope", &pw, "-ERR invalid password\r\n");
    CHECK(!pw.authed && pw.resp == 2);
    const char *auth_bad_name[] = {"HELLO", "3", "AUTH", "default", "secret", "SETNAME", "a b"};
    local_checkv(7, auth_bad_name, &pw,
                 "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    CHECK(pw.authed && pw.resp == 2); /* redis: logged in, protocol unchanged */
    pw.authed = false;
    CHECK_EQ_INT(
        local_check("HELLO 3 AUTH default secret SETNAME n", &pw, "%7\r\n" HELLO_FIELDS("3", "0")),
        1);
    CHECK(pw.authed && pw.resp == 3);
    CHECK_MEM(pw.name.data, pw.name.len, "n");
    buf_free(&pw.name);
}

/* CLIENT subcommands, byte for byte as redis-server 7.0 answers them (7.2 for SETINFO,
 * NO-TOUCH), and CLIENT INFO in redis 7.0's layout. */
static void test_local_client(void)
{
    struct local_ctx lc = lctx(NULL, 2);
    lc.id = 7;
    lc.addr = "127.0.0.1:50000";
    lc.laddr = "127.0.0.1:22121";
    local_check("CLIENT GETNAME", &lc, "$-1\r\n");
    CHECK_EQ_INT(local_check("CLIENT SETNAME my-name", &lc, "+OK\r\n"), 1);
    local_check("CLIENT GETNAME", &lc, "$7\r\nmy-name\r\n");
    const char *bad[] = {"a b", "a\nb", "\x7f", "\x01"};
    for (int i = 0; i < 4; i++) {
        const char *argv[] = {"CLIENT", "SETNAME", bad[i]};
        local_checkv(
            3, argv, &lc,
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    }
    local_check("CLIENT GETNAME", &lc, "$7\r\nmy-name\r\n");
    const char *clear[] = {"CLIENT", "SETNAME", ""};
    local_checkv(3, clear, &lc, "+OK\r\n");
    local_check("CLIENT GETNAME", &lc, "$-1\r\n");
    local_check("CLIENT ID", &lc, ":7\r\n");
    local_check("CLIENT SETNAME x", &lc, "+OK\r\n");
    const char *info2 = "id=7 addr=127.0.0.1:50000 laddr=127.0.0.1:22121 fd=0 name=x age=0 "
                        "idle=0 flags=N db=2 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 "
                        "argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 "
                        "events=r cmd=client|info user=default redir=-1 resp=2\n";
    char want[1024];
    snprintf(want, sizeof(want), "$%zu\r\n%s\r\n", strlen(info2), info2);
    local_check("CLIENT INFO", &lc, want);
    lc.resp = 3;
    lc.subscribed = true;
    const char *info3 = "id=7 addr=127.0.0.1:50000 laddr=127.0.0.1:22121 fd=0 name=x age=0 "
                        "idle=0 flags=P db=2 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 "
                        "argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 "
                        "events=r cmd=client|info user=default redir=-1 resp=3\n";
    snprintf(want, sizeof(want), "=%zu\r\ntxt:%s\r\n", strlen(info3) + 4, info3);
    local_check("CLIENT INFO", &lc, want);
    lc.resp = 2;
    lc.subscribed = false;

    local_check("CLIENT SETINFO lib-name redis-py", &lc, "+OK\r\n");
    local_check("CLIENT SETINFO LIB-VER 5.0.1", &lc, "+OK\r\n");
    CHECK_EQ_INT(local_check("CLIENT SETINFO lib-name", &lc, ""), 0); /* the core answers: */
    CHECK_ERR("wrong number of arguments for 'client|setinfo' command");
    local_check("CLIENT SETINFO badger hamster", &lc, "-ERR Unrecognized option 'badger'\r\n");
    const char *sp[] = {"CLIENT", "SETINFO", "Lib-Name", "redis py"};
    local_checkv(4, sp, &lc,
                 "-ERR Lib-Name cannot contain spaces, newlines or special characters.\r\n");
    const char *nl[] = {"CLIENT", "SETINFO", "x\r\ny", "v"};
    local_checkv(4, nl, &lc, "-ERR Unrecognized option 'x  y'\r\n");
    const char *empty[] = {"CLIENT", "SETINFO", "lib-ver", ""};
    local_checkv(4, empty, &lc, "+OK\r\n");

    local_check("CLIENT NO-EVICT on", &lc, "+OK\r\n");
    local_check("CLIENT NO-EVICT OFF", &lc, "+OK\r\n");
    local_check("CLIENT NO-EVICT x", &lc, "-ERR syntax error\r\n");
    local_check("CLIENT NO-TOUCH on", &lc, "+OK\r\n");
    CHECK_EQ_INT(local_check("CLIENT NO-EVICT", &lc, ""), 0);
    CHECK_ERR("wrong number of arguments for 'client|no-evict' command");
    local_check("CLIENT REPLY on", &lc, "+OK\r\n");
    local_check("CLIENT REPLY x", &lc, "-ERR syntax error\r\n");
    local_check("CLIENT REPLY OFF", &lc,
                "-ERR CLIENT REPLY OFF and SKIP are not supported through the proxy\r\n");
    local_check("CLIENT REPLY skip", &lc,
                "-ERR CLIENT REPLY OFF and SKIP are not supported through the proxy\r\n");
    struct buf out;
    buf_init(&out);
    char b[256];
    parse_words("CLIENT HELP", b, sizeof(b));
    CHECK_EQ_INT(redis_local(&out, (uint8_t *)b, &rq, &lc), 1);
    CHECK(redis_rsp_parse(out.data, out.len, 0, &rs) == PARSE_OK && rs.len == out.len &&
          rs.type == '*' && rs.elems.n > 10);
    buf_free(&out);
    buf_free(&lc.name);
}

/* INFO (the core's, from its figures), RESET, PING and what else a subscriber may send. */
static void test_local_session(void)
{
    struct local_ctx lc = lctx(NULL, 0);
    CHECK_EQ_INT(local_check("INFO keyspace", &lc, ""), 0);
    CHECK(rq.route == ROUTE_ANY && rq.facts); /* the core asks a live server, then answers */
    /* the core's text wrapped as redis-server 7.0 wraps INFO keyspace: $44 / =48 txt: */
    const char *ks = "# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n";
    struct buf out;
    buf_init(&out);
    CHECK_EQ_INT(proto_redis.text_reply(&out, (const uint8_t *)ks, strlen(ks), 2), 0);
    CHECK_MEM(out.data, out.len, "$44\r\n# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n\r\n");
    buf_reset(&out);
    CHECK_EQ_INT(proto_redis.text_reply(&out, (const uint8_t *)ks, strlen(ks), 3), 0);
    CHECK_MEM(out.data, out.len, "=48\r\ntxt:# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n\r\n");
    buf_free(&out);

    /* subscribed, RESP2: PING is a message, most commands are refused, as in redis */
    lc.resp = 2;
    lc.subscribed = true;
    local_check("PING", &lc, "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    local_check("PING hi", &lc, "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");
    const char *refused[] = {"GET k", "HELLO 3", "CLIENT ID", "MULTI", "SCAN 0", "INFO"};
    const char *names[] = {"get", "hello", "client|id", "multi", "scan", "info"};
    for (int i = 0; i < 6; i++) {
        char want[256];
        snprintf(want, sizeof(want),
                 "-ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
                 "RESET are allowed in this context\r\n",
                 names[i]);
        CHECK_EQ_INT(local_check(refused[i], &lc, want), 1);
    }
    const char *allowed[] = {"SUBSCRIBE a", "PSUBSCRIBE a*", "UNSUBSCRIBE", "PUNSUBSCRIBE x"};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(local_check(allowed[i], &lc, ""), 0);
    }
    CHECK_EQ_INT(local_check("FOO", &lc, ""), 0); /* unknown: the core answers rq.err */
    CHECK_EQ_INT(local_check("QUIT", &lc, "+OK\r\n"), 1);
    /* subscribed, RESP3: anything goes, PING answers as usual */
    lc.resp = 3;
    CHECK_EQ_INT(local_check("GET k", &lc, ""), 0);
    local_check("PING", &lc, "+PONG\r\n");
    local_check("PING hi", &lc, "$2\r\nhi\r\n");

    /* RESET: as a new connection (redis-server 7.0 answers +RESET) */
    local_check("CLIENT SETNAME n", &lc, "+OK\r\n");
    CHECK_EQ_INT(local_check("RESET", &lc, "+RESET\r\n"), 1);
    CHECK(!lc.subscribed && lc.resp == 2 && lc.name.len == 0);
    struct local_ctx pw = lctx("secret", 0);
    CHECK_EQ_INT(local_check("RESET", &pw, "+RESET\r\n"), 1); /* allowed before AUTH */
    local_check("AUTH secret", &pw, "+OK\r\n");
    local_check("RESET", &pw, "+RESET\r\n");
    CHECK(!pw.authed); /* redis: NOAUTH again after RESET */
    local_check("GET k", &pw, "-NOAUTH Authentication required.\r\n");
    buf_free(&lc.name);
}

static void test_auth(void)
{
    struct local_ctx lc = lctx("secret", 0);
    CHECK_EQ_INT(local_check("GET k", &lc, "-NOAUTH Authentication required.\r\n"), 1);
    CHECK_EQ_INT(local_check("PING", &lc, "-NOAUTH Authentication required.\r\n"), 1);
    CHECK_EQ_INT(local_check("COMMAND", &lc, "-NOAUTH Authentication required.\r\n"), 1);
    /* redis: an unknown command and a wrong arity before NOAUTH, then NOAUTH, and a
     * refusal of the proxy's own only after it (redis would refuse it logged out) */
    CHECK_EQ_INT(local_check("FOO x", &lc, ""), 0);
    CHECK_EQ_INT(local_check("GET", &lc, ""), 0);
    CHECK_EQ_INT(local_check("CONFIG GET x", &lc, "-NOAUTH Authentication required.\r\n"), 1);
    CHECK_EQ_INT(local_check("BLPOP a 0", &lc, "-NOAUTH Authentication required.\r\n"), 1);
    CHECK_EQ_INT(local_check("INFO", &lc, "-NOAUTH Authentication required.\r\n"), 1);
    CHECK_EQ_INT(local_check("CLIENT ID", &lc, "-NOAUTH Authentication required.\r\n"), 1);
    CHECK_EQ_INT(local_check("KEYS *", &lc, "-NOAUTH Authentication required.\r\n"), 1);
    local_check("HELLO 2", &lc,
                "-NOAUTH HELLO must be called with the client already authenticated, otherwise "
                "the HELLO AUTH <user> <pass> option can be used to authenticate the "
                "client and select the RESP protocol version at the same time\r\n");
    CHECK_EQ_INT(local_check("AUTH wrong", &lc, "-ERR invalid password\r\n"), 1);
    CHECK(!lc.authed);
    CHECK_EQ_INT(local_check("AUTH secretx", &lc, "-ERR invalid password\r\n"), 1);
    CHECK_EQ_INT(local_check("AUTH bob secret", &lc, "-ERR invalid password\r\n"), 1);
    CHECK(!lc.authed);
    /* each refusal counted for the caller, with the user it named */
    CHECK_EQ_INT(lc.refused, 3);
    CHECK_MEM(lc.refused_user, strlen(lc.refused_user), "bob");
    local_check("AUTH a b c", &lc, "-ERR syntax error\r\n");
    CHECK_EQ_INT(lc.refused, 3); /* a syntax error is no login */
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
    CHECK(lc2.refused == 1 && strcmp(lc2.refused_user, "default") == 0);
    CHECK_EQ_INT(local_check("HELLO 2 AUTH default secret SETNAME x", &lc2, NULL), 1);
    CHECK(lc2.authed);
    CHECK_MEM(lc2.name.data, lc2.name.len, "x");
    buf_free(&lc2.name);
    struct local_ctx lc3 = lctx("secret", 0);
    CHECK_EQ_INT(local_check("QUIT", &lc3, "+OK\r\n"), 1);

    struct local_ctx none = lctx(NULL, 0);
    local_check("AUTH x", &none, "-ERR Client sent AUTH, but no password is set\r\n");
    CHECK(!none.authed && none.refused == 0); /* nothing to guess: no failed login */
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
    /* a connection for RESP3 clients: HELLO 3 after AUTH, one reply each */
    CHECK_EQ_INT(redis_conn_init(&out, NULL, 0, 0, 3), 1);
    CHECK_MEM(out.data, out.len, "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n");
    buf_reset(&out);
    CHECK_EQ_INT(redis_conn_init(&out, "pw", 2, 1, 3), 3);
    CHECK_MEM(out.data, out.len,
              "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"
              "*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n");
    /* the core's own requests */
    buf_reset(&out);
    const uint8_t *argv[] = {(const uint8_t *)"SUBSCRIBE", (const uint8_t *)"a\r\nb"};
    size_t lens[] = {9, 4};
    CHECK_EQ_INT(redis_build(&out, 2, argv, lens), 0);
    CHECK_MEM(out.data, out.len, "*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\na\r\nb\r\n");
    CHECK(proto_redis.req_parse == redis_req_parse && proto_redis.local == redis_local);
    CHECK(proto_redis.cursor_request == redis_cursor_request &&
          proto_redis.sub_reply == redis_sub_reply && proto_redis.build == redis_build);
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
    test_req_blocking();
    test_req_inline();
    test_req_routes();
    test_req_errors();
    test_req_key_too_long();
    test_req_incremental();
    test_req_pipeline();
    test_req_hint_cost();
    test_table();
    test_twemproxy_commands();
    test_getkeys_vectors();
    test_fixed_key_is_the_walks_key();
    test_rejected_is_a_reason();
    test_rsp_shapes();
    test_rsp_errors();
    test_rsp_deep();
    test_rsp_resp3();
    test_rsp_push();
    test_sub_reply();
    test_cursor();
    test_frag_build();
    test_merge();
    test_merge_all();
    test_local();
    test_local_command();
    test_local_hello();
    test_local_client();
    test_local_session();
    test_auth();
    test_error_reply_conn_init();
    req_info_free(&rq);
    rsp_info_free(&rs);
    UNIT_DONE("test_redis");
}
