/*
 * test_memcache: the memcached ASCII protocol, byte for byte: request parsing
 * (whole, byte at a time, pipelined), rejects and what they consume, response
 * parsing per command kind, fragment building and merging, local answers.
 */
#include <stdlib.h>
#include <string.h>

#include "proto/memcache.h"
#include "proto/memcache_int.h"
#include "proto/proto.h"
#include "unit.h"

static const struct proto *P = &proto_memcache;

/* Parse a NUL-free request string whole. */
static int req(const char *s, struct req_info *info)
{
    info->scanned = 0; /* each call here parses other bytes (proto.h) */
    return P->req_parse((const uint8_t *)s, strlen(s), info);
}

static void check_span(const char *msg, const struct span *sp, const char *want)
{
    CHECK_MEM(msg + sp->off, sp->len, want);
}

/* Parse s, expect PARSE_OK with the given route, cmd and whole length. */
static void req_ok(const char *s, int route, int cmd, struct req_info *info)
{
    int rc = req(s, info);
    CHECK_EQ_INT(rc, PARSE_OK);
    CHECK_EQ_INT(info->route, route);
    CHECK_EQ_INT(info->cmd, cmd);
    CHECK_EQ_INT(info->len, strlen(s));
}

/* Expect a reject answering err after consuming `consumed` bytes of s. */
static void req_reject(const char *s, size_t consumed, const char *err)
{
    struct req_info info;
    req_info_init(&info);
    int rc = req(s, &info);
    CHECK_EQ_INT(rc, PARSE_OK);
    CHECK_EQ_INT(info.route, ROUTE_REJECT);
    CHECK_EQ_INT(info.len, consumed);
    CHECK(strcmp(info.err, err) == 0);
    if (strcmp(info.err, err) != 0) {
        fprintf(stderr, "  for %.60s: err \"%s\"\n", s, info.err);
    }
    CHECK_EQ_INT(info.noreply, 0);
    req_info_free(&info);
}

static void req_fatal(const char *s, const char *err)
{
    struct req_info info;
    req_info_init(&info);
    CHECK_EQ_INT(req(s, &info), PARSE_ERROR);
    CHECK(strcmp(info.err, err) == 0);
    req_info_free(&info);
}

/* A web request: a line that names no command and ends in HTTP/..; closed
 * without an answer, as memcached does (h50). */
static void test_web_request(void)
{
    const char *web[] = {"POST / HTTP/1.1\r\n", "GET /x HTTP/1.0  \r\n", "HTTP/1.1\r\n"};
    struct req_info info;
    req_info_init(&info);
    for (size_t i = 0; i < sizeof(web) / sizeof(web[0]); i++) {
        CHECK_EQ_INT(req(web[i], &info), PARSE_ERROR);
        CHECK(info.err_wire && info.wire.len == 0);
    }
    CHECK_EQ_INT(req("get a HTTP/1.1\r\n", &info), PARSE_OK); /* a command: its keys */
    CHECK(!info.err_wire);
    req_info_free(&info);
    req_reject("Host: x\r\n", 9, "ERROR");
}

static void test_retrieval(void)
{
    struct req_info info;
    req_info_init(&info);

    req_ok("get foo\r\n", ROUTE_KEY, MC_CMD_GET, &info);
    CHECK_EQ_INT(info.keys.n, 1);
    check_span("get foo\r\n", &info.keys.v[0], "foo");
    CHECK(info.readonly);
    CHECK(!info.noreply);

    const char *multi = "get a bb  ccc\r\n";
    req_ok(multi, ROUTE_SPLIT, MC_CMD_GET, &info);
    CHECK_EQ_INT(info.keys.n, 3);
    check_span(multi, &info.keys.v[0], "a");
    check_span(multi, &info.keys.v[1], "bb");
    check_span(multi, &info.keys.v[2], "ccc");
    CHECK_EQ_INT(info.args.n, 4);
    check_span(multi, &info.args.v[0], "get");

    req_ok("gets k\n", ROUTE_KEY, MC_CMD_GETS, &info); /* bare LF, as memcached allows */
    req_ok("gets a a\r\n", ROUTE_SPLIT, MC_CMD_GETS, &info);
    req_ok(" get k\r\n", ROUTE_KEY, MC_CMD_GET, &info);

    const char *gat = "gat 100 x y\r\n";
    req_ok(gat, ROUTE_SPLIT, MC_CMD_GAT, &info);
    CHECK_EQ_INT(info.keys.n, 2);
    check_span(gat, &info.keys.v[0], "x");
    check_span(gat, &info.keys.v[1], "y");
    CHECK(!info.readonly);
    req_ok("gats -1 x\r\n", ROUTE_KEY, MC_CMD_GATS, &info);
    CHECK_EQ_INT(info.keys.n, 1);

    req_info_free(&info);
}

static void test_storage(void)
{
    static const struct {
        const char *s;
        int cmd;
        bool noreply;
    } cases[] = {
        {"set k 0 0 5\r\nhello\r\n", MC_CMD_SET, false},
        {"add k 1 2 0\r\n\r\n", MC_CMD_ADD, false},
        {"replace k 4294967295 -1 3 noreply\r\nabc\r\n", MC_CMD_REPLACE, true},
        {"append k 0 0 4\r\na\r\nb\r\n", MC_CMD_APPEND, false},
        {"prepend k 0 0 1 noreply\r\nx\r\n", MC_CMD_PREPEND, true},
        {"cas k 0 0 2 12345\r\nhi\r\n", MC_CMD_CAS, false},
        {"cas k 0 0 2 12345 noreply\r\nhi\r\n", MC_CMD_CAS, true},
        /* memcached ignores a word other than noreply in that place */
        {"set k 0 0 1 foo\r\na\r\n", MC_CMD_SET, false},
        {"set k +0 0 +1\r\na\r\n", MC_CMD_SET, false},
    };
    struct req_info info;
    req_info_init(&info);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        req_ok(cases[i].s, ROUTE_KEY, cases[i].cmd, &info);
        CHECK_EQ_INT(info.noreply, cases[i].noreply);
        CHECK_EQ_INT(info.keys.n, 1);
        check_span(cases[i].s, &info.keys.v[0], "k");
        CHECK(!info.readonly);
    }
    /* the hint: total bytes once the header is known */
    const char *s = "set k 0 0 10\r\n0123";
    CHECK_EQ_INT(req(s, &info), PARSE_AGAIN);
    CHECK_EQ_INT(info.len, 14 + 12);
    CHECK_EQ_INT(req("set k 0 0 10\r", &info), PARSE_AGAIN);
    CHECK_EQ_INT(info.len, 14); /* the line is not ended: one byte more at least */
    req_info_free(&info);
}

static void test_other_commands(void)
{
    static const struct {
        const char *s;
        int route;
        int cmd;
        bool noreply;
        int nkeys;
    } cases[] = {
        {"incr k 1\r\n", ROUTE_KEY, MC_CMD_INCR, false, 1},
        {"decr k 18446744073709551615 noreply\r\n", ROUTE_KEY, MC_CMD_DECR, true, 1},
        {"incr k 1 2\r\n", ROUTE_KEY, MC_CMD_INCR, false, 1},
        {"delete k\r\n", ROUTE_KEY, MC_CMD_DELETE, false, 1},
        {"delete k 0\r\n", ROUTE_KEY, MC_CMD_DELETE, false, 1},
        {"delete k noreply\r\n", ROUTE_KEY, MC_CMD_DELETE, true, 1},
        {"delete k 0 noreply\r\n", ROUTE_KEY, MC_CMD_DELETE, true, 1},
        /* a key named noreply: memcached answers it (h48) */
        {"delete noreply\r\n", ROUTE_KEY, MC_CMD_DELETE, false, 1},
        {"delete noreply noreply\r\n", ROUTE_KEY, MC_CMD_DELETE, true, 1},
        {"touch k 10\r\n", ROUTE_KEY, MC_CMD_TOUCH, false, 1},
        {"touch k -1 noreply\r\n", ROUTE_KEY, MC_CMD_TOUCH, true, 1},
        {"mg k v t f\r\n", ROUTE_KEY, MC_CMD_MG, false, 1},
        {"ms k 2 T0 F5\r\nhi\r\n", ROUTE_KEY, MC_CMD_MS, false, 1},
        {"ms k 0\r\n\r\n", ROUTE_KEY, MC_CMD_MS, false, 1},
        {"md k I\r\n", ROUTE_KEY, MC_CMD_MD, false, 1},
        {"ma k D5 MD v\r\n", ROUTE_KEY, MC_CMD_MA, false, 1},
        {"me k\r\n", ROUTE_KEY, MC_CMD_ME, false, 1},
        {"mn\r\n", ROUTE_LOCAL, MC_CMD_MN, false, 0},
        {"mn x\r\n", ROUTE_LOCAL, MC_CMD_MN, false, 0},
        {"version\r\n", ROUTE_ANY, MC_CMD_VERSION, false, 0},
        {"version x y\r\n", ROUTE_ANY, MC_CMD_VERSION, false, 0},
        {"stats\r\n", ROUTE_ALL, MC_CMD_STATS, false, 0},
        {"stats \r\n", ROUTE_ALL, MC_CMD_STATS, false, 0}, /* memcstat's */
        {"stats reset\r\n", ROUTE_ALL, MC_CMD_STATS, false, 0},
        {"stats detail on\r\n", ROUTE_ALL, MC_CMD_STATS, false, 0},
        {"stats detail dump\r\n", ROUTE_ALL, MC_CMD_STATS, false, 0},
        {"stats cachedump 1 0\r\n", ROUTE_ALL, MC_CMD_STATS, false, 0},
        {"stats settings\r\n", ROUTE_ANY, MC_CMD_STATS, false, 0},
        {"stats items\r\n", ROUTE_ANY, MC_CMD_STATS, false, 0},
        {"stats slabs\r\n", ROUTE_ANY, MC_CMD_STATS, false, 0},
        {"stats foo noreply\r\n", ROUTE_ANY, MC_CMD_STATS, false, 0},
        {"gat 10\r\n", ROUTE_KEY, MC_CMD_GAT, false, 0}, /* an empty gat: END */
        {"quit\r\n", ROUTE_LOCAL, MC_CMD_QUIT, false, 0},
        {"flush_all\r\n", ROUTE_ALL, MC_CMD_FLUSH_ALL, false, 0},
        {"flush_all 10\r\n", ROUTE_ALL, MC_CMD_FLUSH_ALL, false, 0},
        {"flush_all noreply\r\n", ROUTE_ALL, MC_CMD_FLUSH_ALL, true, 0},
        {"flush_all -5 noreply\r\n", ROUTE_ALL, MC_CMD_FLUSH_ALL, true, 0},
        {"flush_all 0 0\r\n", ROUTE_ALL, MC_CMD_FLUSH_ALL, false, 0},
        {"verbosity 1\r\n", ROUTE_ALL, MC_CMD_VERBOSITY, false, 0},
        {"verbosity 1 noreply\r\n", ROUTE_ALL, MC_CMD_VERBOSITY, true, 0},
        /* the servers judge the level, as each would alone */
        {"verbosity x\r\n", ROUTE_ALL, MC_CMD_VERBOSITY, false, 0},
        {"verbosity -0\r\n", ROUTE_ALL, MC_CMD_VERBOSITY, false, 0},
        {"verbosity noreply\r\n", ROUTE_ALL, MC_CMD_VERBOSITY, true, 0},
        {"verbosity 1 foo\r\n", ROUTE_ALL, MC_CMD_VERBOSITY, false, 0},
    };
    struct req_info info;
    req_info_init(&info);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        req_ok(cases[i].s, cases[i].route, cases[i].cmd, &info);
        CHECK_EQ_INT(info.noreply, cases[i].noreply);
        CHECK_EQ_INT(info.keys.n, cases[i].nkeys);
        CHECK_EQ_INT(info.quit, cases[i].cmd == MC_CMD_QUIT);
        /* the stats of the servers that serve; a flush or a verbosity must reach all */
        CHECK_EQ_INT(info.live_only, cases[i].cmd == MC_CMD_STATS && cases[i].route == ROUTE_ALL);
    }
    req_ok("mg k v\r\n", ROUTE_KEY, MC_CMD_MG, &info);
    CHECK(info.readonly);
    req_ok("mg k v T30\r\n", ROUTE_KEY, MC_CMD_MG, &info);
    CHECK(!info.readonly); /* touches the TTL */
    req_ok("mg k v N30\r\n", ROUTE_KEY, MC_CMD_MG, &info);
    CHECK(!info.readonly);
    req_info_free(&info);
}

static char *repeat(char c, size_t n, const char *before, const char *after)
{
    size_t bl = strlen(before), al = strlen(after);
    char *s = malloc(bl + n + al + 1);
    memcpy(s, before, bl);
    memset(s + bl, c, n);
    memcpy(s + bl + n, after, al + 1);
    return s;
}

static void test_key_length(void)
{
    struct req_info info;
    req_info_init(&info);
    char *ok = repeat('k', 250, "get ", "\r\n");
    req_ok(ok, ROUTE_KEY, MC_CMD_GET, &info);
    CHECK_EQ_INT(info.keys.v[0].len, 250);
    char *bad = repeat('k', 251, "get a ", "\r\n");
    req_reject(bad, strlen(bad), "CLIENT_ERROR bad command line format");
    char *set_ok = repeat('k', 250, "set ", " 0 0 1\r\na\r\n");
    req_ok(set_ok, ROUTE_KEY, MC_CMD_SET, &info);
    /* a rejected header leaves its data block to be read as the next line,
     * as memcached does */
    char *set_bad = repeat('k', 251, "set ", " 0 0 1\r\na\r\n");
    req_reject(set_bad, strlen(set_bad) - 3, "CLIENT_ERROR bad command line format");
    char *ms_bad = repeat('k', 251, "ms ", " 1\r\na\r\n");
    req_reject(ms_bad, strlen(ms_bad) - 3, "CLIENT_ERROR bad command line format");
    char *mg_bad = repeat('k', 251, "mg ", " v\r\n");
    req_reject(mg_bad, strlen(mg_bad), "CLIENT_ERROR bad command line format");
    free(ok);
    free(bad);
    free(set_ok);
    free(set_bad);
    free(ms_bad);
    free(mg_bad);
    req_info_free(&info);
}

static void test_rejects(void)
{
    req_reject("bogus\r\nget a\r\n", 7, "ERROR");
    req_reject("GET a\r\n", 7, "ERROR"); /* names are case-sensitive */
    req_reject("\r\n", 2, "ERROR");
    req_reject("   \r\n", 5, "ERROR");
    req_reject("get\r\n", 5, "ERROR");
    req_reject("gat\r\n", 5, "ERROR");
    req_reject("gat x k\r\n", 9, "CLIENT_ERROR invalid exptime argument");
    req_reject("set k 0 0\r\n", 11, "ERROR");
    /* no usable length: only the line goes, as in memcached */
    req_reject("set k 0 0 -1\r\nab\r\n", 14, "CLIENT_ERROR bad command line format");
    req_reject("set k 0 0 x\r\nab\r\n", 13, "CLIENT_ERROR bad command line format");
    /* a usable length, but memcached reads a refused header's block as the
     * next command line (proto_text.c): only the line goes */
    req_reject("set k x 0 1\r\na\r\n", 13, "CLIENT_ERROR bad command line format");
    req_reject("set k -1 0 1\r\na\r\n", 14, "CLIENT_ERROR bad command line format");
    req_reject("set k 0 x 1\r\na\r\n", 13, "CLIENT_ERROR bad command line format");
    req_reject("set k 0 0 1 noreply x\r\na\r\n", 23, "ERROR");
    req_reject("cas k 0 0 1\r\na\r\n", 13, "ERROR");
    req_reject("cas k 0 0 1 -1\r\na\r\n", 16, "CLIENT_ERROR bad command line format");
    req_reject("set k 0 0 1\r\nabc\r\n", 16, "CLIENT_ERROR bad data chunk");
    req_reject("incr k x\r\n", 10, "CLIENT_ERROR invalid numeric delta argument");
    req_reject("incr k -1\r\n", 11, "CLIENT_ERROR invalid numeric delta argument");
    req_reject("incr k 18446744073709551616\r\n", 29,
               "CLIENT_ERROR invalid numeric delta argument");
    req_reject("incr k\r\n", 8, "ERROR");
    req_reject("touch k x\r\n", 11, "CLIENT_ERROR invalid exptime argument");
    req_reject("touch k\r\n", 9, "ERROR");
    req_reject("delete\r\n", 8, "ERROR");
    req_reject("delete k 1\r\n", 12,
               "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
    req_reject("delete k 0 noreply x\r\n", 22, "ERROR"); /* tokens are counted first */
    /* delete's words after the key are judged before the key (h48) */
    char *del_long = repeat('k', 251, "delete ", " 5\r\n");
    req_reject(del_long, strlen(del_long),
               "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
    free(del_long);
    del_long = repeat('k', 251, "delete ", " 0\r\n");
    req_reject(del_long, strlen(del_long), "CLIENT_ERROR bad command line format");
    free(del_long);
    req_reject("incr k x y z\r\n", 14, "ERROR");
    req_reject("verbosity foo bar my\r\n", 22, "ERROR");
    req_reject("incr k 1 2 noreply\r\n", 20, "ERROR"); /* even with noreply */
    req_reject("flush_all x\r\n", 13, "CLIENT_ERROR invalid exptime argument");
    req_reject("flush_all 1 2 3\r\n", 17, "ERROR");
    req_reject("verbosity\r\n", 11, "ERROR");
    req_reject("verbosity 1 2 3\r\n", 17, "ERROR");
    req_reject("mg\r\n", 4, "ERROR");
    req_reject("me\r\n", 4, "CLIENT_ERROR bad command line format");
    req_reject("ms k\r\n", 6, "CLIENT_ERROR bad command line format");
    req_reject("ms k x\r\nhi\r\n", 8, "CLIENT_ERROR bad command line format");
    req_reject("ms k 2\r\nhix\r\n", 12, "CLIENT_ERROR bad data chunk");
    req_reject("mg k v q q\r\n", 12, "CLIENT_ERROR duplicate flag");
    req_reject("ms k 1 q q\r\na\r\n", 15, "CLIENT_ERROR duplicate flag");
    req_reject("md k q T0 q\r\n", 13, "CLIENT_ERROR invalid or duplicate flag");
    req_reject("ma k q qx\r\n", 11, "CLIENT_ERROR invalid or duplicate flag");
    /* 24 tokens is the most a line other than a retrieval may have */
    char flags[128] = "mg k";
    for (int i = 0; i < 22; i++) {
        strcat(flags, " v");
    }
    strcat(flags, "\r\n");
    struct req_info fi;
    req_info_init(&fi);
    CHECK_EQ_INT(req(flags, &fi), PARSE_OK);
    CHECK_EQ_INT(fi.route, ROUTE_KEY);
    CHECK_EQ_INT(fi.args.n, 24);
    req_info_free(&fi);
    strcpy(flags + strlen(flags) - 2, " v\r\n");
    req_reject(flags, strlen(flags), "CLIENT_ERROR options flags are too long");
    const char *many = "set k 0 0 1 a c d e f g h i j k l m n o p r s t u v w x y z\r\na\r\n";
    req_reject(many, strlen(many) - 3, "ERROR"); /* "a" is the next line */
    /* a reject leaves the stream in sync: the next request parses */
    struct req_info info;
    req_info_init(&info);
    const char *two = "set k x 0 1\r\na\r\nget k\r\n";
    CHECK_EQ_INT(req(two, &info), PARSE_OK);
    CHECK_EQ_INT(info.len, 13);
    CHECK_EQ_INT(req(two + 13, &info), PARSE_OK);
    CHECK_EQ_INT(info.route, ROUTE_REJECT); /* "a": memcached's ERROR */
    CHECK(strcmp(info.err, "ERROR") == 0);
    CHECK_EQ_INT(req(two + 16, &info), PARSE_OK);
    CHECK_EQ_INT(info.route, ROUTE_KEY);
    /* a rejected header does not wait for a data block */
    CHECK_EQ_INT(req("set k x 0 5\r\nab", &info), PARSE_OK);
    CHECK_EQ_INT(info.len, 13);
    /* an ms refused after its length: memcached reads and drops the block */
    CHECK_EQ_INT(req("ms k 5 q q\r\nab", &info), PARSE_AGAIN);
    CHECK_EQ_INT(info.len, 12 + 7);
    req_info_free(&info);
}

/* memcached answers nothing at all to a noreply request it refuses (its last
 * token is noreply): the request is consumed and answered by nothing. */
static void req_silent(const char *s, size_t consumed)
{
    struct req_info info;
    struct buf out;
    req_info_init(&info);
    buf_init(&out);
    CHECK_EQ_INT(req(s, &info), PARSE_OK);
    CHECK_EQ_INT(info.route, ROUTE_LOCAL);
    CHECK_EQ_INT(info.len, consumed);
    CHECK(info.noreply && info.keys.n == 0);
    CHECK_EQ_INT(P->local(&out, (const uint8_t *)s, &info, NULL), 0);
    CHECK_EQ_INT(out.len, 0);
    buf_free(&out);
    req_info_free(&info);
}

static void test_noreply_errors(void)
{
    req_silent("incr k x noreply\r\nget k\r\n", 18);
    req_silent("touch k x noreply\r\n", 19);
    req_silent("delete k x noreply\r\n", 20);
    req_silent("flush_all x noreply\r\n", 21);
    req_silent("set k 0 0 noreply\r\n", 19);
    req_silent("set k 0 0 1 noreply\r\nab\r\n", 24);
    req_silent("set k x 0 1 noreply\r\na\r\n", 21); /* "a" is the next line */
    char *longkey = repeat('k', 251, "decr ", " 1 noreply\r\n");
    req_silent(longkey, strlen(longkey));
    free(longkey);
    longkey = repeat('k', 251, "delete ", " noreply\r\n");
    req_silent(longkey, strlen(longkey));
    free(longkey);
    /* noreply elsewhere than last is not memcached's noreply */
    req_reject("delete k noreply 0\r\n", 20,
               "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
    struct req_info info;
    req_info_init(&info);
    req_ok("get k noreply\r\n", ROUTE_SPLIT, MC_CMD_GET, &info); /* a key named noreply */
    CHECK(!info.noreply);
    req_info_free(&info);
}

/* memcached reads a command line as a C string: the command ends at a NUL
 * and the rest of the line is ignored, so the proxy counts the replies the
 * server will send for the line it will read. */
static void test_nul_ends_the_command(void)
{
    struct req_info info;
    req_info_init(&info);
    static const char del[] = "delete k\0 noreply\r\nget k\r\n";
    CHECK_EQ_INT(P->req_parse((const uint8_t *)del, sizeof(del) - 1, &info), PARSE_OK);
    CHECK_EQ_INT(info.cmd, MC_CMD_DELETE);
    CHECK_EQ_INT(info.len, 19);
    CHECK(!info.noreply); /* memcached answers it: noreply came after the NUL */
    static const char set[] = "set k 0 0 5\0 junk\r\nhello\r\n";
    CHECK_EQ_INT(P->req_parse((const uint8_t *)set, sizeof(set) - 1, &info), PARSE_OK);
    CHECK_EQ_INT(info.cmd, MC_CMD_SET);
    CHECK_EQ_INT(info.route, ROUTE_KEY);
    CHECK_EQ_INT(info.len, sizeof(set) - 1); /* the data block is its own */
    static const char ver[] = "version\0x\r\n";
    CHECK_EQ_INT(P->req_parse((const uint8_t *)ver, sizeof(ver) - 1, &info), PARSE_OK);
    CHECK_EQ_INT(info.cmd, MC_CMD_VERSION);
    CHECK_EQ_INT(info.len, sizeof(ver) - 1);
    /* a NUL in the key: "set k" has no length, so no data block follows
     * (memcached answers ERROR, then reads the block as a command) */
    static const char key[] = "set k\0z 0 0 1\r\nx\r\n";
    CHECK_EQ_INT(P->req_parse((const uint8_t *)key, sizeof(key) - 1, &info), PARSE_OK);
    CHECK_EQ_INT(info.route, ROUTE_REJECT);
    CHECK_EQ_INT(info.len, 15);
    CHECK(strcmp(info.err, "ERROR") == 0);
    static const char get[] = "get a b\0 c\r\n";
    CHECK_EQ_INT(P->req_parse((const uint8_t *)get, sizeof(get) - 1, &info), PARSE_OK);
    CHECK_EQ_INT(info.keys.n, 2);
    req_info_free(&info);
}

/* Numbers as memcached's safe_strtoull / safe_strtol read a token. */
static void test_number_tokens(void)
{
    static const struct {
        const char *tok;
        bool u_ok, i_ok;
        uint64_t u;
        int64_t i;
    } cases[] = {
        {"7", true, true, 7, 7},
        {"+7", true, true, 7, 7},
        {"-0", true, true, 0, 0},
        {"-1", false, true, 0, -1},
        {"1\t", true, true, 1, 1},
        {"\t\v1", true, true, 1, 1},
        {"1\rX", true, true, 1, 1},
        {"1\f-", true, true, 1, 1},
        {"1x", false, false, 0, 0},
        {"", false, false, 0, 0},
        {"\t", false, false, 0, 0},
        {"-", false, false, 0, 0},
        {"+-1", false, false, 0, 0},
        {"18446744073709551615", true, false, UINT64_MAX, 0},
        {"18446744073709551616", false, false, 0, 0},
        {"-9223372036854775808", false, true, 0, INT64_MIN},
        {"-9223372036854775809", true, false, 9223372036854775807ull, 0}, /* strtoull wraps it */
        {"9223372036854775808", true, false, 9223372036854775808ull, 0},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const uint8_t *t = (const uint8_t *)cases[k].tok;
        size_t n = strlen(cases[k].tok);
        uint64_t u = 0;
        int64_t i = 0;
        bool uo = mc_token_u64(t, n, &u), io = mc_token_i64(t, n, &i);
        CHECK(uo == cases[k].u_ok && (!uo || u == cases[k].u));
        CHECK(io == cases[k].i_ok && (!io || i == cases[k].i));
        if (uo != cases[k].u_ok || io != cases[k].i_ok) {
            fprintf(stderr, "  token %zu: u %d i %d\n", k, uo, io);
        }
    }
    /* through the parser: the length with a tab after it frames one byte */
    struct req_info info;
    req_info_init(&info);
    req_ok("set k 0 0 1\t\r\nx\r\n", ROUTE_KEY, MC_CMD_SET, &info);
    req_ok("set k -0 0 -0\r\n\r\n", ROUTE_KEY, MC_CMD_SET, &info);
    req_info_free(&info);
}

static void test_binary(void)
{
    /* a binary protocol header (magic 0x80): no line end awaited, but the whole
     * header, as memcached reads it (it may come in pieces) */
    static const char getk[] = "\x80\x0c\x00\x01\x00\x00\x00\x00";
    struct req_info info;
    req_info_init(&info);
    CHECK_EQ_INT(P->req_parse((const uint8_t *)getk, 1, &info), PARSE_AGAIN);
    CHECK_EQ_INT(info.len, 24);
    CHECK_EQ_INT(P->req_parse((const uint8_t *)getk, sizeof(getk) - 1, &info), PARSE_AGAIN);
    CHECK_EQ_INT(info.len, 24);
    /* a whole header (GET, key "k", opaque 0xdeadbeef) is answered in its protocol: a
     * response of its opcode and opaque, status 0x84 "internal error", the words as value */
    static const uint8_t hdr[25] = {0x80, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
                                    0x00, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00,
                                    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 'k'};
    CHECK_EQ_INT(P->req_parse(hdr, sizeof(hdr), &info), PARSE_ERROR);
    CHECK(info.err_wire && info.wire.len == 24 + 50);
    const uint8_t *w = info.wire.data;
    CHECK(w[0] == 0x81 && w[1] == 0x00 && w[6] == 0x00 && w[7] == 0x84 && w[11] == 50);
    CHECK(memcmp(w + 12, hdr + 12, 4) == 0);
    CHECK_MEM((const char *)w + 24, 50, "binary protocol is not supported through the proxy");
    /* libmemcached's gets (GETK, GETKQ, GATK, GATKQ), the other quiet gets and
     * QUITQ get no response, only the close: libmemcached reads a refused get
     * as a miss */
    uint8_t quiet[25];
    memcpy(quiet, hdr, sizeof(quiet));
    for (unsigned op = 0; op < 0x30; op++) {
        quiet[1] = (uint8_t)op;
        CHECK_EQ_INT(P->req_parse(quiet, sizeof(quiet), &info), PARSE_ERROR);
        bool q = op == 0x09 || op == 0x0c || op == 0x0d || op == 0x17 || op == 0x1e || op == 0x23 ||
                 op == 0x24;
        CHECK(info.err_wire && info.wire.len == (q ? 0u : 24u + 50u));
    }
    /* text after the magic byte is no header (its data type byte is not 0) */
    CHECK_EQ_INT(req("\x80"
                     "bogus and more than twenty-four bytes\r\n",
                     &info),
                 PARSE_ERROR);
    CHECK(!info.err_wire);
    /* a 0x80 byte elsewhere is just a byte */
    req_ok("get \x80k\r\n", ROUTE_KEY, MC_CMD_GET, &info);
    req_info_free(&info);
    /* after a connection's first request, as in memcached, a line that starts with
     * the magic byte is an unknown command */
    req_info_init(&info);
    info.mid_stream = true;
    CHECK_EQ_INT(P->req_parse(hdr, sizeof(hdr), &info), PARSE_AGAIN);
    static const char later[] = "\x80"
                                "bogus\r\n";
    CHECK_EQ_INT(req(later, &info), PARSE_OK);
    CHECK_EQ_INT(info.route, ROUTE_REJECT);
    CHECK(strcmp(info.err, "ERROR") == 0 && info.len == sizeof(later) - 1 && !info.err_wire);
    req_info_free(&info);
}

/* Parse s, expect rc for a data block the core may drop: the answer err, the
 * request sent instead (wire, "" for none), the message's whole length. */
static void req_drop(const char *s, int rc, const char *err, const char *wire, size_t len)
{
    struct req_info info;
    req_info_init(&info);
    CHECK_EQ_INT(req(s, &info), rc);
    CHECK(info.droppable);
    CHECK(strcmp(info.err, err) == 0);
    CHECK_EQ_INT(info.wire.len, strlen(wire));
    if (info.wire.len > 0) { /* an empty buf may have no memory at all */
        CHECK_MEM(info.wire.data, info.wire.len, wire);
    }
    CHECK_EQ_INT(info.len, len);
    req_info_free(&info);
}

static void test_droppable(void)
{
    const char *large = "SERVER_ERROR object too large for cache";
    /* over memcached's largest item at any -I: dropped whatever the core holds;
     * set and ms delete the key as memcached does */
    req_drop("set k 0 0 1073741825\r\n", PARSE_DROP, large, "delete k noreply\r\n",
             22 + 1073741825 + 2);
    req_drop("ms k 2147483645 T0\r\n", PARSE_DROP, large, "delete k noreply\r\n",
             20 + 2147483645ull + 2);
    req_drop("add k 0 0 1073741825\r\n", PARSE_DROP, large, "", 22 + 1073741825 + 2);
    req_drop("cas k 0 0 1073741825 7\r\n", PARSE_DROP, large, "", 24 + 1073741825 + 2);
    /* incomplete: the core drops it if it is over its own limit */
    req_drop("set k 0 0 10\r\nabc", PARSE_AGAIN, large, "delete k noreply\r\n", 14 + 12);
    req_drop("append k 0 0 10\r\nabc", PARSE_AGAIN, large, "", 17 + 12);
    /* a noreply set is answered by nothing, and still deletes */
    struct req_info info;
    req_info_init(&info);
    CHECK_EQ_INT(req("set k 0 0 10 noreply\r\n", &info), PARSE_AGAIN);
    CHECK(info.droppable && info.noreply);
    CHECK_MEM(info.wire.data, info.wire.len, "delete k noreply\r\n");
    /* the header's own error is the answer at once, and nothing is deleted:
     * memcached reads no block after it */
    char *k251 = repeat('k', 251, "set ", " 0 0 10\r\n");
    req_reject(k251, strlen(k251), "CLIENT_ERROR bad command line format");
    free(k251);
    /* an ms refused after its length: its error, the block dropped */
    CHECK_EQ_INT(req("ms k 1073741825 q q\r\n", &info), PARSE_DROP);
    CHECK(info.droppable && strcmp(info.err, "CLIENT_ERROR duplicate flag") == 0);
    CHECK_EQ_INT(info.wire.len, 0);
    /* a length memcached cannot read is its format error, and no block follows */
    req_reject("set k 0 0 2147483646\r\n", 22, "CLIENT_ERROR bad command line format");
    req_reject("ms k 999999999999\r\n", 19, "CLIENT_ERROR bad command line format");
    /* a complete message is not droppable: the core holds it like any other */
    req_ok("set k 0 0 1\r\na\r\n", ROUTE_KEY, MC_CMD_SET, &info);
    CHECK(!info.droppable);
    req_info_free(&info);
}

/* Decode like memcached 1.6, every case as it answered (mg <key> b k). */
static void b64_case(const char *in, const char *want, int want_len)
{
    uint8_t out[MC_B64_KEY_MAX];
    int n = mc_b64_decode((const uint8_t *)in, strlen(in), out, sizeof(out));
    CHECK_EQ_INT(n, want_len);
    if (n == want_len && n > 0) {
        CHECK(memcmp(out, want, (size_t)n) == 0); /* want may hold a NUL */
    }
}

static void test_b64_decode(void)
{
    /* RFC 4648's vectors */
    b64_case("Zg==", "f", 1);
    b64_case("Zm8=", "fo", 2);
    b64_case("Zm9v", "foo", 3);
    b64_case("Zm9vYg==", "foob", 4);
    b64_case("Zm9vYmE=", "fooba", 5);
    b64_case("Zm9vYmFy", "foobar", 6);
    b64_case("+/+/", "\xfb\xff\xbf", 3);
    /* memcached skips bytes outside the alphabet */
    b64_case("Zm!9v", "foo", 3);
    b64_case("Zm.9v", "foo", 3);
    b64_case("Zm9-v", "foo", 3);
    b64_case("Zm9v\x01", "foo", 3);
    /* and stops after the first group with padding, wherever the '=' is */
    b64_case("Zg==Zm9v", "f", 1);
    b64_case("Z=9v", "\x64\x0f", 2);
    b64_case("=Zm9", "\x01\x99", 2);
    b64_case("Zg=a", "\x66\x00", 2);
    /* what it refuses: no symbol, a count not a multiple of four, three '=' */
    b64_case("", "", -1);
    b64_case("!!!!", "", -1);
    b64_case("Zg", "", -1);
    b64_case("Zm9", "", -1);
    b64_case("Zm9_", "", -1);
    b64_case("Zm9v=", "", -1);
    b64_case("Zm9vYQ=", "", -1);
    b64_case("Zm9vY===", "", -1);
    b64_case("Zm9v====", "", -1);
    /* the longest key token decodes within MC_B64_KEY_MAX */
    char *k = repeat('Q', PROTO_MAX_KEY_LEN_MEMCACHE / 4 * 4, "", "");
    uint8_t out[MC_B64_KEY_MAX];
    CHECK_EQ_INT(mc_b64_decode((const uint8_t *)k, strlen(k), out, sizeof(out)), MC_B64_KEY_MAX);
    CHECK_EQ_INT(mc_b64_decode((const uint8_t *)k, strlen(k), out, MC_B64_KEY_MAX - 1), -1);
    free(k);
}

/* A meta request with b goes as it came, routed by the decoded key. */
static void b64_ok(const char *s, int cmd, const char *fwd, const char *key)
{
    struct req_info info;
    req_info_init(&info);
    req_ok(s, ROUTE_KEY, cmd, &info);
    CHECK(info.rewritten);
    CHECK_EQ_INT(info.key_tail, strlen(key));
    CHECK_EQ_INT(info.wire.len, strlen(fwd) + strlen(key));
    if (info.wire.len == strlen(fwd) + strlen(key)) {
        CHECK_MEM(info.wire.data, strlen(fwd), fwd);
        CHECK_EQ_INT(info.keys.n, 1);
        CHECK_EQ_INT(info.keys.v[0].off, strlen(fwd));
        CHECK_MEM(info.wire.data + info.keys.v[0].off, info.keys.v[0].len, key);
    }
    req_info_free(&info);
}

static void test_b64_keys(void)
{
    b64_ok("mg Zm9v b v\r\n", MC_CMD_MG, "mg Zm9v b v\r\n", "foo");
    b64_ok("mg Zm!9v v b k\r\n", MC_CMD_MG, "mg Zm!9v v b k\r\n", "foo");
    b64_ok("ms YSBi 2 b T0\r\nhi\r\n", MC_CMD_MS, "ms YSBi 2 b T0\r\nhi\r\n", "a b");
    b64_ok("md Zm9v b\r\n", MC_CMD_MD, "md Zm9v b\r\n", "foo");
    b64_ok("ma Zm9v b MI\r\n", MC_CMD_MA, "ma Zm9v b MI\r\n", "foo");
    b64_ok("me Zm9v b\r\n", MC_CMD_ME, "me Zm9v b\r\n", "foo");
    /* quiet too: the forwarded request loses its q */
    b64_ok("mg Zm9v b q v\r\n", MC_CMD_MG, "mg Zm9v b v\r\n", "foo");
    b64_ok("ms Zm9v 2 q b\r\nhi\r\n", MC_CMD_MS, "ms Zm9v 2 b\r\nhi\r\n", "foo");
    /* the next request has no tail left over */
    struct req_info info;
    req_info_init(&info);
    CHECK_EQ_INT(req("mg Zm9v b v\r\n", &info), PARSE_OK);
    req_ok("mg foo v\r\n", ROUTE_KEY, MC_CMD_MG, &info);
    CHECK(!info.rewritten);
    CHECK_EQ_INT(info.key_tail, 0);
    /* a key memcached cannot decode goes as it is, routed by its token: memcached
     * answers it (it checks the flags first) */
    const char *bad[] = {"mg Zm9 b v\r\n",  "mg !!!! b q v\r\n", "ms Zg 2 b\r\nhi\r\n",
                         "md !!!! b q\r\n", "ma Zm9vY=== b\r\n", "me !!!! b\r\n"};
    const char *tok[] = {"Zm9", "!!!!", "Zg", "!!!!", "Zm9vY===", "!!!!"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ_INT(req(bad[i], &info), PARSE_OK);
        CHECK_EQ_INT(info.route, ROUTE_KEY);
        CHECK_EQ_INT(info.len, strlen(bad[i]));
        CHECK_EQ_INT(info.key_tail, 0);
        const char *w = info.rewritten ? (const char *)info.wire.data : bad[i];
        CHECK_EQ_INT(info.keys.n, 1);
        CHECK_MEM(w + info.keys.v[0].off, info.keys.v[0].len, tok[i]);
    }
    req_info_free(&info);
    /* a key token over 250 bytes is a format error before any decoding */
    char *k252 = repeat('Q', 252, "mg ", " b v\r\n");
    req_reject(k252, strlen(k252), "CLIENT_ERROR bad command line format");
    free(k252);
    /* an ms over the size limit deletes the decoded key, when delete can name it */
    const char *large = "SERVER_ERROR object too large for cache";
    req_drop("ms Zm9v 2147483645 b\r\n", PARSE_DROP, large, "delete foo noreply\r\n",
             22 + 2147483645ull + 2);
    req_drop("ms Zm9v 10 b\r\nabc", PARSE_AGAIN, large, "delete foo noreply\r\n", 14 + 12);
    req_drop("ms YSBi 10 b\r\nabc", PARSE_AGAIN, large, "", 14 + 12); /* "a b" */
    req_drop("ms AAEC 10 b\r\nabc", PARSE_AGAIN, large, "", 14 + 12); /* 00 01 02 */
    /* with a key memcached would refuse: its answer, and nothing deleted */
    req_drop("ms Zm9 10 b\r\nabc", PARSE_AGAIN, "CLIENT_ERROR error decoding key", "", 13 + 12);
}

static void test_fatal(void)
{
    char *longline = repeat('x', 3000, "set ", "");
    req_fatal(longline, "CLIENT_ERROR line too long");
    free(longline);
    char *exact = repeat('x', 2048, "", "");
    req_fatal(exact, "CLIENT_ERROR line too long");
    free(exact);

    struct req_info info;
    req_info_init(&info);
    /* 2046 bytes + CRLF: the '\n' is byte 2048, still a line */
    char *fits = repeat('x', 2046 - 8, "mn ", "12345\r\n");
    CHECK_EQ_INT(strlen(fits), 2048);
    req_ok(fits, ROUTE_LOCAL, MC_CMD_MN, &info);
    free(fits);
    char *partial = repeat('x', 2047, "", "");
    CHECK_EQ_INT(req(partial, &info), PARSE_AGAIN);
    free(partial);
    CHECK_EQ_INT(req("set k 0 0 1073741824\r\n", &info), PARSE_AGAIN); /* memcached -I 1g */
    CHECK_EQ_INT(info.len, 22 + 1073741824 + 2);

    /* long multi-key lines are fine */
    size_t nkeys = 1000;
    char *big = malloc(nkeys * 12 + 16);
    size_t len = 0;
    len += (size_t)sprintf(big, "get");
    for (size_t i = 0; i < nkeys; i++) {
        len += (size_t)sprintf(big + len, " key%06zu", i);
    }
    len += (size_t)sprintf(big + len, "\r\n");
    req_ok(big, ROUTE_SPLIT, MC_CMD_GET, &info);
    CHECK_EQ_INT(info.keys.n, nkeys);
    free(big);
    /* ... of any length (memcached's get, twemproxy): 1 MB, fed in 4 KB pieces,
     * each call searching only the new bytes (scanned), the hint a lower bound */
    size_t hlen = 1024 * 1024;
    char *huge = repeat('k', hlen, "gets ", "");
    for (size_t i = 200; i < hlen; i += 201) {
        huge[i] = ' ';
    }
    huge[hlen - 2] = '\r';
    huge[hlen - 1] = '\n';
    huge[hlen] = '\0';
    struct req_info part;
    req_info_init(&part);
    for (size_t have = 4096; have < hlen; have += 4096) {
        CHECK_EQ_INT(P->req_parse((const uint8_t *)huge, have, &part), PARSE_AGAIN);
        CHECK(part.scanned == have && part.len == have + 1);
    }
    CHECK_EQ_INT(P->req_parse((const uint8_t *)huge, hlen, &part), PARSE_OK);
    CHECK(part.scanned == 0 && part.len == hlen && part.keys.n == hlen / 201 + 1);
    /* a caller that says bytes were searched when they were not misses the
     * line end: scanned must come from a PARSE_AGAIN on the same bytes */
    part.scanned = hlen;
    CHECK_EQ_INT(P->req_parse((const uint8_t *)huge, hlen, &part), PARSE_AGAIN);
    part.scanned = 0;
    CHECK_EQ_INT(P->req_parse((const uint8_t *)huge, hlen, &part), PARSE_OK);
    req_info_free(&part);
    req_ok(huge, ROUTE_SPLIT, MC_CMD_GETS, &info);
    CHECK_EQ_INT(info.keys.n, hlen / 201 + 1);
    free(huge);
    /* any other command: its line within 2048 bytes */
    char *longset = repeat(' ', 2100, "set k 0 0 1", "\r\nx\r\n");
    req_fatal(longset, "CLIENT_ERROR line too long");
    free(longset);
    req_info_free(&info);
}

/* Feeding s one byte at a time gives PARSE_AGAIN until the end, then the same
 * answer as the whole string. */
static void check_incremental(const char *s)
{
    size_t n = strlen(s);
    struct req_info whole, part;
    req_info_init(&whole);
    req_info_init(&part);
    int rc = req(s, &whole);
    for (size_t i = 0; i < n; i++) {
        int prc = P->req_parse((const uint8_t *)s, i, &part);
        if (prc != PARSE_AGAIN) {
            fprintf(stderr, "  prefix %zu of %.40s: rc %d\n", i, s, prc);
        }
        CHECK_EQ_INT(prc, PARSE_AGAIN);
        /* a hint: the exact length, or a lower bound for a line not ended yet */
        CHECK(part.len == 0 || part.len == whole.len || (part.len == i + 1 && part.scanned == i));
    }
    CHECK_EQ_INT(P->req_parse((const uint8_t *)s, n, &part), rc);
    CHECK_EQ_INT(part.len, whole.len);
    CHECK_EQ_INT(part.route, whole.route);
    CHECK_EQ_INT(part.cmd, whole.cmd);
    CHECK_EQ_INT(part.noreply, whole.noreply);
    CHECK_EQ_INT(part.keys.n, whole.keys.n);
    CHECK_EQ_INT(part.args.n, whole.args.n);
    for (uint32_t k = 0; k < part.keys.n && k < whole.keys.n; k++) {
        CHECK_EQ_INT(part.keys.v[k].off, whole.keys.v[k].off);
        CHECK_EQ_INT(part.keys.v[k].len, whole.keys.v[k].len);
    }
    CHECK(strcmp(part.err, whole.err) == 0);
    req_info_free(&whole);
    req_info_free(&part);
}

/* Parse a quiet meta request s: it is forwarded as `wire`, keys and tokens
 * pointing into it, and its whole input consumed. */
static void quiet_ok(const char *s, int cmd, const char *wire, const char *key, const char *last)
{
    struct req_info info;
    req_info_init(&info);
    req_ok(s, ROUTE_KEY, cmd, &info);
    CHECK(info.quiet);
    CHECK(info.rewritten);
    CHECK(!info.noreply);
    CHECK_EQ_INT(info.wire.len, strlen(wire));
    if (info.wire.len == strlen(wire)) {
        CHECK_MEM(info.wire.data, info.wire.len, wire);
        CHECK_EQ_INT(info.keys.n, 1);
        check_span(wire, &info.keys.v[0], key);
        check_span(wire, &info.args.v[info.args.n - 1], last);
    }
    req_info_free(&info);
}

/* q (quiet: no reply on success) goes to the server without the flag, so that
 * every request has a reply; reply_shown says which the client is spared. */
static void test_quiet(void)
{
    quiet_ok("mg k v q\r\n", MC_CMD_MG, "mg k v \r\n", "k", "v");
    quiet_ok("mg key q v O12\r\n", MC_CMD_MG, "mg key v O12\r\n", "key", "O12");
    quiet_ok("mg key  q  \r\n", MC_CMD_MG, "mg key    \r\n", "key", "key");
    quiet_ok("ms k 2 q T0\r\nhi\r\n", MC_CMD_MS, "ms k 2 T0\r\nhi\r\n", "k", "T0");
    quiet_ok("ms k 2 T0 q\r\nhi\r\n", MC_CMD_MS, "ms k 2 T0 \r\nhi\r\n", "k", "T0");
    quiet_ok("md k qx\r\n", MC_CMD_MD, "md k \r\n", "k", "k");
    /* a \r ending the token before q stays in that token */
    quiet_ok("md k T0\r q\n", MC_CMD_MD, "md k T0\r \n", "k", "T0\r");
    quiet_ok("ma k q MD D5 v\r\n", MC_CMD_MA, "ma k MD D5 v\r\n", "k", "v");

    /* me reads no flag: it goes as it is, and memcached answers it */
    struct req_info info;
    req_info_init(&info);
    req_ok("me k q q\r\n", ROUTE_KEY, MC_CMD_ME, &info);
    CHECK(!info.quiet);
    CHECK(!info.rewritten);
    /* the next request is parsed as it is again */
    req_ok("mg k v q\r\n", ROUTE_KEY, MC_CMD_MG, &info);
    req_ok("mg k v\r\n", ROUTE_KEY, MC_CMD_MG, &info);
    CHECK(!info.quiet);
    CHECK(!info.rewritten);
    /* a data block not all here yet: waited for, not rewritten */
    CHECK_EQ_INT(req("ms k 5 q\r\nhi", &info), PARSE_AGAIN);
    CHECK(!info.quiet);
    req_info_free(&info);

    /* an ma that may create its key keeps its q, with an mn behind it */
    req_info_init(&info);
    req_ok("ma k q N0 v\r\n", ROUTE_KEY, MC_CMD_MA_VIVIFY, &info);
    CHECK(info.quiet && info.rewritten && !info.readonly);
    CHECK_EQ_INT(info.wire.len, strlen("ma k q N0 v\r\nmn\r\n"));
    CHECK_MEM(info.wire.data, info.wire.len, "ma k q N0 v\r\nmn\r\n");
    check_span("ma k q N0 v\r\n", &info.keys.v[0], "k");
    req_ok("ma k N30 q\n", ROUTE_KEY, MC_CMD_MA_VIVIFY, &info);
    CHECK_MEM(info.wire.data, info.wire.len, "ma k N30 q\nmn\r\n");
    req_ok("ma k N30\r\n", ROUTE_KEY, MC_CMD_MA, &info); /* not quiet: as it is */
    CHECK(!info.rewritten);
    req_ok("mg k q N30\r\n", ROUTE_KEY, MC_CMD_MG, &info); /* mg's vivify shows anyway */
    CHECK_MEM(info.wire.data, info.wire.len, "mg k N30\r\n");
    req_info_free(&info);

    /* what memcached keeps back from a quiet request */
    struct {
        uint16_t cmd;
        const char *rsp;
        bool hidden;
    } cases[] = {
        {MC_CMD_MG, "EN\r\n", true},          {MC_CMD_MG, "HD\r\n", false},
        {MC_CMD_MG, "VA 1\r\nx\r\n", false},  {MC_CMD_MS, "HD\r\n", true},
        {MC_CMD_MS, "HD O5 kaGk=\r\n", true}, {MC_CMD_MS, "NS\r\n", false},
        {MC_CMD_MS, "EX\r\n", false},         {MC_CMD_MD, "HD\r\n", true},
        {MC_CMD_MD, "NF\r\n", false},         {MC_CMD_MA, "HD\r\n", true},
        {MC_CMD_MA, "VA 1\r\n5\r\n", true},   {MC_CMD_MA, "NF\r\n", false},
        {MC_CMD_ME, "EN\r\n", false},         {MC_CMD_MS, "SERVER_ERROR out of memory\r\n", false},
        {MC_CMD_MG, "ENX\r\n", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *r = cases[i].rsp;
        size_t shown = P->reply_shown(cases[i].cmd, (const uint8_t *)r, strlen(r));
        CHECK_EQ_INT(shown, cases[i].hidden ? 0 : strlen(r));
    }
    /* the quiet ma with N: what came before the proxy's MN; the proxy's own
     * error (no MN: the request never got an answer) whole */
    struct {
        const char *rsp;
        size_t shown;
    } viv[] = {
        {"MN\r\n", 0},
        {"HD\r\nMN\r\n", 4},
        {"VA 1 O7\r\n5\r\nMN\r\n", 12},
        {"CLIENT_ERROR invalid or duplicate flag\r\nMN\r\n", 40},
        {"SERVER_ERROR Connection refused\r\n", 33},
    };
    for (size_t i = 0; i < sizeof(viv) / sizeof(viv[0]); i++) {
        const char *r = viv[i].rsp;
        CHECK_EQ_INT(P->reply_shown(MC_CMD_MA_VIVIFY, (const uint8_t *)r, strlen(r)), viv[i].shown);
    }
}

static void test_incremental(void)
{
    static const char *const cases[] = {
        "get a b c\r\n",
        "gets k\r\n",
        "gat 1 a b\r\n",
        "set k 0 0 5\r\nhello\r\n",
        "cas k 1 2 3 4 noreply\r\nabc\r\n",
        "incr k 5\r\n",
        "delete k 0 noreply\r\n",
        "touch k 1\r\n",
        "mg k v\r\n",
        "ms k 3 T1\r\nabc\r\n",
        "md k\r\n",
        "ma k\r\n",
        "mn\r\n",
        "me k\r\n",
        "version\r\n",
        "quit\r\n",
        "flush_all 1 noreply\r\n",
        "verbosity 2\r\n",
        "verbosity x noreply\r\n",
        "stats\r\n",
        "stats cachedump 1 2\r\n",
        "incr k x noreply\r\n",
        "gat 1\r\n",
        "bogus x\r\n",
        "set k x 0 2\r\n",
        "ms k 2 q q\r\nab\r\n",
        "set k 0 0 2\r\nabc\n",
        "mg k q\r\n",
        "get k\n",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_incremental(cases[i]);
    }
}

static void test_pipelined(void)
{
    const char *s = "set a 0 0 1\r\n1\r\nget a b\r\ndelete a noreply\r\nbogus\r\nmn\r\n"
                    "ms b 2\r\nxy\r\nquit\r\n";
    static const int want_cmd[] = {MC_CMD_SET, MC_CMD_GET, MC_CMD_DELETE, MC_CMD_NONE,
                                   MC_CMD_MN,  MC_CMD_MS,  MC_CMD_QUIT};
    static const int want_route[] = {ROUTE_KEY,   ROUTE_SPLIT, ROUTE_KEY,  ROUTE_REJECT,
                                     ROUTE_LOCAL, ROUTE_KEY,   ROUTE_LOCAL};
    struct req_info info;
    req_info_init(&info);
    size_t off = 0, n = strlen(s), count = 0;
    while (off < n && count < 7) {
        CHECK_EQ_INT(P->req_parse((const uint8_t *)s + off, n - off, &info), PARSE_OK);
        CHECK_EQ_INT(info.cmd, want_cmd[count]);
        CHECK_EQ_INT(info.route, want_route[count]);
        off += info.len;
        count++;
    }
    CHECK_EQ_INT(count, 7);
    CHECK_EQ_INT(off, n);
    CHECK(info.quit);
    req_info_free(&info);
}

/* Response helpers. */
static int rsp(const char *s, int cmd, struct rsp_info *info)
{
    return P->rsp_parse((const uint8_t *)s, strlen(s), (uint16_t)cmd, info);
}

static void rsp_ok(const char *s, int cmd, bool is_error)
{
    struct rsp_info info;
    rsp_info_init(&info);
    int rc = rsp(s, cmd, &info);
    CHECK_EQ_INT(rc, PARSE_OK);
    if (rc != PARSE_OK) {
        fprintf(stderr, "  rsp %.40s (cmd %d): %s\n", s, cmd, info.err);
    }
    CHECK_EQ_INT(info.len, strlen(s));
    CHECK_EQ_INT(info.is_error, is_error);
    /* every proper prefix is incomplete */
    for (size_t i = 0; i < strlen(s); i++) {
        CHECK_EQ_INT(P->rsp_parse((const uint8_t *)s, i, (uint16_t)cmd, &info), PARSE_AGAIN);
    }
    rsp_info_free(&info);
}

static void rsp_bad(const char *s, int cmd)
{
    struct rsp_info info;
    rsp_info_init(&info);
    CHECK_EQ_INT(rsp(s, cmd, &info), PARSE_ERROR);
    CHECK(info.err[0] != '\0');
    rsp_info_free(&info);
}

static void test_rsp_values(void)
{
    const char *s = "VALUE a 0 1\r\nx\r\nVALUE bb 5 3 99\r\n\r\n\r\r\nEND\r\n";
    struct rsp_info info;
    rsp_info_init(&info);
    CHECK_EQ_INT(rsp(s, MC_CMD_GETS, &info), PARSE_OK);
    CHECK_EQ_INT(info.len, strlen(s));
    CHECK_EQ_INT(info.elems.n, 2);
    CHECK_MEM(s + info.elems.v[0].off, info.elems.v[0].len, "VALUE a 0 1\r\nx\r\n");
    CHECK_MEM(s + info.elems.v[1].off, info.elems.v[1].len, "VALUE bb 5 3 99\r\n\r\n\r\r\n");
    CHECK_EQ_INT(info.ekeys.n, 2);
    check_span(s, &info.ekeys.v[0], "a");
    check_span(s, &info.ekeys.v[1], "bb");
    /* the hint once a block's size is known */
    CHECK_EQ_INT(P->rsp_parse((const uint8_t *)s, 14, MC_CMD_GET, &info), PARSE_AGAIN);
    CHECK_EQ_INT(info.len, 16 + 5);
    rsp_info_free(&info);

    rsp_ok(s, MC_CMD_GET, false);
    rsp_ok("END\r\n", MC_CMD_GET, false);
    rsp_ok("END\r\n", MC_CMD_GAT, false);
    rsp_ok("VALUE k 0 0\r\n\r\nEND\r\n", MC_CMD_GATS, false);
    rsp_ok("SERVER_ERROR out of memory\r\n", MC_CMD_GET, true);
    rsp_ok("VALUE a 0 1\r\nx\r\nSERVER_ERROR out of memory writing get response\r\n", MC_CMD_GET,
           true);
    rsp_ok("CLIENT_ERROR bad command line format\r\n", MC_CMD_GET, true);
    rsp_ok("ERROR\r\n", MC_CMD_GET, true);
    rsp_bad("VALUE a 0 1\r\nxy\r\nEND\r\n", MC_CMD_GET);
    rsp_bad("VALUE a 0\r\nEND\r\n", MC_CMD_GET);
    rsp_bad("VALUE a x 1\r\nx\r\nEND\r\n", MC_CMD_GET);
    rsp_bad("VALUE a 0 1 2 3\r\nx\r\nEND\r\n", MC_CMD_GET);
    rsp_bad("STORED\r\n", MC_CMD_GET);
    rsp_bad("ENDX\r\n", MC_CMD_GET);
    char *longl = repeat('x', 3000, "VALUE ", "");
    rsp_bad(longl, MC_CMD_GET);
    free(longl);
}

static void test_rsp_lines(void)
{
    static const char *const store[] = {"STORED\r\n", "NOT_STORED\r\n", "EXISTS\r\n",
                                        "NOT_FOUND\r\n"};
    for (int c = MC_CMD_SET; c <= MC_CMD_CAS; c++) {
        for (size_t i = 0; i < 4; i++) {
            rsp_ok(store[i], c, false);
        }
        rsp_bad("DELETED\r\n", c);
    }
    rsp_ok("DELETED\r\n", MC_CMD_DELETE, false);
    rsp_ok("NOT_FOUND\r\n", MC_CMD_DELETE, false);
    rsp_bad("STORED\r\n", MC_CMD_DELETE);
    rsp_ok("42\r\n", MC_CMD_INCR, false);
    rsp_ok("18446744073709551615\r\n", MC_CMD_DECR, false);
    rsp_ok("7   \r\n", MC_CMD_DECR, false);
    rsp_ok("NOT_FOUND\r\n", MC_CMD_INCR, false);
    rsp_ok("CLIENT_ERROR cannot increment or decrement non-numeric value\r\n", MC_CMD_INCR, true);
    rsp_bad("-1\r\n", MC_CMD_INCR);
    rsp_bad("4 2\r\n", MC_CMD_INCR);
    rsp_ok("TOUCHED\r\n", MC_CMD_TOUCH, false);
    rsp_ok("NOT_FOUND\r\n", MC_CMD_TOUCH, false);
    rsp_ok("OK\r\n", MC_CMD_FLUSH_ALL, false);
    rsp_ok("OK\r\n", MC_CMD_VERBOSITY, false);
    rsp_bad("OKAY\r\n", MC_CMD_FLUSH_ALL);
    rsp_ok("VERSION 1.6.18\r\n", MC_CMD_VERSION, false);
    rsp_ok("SERVER_ERROR busy\r\n", MC_CMD_SET, true);
    rsp_ok("ERROR\r\n", MC_CMD_FLUSH_ALL, true);
    rsp_bad("ERRORS\r\n", MC_CMD_SET);
    rsp_bad("STORED\r\n", MC_CMD_QUIT);
    rsp_bad("STORED\r\n", 0);
    rsp_bad("STORED\r\n", 999);
}

static void test_rsp_meta(void)
{
    rsp_ok("VA 2 t-1 f0\r\nhi\r\n", MC_CMD_MG, false);
    rsp_ok("VA 0\r\n\r\n", MC_CMD_MG, false);
    rsp_ok("HD\r\n", MC_CMD_MG, false);
    rsp_ok("HD c5 kfoo\r\n", MC_CMD_MG, false);
    rsp_ok("EN\r\n", MC_CMD_MG, false);
    rsp_ok("EN kk O123\r\n", MC_CMD_MG, false);
    rsp_ok("HD\r\n", MC_CMD_MS, false);
    rsp_ok("NS\r\n", MC_CMD_MS, false);
    rsp_ok("EX\r\n", MC_CMD_MS, false);
    rsp_ok("NF\r\n", MC_CMD_MS, false);
    rsp_ok("HD\r\n", MC_CMD_MD, false);
    rsp_ok("NF\r\n", MC_CMD_MD, false);
    rsp_ok("VA 1\r\n6\r\n", MC_CMD_MA, false);
    rsp_ok("NS\r\n", MC_CMD_MA, false);
    rsp_ok("ME n exp=-1 la=1 cas=7 fetch=no cls=1 size=61\r\n", MC_CMD_ME, false);
    rsp_ok("EN\r\n", MC_CMD_ME, false);
    rsp_ok("MN\r\n", MC_CMD_MN, false);
    rsp_ok("CLIENT_ERROR invalid flag\r\n", MC_CMD_MG, true);
    /* only CRLF ends a server's line: memcached 1.6 echoes a binary key raw in
     * k when mg creates the item (N with b) */
    rsp_ok("HD kline\nfeed s0 W\r\n", MC_CMD_MG, false);
    rsp_ok("VA 1 k\n\n W\r\nx\r\n", MC_CMD_MG, false);
    rsp_bad("VA 2\r\nhix\r\n", MC_CMD_MG);
    rsp_bad("VA x\r\nhi\r\n", MC_CMD_MG);
    rsp_bad("VA\r\n", MC_CMD_MG);
    rsp_bad("NS\r\n", MC_CMD_MG);
    rsp_bad("VA 1\r\na\r\n", MC_CMD_MS);
    rsp_bad("HDX\r\n", MC_CMD_MD);
    rsp_bad("H\r\n", MC_CMD_MD);
    rsp_bad("ME k\r\n", MC_CMD_MG);
    /* a quiet ma with N and the mn behind it: one reply or none, then MN */
    rsp_ok("MN\r\n", MC_CMD_MA_VIVIFY, false);
    rsp_ok("HD\r\nMN\r\n", MC_CMD_MA_VIVIFY, false);
    rsp_ok("VA 2 kk O1\r\n10\r\nMN\r\n", MC_CMD_MA_VIVIFY, false);
    rsp_ok("NF\r\nMN\r\n", MC_CMD_MA_VIVIFY, false);
    rsp_ok("CLIENT_ERROR invalid mode for ma M token\r\nMN\r\n", MC_CMD_MA_VIVIFY, true);
    rsp_bad("HD\r\nHD\r\n", MC_CMD_MA_VIVIFY);
    rsp_bad("EN\r\nMN\r\n", MC_CMD_MA_VIVIFY);
    rsp_bad("MN \r\n", MC_CMD_MA_VIVIFY);

    struct rsp_info info;
    rsp_info_init(&info);
    CHECK_EQ_INT(rsp("VA 10 t5\r\n01", MC_CMD_MG, &info), PARSE_AGAIN);
    CHECK_EQ_INT(info.len, 10 + 12);
    /* no hint while the MN line is not all here: its length is not known */
    CHECK_EQ_INT(rsp("VA 1\r\n5\r\nM", MC_CMD_MA_VIVIFY, &info), PARSE_AGAIN);
    CHECK_EQ_INT(info.len, 0);
    rsp_info_free(&info);
}

static void test_frag_build(void)
{
    struct req_info info;
    struct buf out;
    req_info_init(&info);
    buf_init(&out);
    const char *s = "get a bb ccc dd\r\n";
    CHECK_EQ_INT(req(s, &info), PARSE_OK);
    uint32_t idx[] = {1, 3};
    CHECK_EQ_INT(P->frag_build(&out, (const uint8_t *)s, &info, idx, 2), 0);
    CHECK_MEM(out.data, out.len, "get bb dd\r\n");
    buf_reset(&out);
    uint32_t one[] = {2};
    CHECK_EQ_INT(P->frag_build(&out, (const uint8_t *)s, &info, one, 1), 0);
    CHECK_MEM(out.data, out.len, "get ccc\r\n");
    buf_reset(&out);

    const char *g = "gats  300 x y z\r\n";
    CHECK_EQ_INT(req(g, &info), PARSE_OK);
    uint32_t two[] = {0, 2};
    CHECK_EQ_INT(P->frag_build(&out, (const uint8_t *)g, &info, two, 2), 0);
    CHECK_MEM(out.data, out.len, "gats 300 x z\r\n");
    buf_reset(&out);

    const char *d = "gets k k\r\n";
    CHECK_EQ_INT(req(d, &info), PARSE_OK);
    uint32_t both[] = {0, 1};
    CHECK_EQ_INT(P->frag_build(&out, (const uint8_t *)d, &info, both, 2), 0);
    CHECK_MEM(out.data, out.len, "gets k k\r\n");
    buf_reset(&out);

    uint32_t bad[] = {7};
    CHECK_EQ_INT(P->frag_build(&out, (const uint8_t *)d, &info, bad, 1), -1);
    CHECK_EQ_INT(P->frag_build(&out, (const uint8_t *)d, &info, bad, 0), -1);
    CHECK_EQ_INT(req("set k 0 0 1\r\na\r\n", &info), PARSE_OK);
    CHECK_EQ_INT(P->frag_build(&out, (const uint8_t *)"set k 0 0 1\r\na\r\n", &info, one, 1), -1);
    CHECK_EQ_INT(out.len, 0);
    buf_free(&out);
    req_info_free(&info);
}

/* Up to 4 fragment replies for one merge. */
struct merge_case {
    struct rsp_info infos[4];
    struct frag_rsp rsps[4];
    struct frag_map map[16];
};

static void merge_rsp(struct merge_case *m, uint32_t f, const char *s, int cmd)
{
    rsp_info_init(&m->infos[f]);
    CHECK_EQ_INT(rsp(s, cmd, &m->infos[f]), PARSE_OK);
    m->rsps[f].p = (const uint8_t *)s;
    m->rsps[f].len = m->infos[f].len;
    m->rsps[f].info = &m->infos[f];
}

static void merge_free(struct merge_case *m, uint32_t n)
{
    for (uint32_t f = 0; f < n; f++) {
        rsp_info_free(&m->infos[f]);
    }
}

/* Split request s: key i goes to fragment frags[i], positions in order. */
static void merge_map(struct merge_case *m, const uint32_t *frags, uint32_t nkeys)
{
    uint32_t pos[4] = {0};
    for (uint32_t i = 0; i < nkeys; i++) {
        m->map[i].frag = frags[i];
        m->map[i].pos = pos[frags[i]]++;
    }
}

static void test_merge_split(void)
{
    struct req_info info;
    struct buf out;
    struct merge_case m;
    req_info_init(&info);
    buf_init(&out);

    /* get a b c d: a,c to fragment 0, b,d to fragment 1; c and d miss */
    const char *s = "get a b c d\r\n";
    CHECK_EQ_INT(req(s, &info), PARSE_OK);
    merge_rsp(&m, 0, "VALUE a 0 1\r\n1\r\nEND\r\n", MC_CMD_GET);
    merge_rsp(&m, 1, "VALUE b 0 2\r\n22\r\nEND\r\n", MC_CMD_GET);
    merge_map(&m, (const uint32_t[]){0, 1, 0, 1}, 4);
    CHECK_EQ_INT(P->merge(&out, (const uint8_t *)s, &info, m.map, m.rsps, 2), 0);
    CHECK_MEM(out.data, out.len, "VALUE a 0 1\r\n1\r\nVALUE b 0 2\r\n22\r\nEND\r\n");
    merge_free(&m, 2);
    buf_reset(&out);

    /* all miss */
    merge_rsp(&m, 0, "END\r\n", MC_CMD_GET);
    merge_rsp(&m, 1, "END\r\n", MC_CMD_GET);
    CHECK_EQ_INT(P->merge(&out, (const uint8_t *)s, &info, m.map, m.rsps, 2), 0);
    CHECK_MEM(out.data, out.len, "END\r\n");
    merge_free(&m, 2);
    buf_reset(&out);

    /* duplicates: get x y x y, x on 0 (both hit), y on 1 (second misses) */
    const char *d = "gets x y x y\r\n";
    CHECK_EQ_INT(req(d, &info), PARSE_OK);
    merge_rsp(&m, 0, "VALUE x 0 1 5\r\nX\r\nVALUE x 0 1 5\r\nX\r\nEND\r\n", MC_CMD_GETS);
    merge_rsp(&m, 1, "VALUE y 1 1 6\r\nY\r\nEND\r\n", MC_CMD_GETS);
    merge_map(&m, (const uint32_t[]){0, 1, 0, 1}, 4);
    CHECK_EQ_INT(P->merge(&out, (const uint8_t *)d, &info, m.map, m.rsps, 2), 0);
    CHECK_MEM(out.data, out.len,
              "VALUE x 0 1 5\r\nX\r\nVALUE y 1 1 6\r\nY\r\nVALUE x 0 1 5\r\nX\r\nEND\r\n");
    merge_free(&m, 2);
    buf_reset(&out);

    /* the map's positions, not the key order, say where a key sits in its fragment */
    const char *r = "get p q\r\n";
    CHECK_EQ_INT(req(r, &info), PARSE_OK);
    merge_rsp(&m, 0, "VALUE q 0 1\r\nQ\r\nVALUE p 0 1\r\nP\r\nEND\r\n", MC_CMD_GET);
    m.map[0] = (struct frag_map){0, 1};
    m.map[1] = (struct frag_map){0, 0};
    CHECK_EQ_INT(P->merge(&out, (const uint8_t *)r, &info, m.map, m.rsps, 1), 0);
    CHECK_MEM(out.data, out.len, "VALUE p 0 1\r\nP\r\nVALUE q 0 1\r\nQ\r\nEND\r\n");
    /* an inconsistent map fails and leaves out as it was */
    buf_reset(&out);
    m.map[1] = (struct frag_map){0, 1};
    CHECK_EQ_INT(P->merge(&out, (const uint8_t *)r, &info, m.map, m.rsps, 1), -1);
    m.map[1] = (struct frag_map){3, 0};
    CHECK_EQ_INT(P->merge(&out, (const uint8_t *)r, &info, m.map, m.rsps, 1), -1);
    CHECK_EQ_INT(out.len, 0);
    merge_free(&m, 1);

    /* one fragment failed: its error line is the answer */
    CHECK_EQ_INT(req(s, &info), PARSE_OK);
    merge_rsp(&m, 0, "VALUE a 0 1\r\n1\r\nEND\r\n", MC_CMD_GET);
    merge_rsp(&m, 1, "VALUE b 0 2\r\n22\r\nSERVER_ERROR out of memory\r\n", MC_CMD_GET);
    merge_map(&m, (const uint32_t[]){0, 1, 0, 1}, 4);
    CHECK_EQ_INT(P->merge(&out, (const uint8_t *)s, &info, m.map, m.rsps, 2), 0);
    CHECK_MEM(out.data, out.len, "SERVER_ERROR out of memory\r\n");
    merge_free(&m, 2);
    buf_reset(&out);

    /* a failure the core reports with error_reply, parsed like a reply */
    merge_rsp(&m, 0, "END\r\n", MC_CMD_GET);
    merge_rsp(&m, 1, "SERVER_ERROR Connection timed out\r\n", MC_CMD_GET);
    CHECK_EQ_INT(P->merge(&out, (const uint8_t *)s, &info, m.map, m.rsps, 2), 0);
    CHECK_MEM(out.data, out.len, "SERVER_ERROR Connection timed out\r\n");
    merge_free(&m, 2);

    buf_free(&out);
    req_info_free(&info);
}

static void test_merge_all(void)
{
    struct req_info info;
    struct buf out;
    struct merge_case m;
    req_info_init(&info);
    buf_init(&out);
    const char *s = "flush_all\r\n";
    CHECK_EQ_INT(req(s, &info), PARSE_OK);
    merge_rsp(&m, 0, "OK\r\n", MC_CMD_FLUSH_ALL);
    merge_rsp(&m, 1, "OK\r\n", MC_CMD_FLUSH_ALL);
    merge_rsp(&m, 2, "OK\r\n", MC_CMD_FLUSH_ALL);
    CHECK_EQ_INT(P->merge(&out, (const uint8_t *)s, &info, NULL, m.rsps, 3), 0);
    CHECK_MEM(out.data, out.len, "OK\r\n");
    merge_free(&m, 3);
    buf_reset(&out);

    merge_rsp(&m, 0, "OK\r\n", MC_CMD_VERBOSITY);
    merge_rsp(&m, 1, "ERROR\r\n", MC_CMD_VERBOSITY);
    merge_rsp(&m, 2, "SERVER_ERROR x\r\n", MC_CMD_VERBOSITY);
    CHECK_EQ_INT(P->merge(&out, (const uint8_t *)s, &info, NULL, m.rsps, 3), 0);
    CHECK_MEM(out.data, out.len, "ERROR\r\n");
    merge_free(&m, 3);
    buf_free(&out);
    req_info_free(&info);
}

static void merge_stats_check(const char *s, const char *const *replies, uint32_t n,
                              const char *want)
{
    struct req_info info;
    struct buf out;
    struct merge_case m;
    req_info_init(&info);
    buf_init(&out);
    CHECK_EQ_INT(req(s, &info), PARSE_OK);
    CHECK_EQ_INT(info.route, ROUTE_ALL);
    for (uint32_t i = 0; i < n; i++) {
        merge_rsp(&m, i, replies[i], MC_CMD_STATS);
    }
    CHECK_EQ_INT(P->merge(&out, (const uint8_t *)s, &info, NULL, m.rsps, n), 0);
    CHECK_MEM(out.data, out.len, want);
    merge_free(&m, n);
    buf_free(&out);
    req_info_free(&info);
}

static void test_merge_stats(void)
{
    /* numbers summed, one-server facts from the first, names in its order */
    const char *a = "STAT pid 10\r\nSTAT uptime 50\r\nSTAT version 1.6.18\r\n"
                    "STAT rusage_user 0.900000\r\nSTAT curr_items 3\r\nSTAT odd x1\r\n"
                    "STAT only_here 4\r\nSTAT bytes 18446744073709551615\r\nEND\r\n";
    const char *b = "STAT pid 20\r\nSTAT uptime 70\r\nSTAT version 1.6.19\r\n"
                    "STAT curr_items 4\r\nSTAT rusage_user 0.200001\r\nSTAT odd 5\r\n"
                    "STAT bytes 1\r\nEND\r\n";
    const char *ab[] = {a, b};
    merge_stats_check("stats\r\n", ab, 2,
                      "STAT pid 10\r\nSTAT uptime 50\r\nSTAT version 1.6.18\r\n"
                      "STAT rusage_user 1.100001\r\nSTAT curr_items 7\r\nSTAT odd x1\r\n"
                      "STAT only_here 4\r\nSTAT bytes 18446744073709551615\r\nEND\r\n");
    const char *one[] = {a};
    merge_stats_check("stats\r\n", one, 1, a); /* one server: its reply unchanged */
    const char *reset[] = {"RESET\r\n", "RESET\r\n"};
    merge_stats_check("stats reset\r\n", reset, 2, "RESET\r\n");
    const char *items[] = {"ITEM a [1 b; 0 s]\r\nEND\r\n", "END\r\n",
                           "ITEM b [2 b; 0 s]\r\nITEM c [3 b; 0 s]\r\nEND\r\n"};
    merge_stats_check("stats cachedump 1 0\r\n", items, 3,
                      "ITEM a [1 b; 0 s]\r\nITEM b [2 b; 0 s]\r\nITEM c [3 b; 0 s]\r\nEND\r\n");
    const char *empty[] = {"END\r\n", "END\r\n"};
    merge_stats_check("stats cachedump 9 0\r\n", empty, 2, "END\r\n");
    const char *bad[] = {"END\r\n", "CLIENT_ERROR Illegal slab id\r\n"};
    merge_stats_check("stats cachedump 300 0\r\n", bad, 2, "CLIENT_ERROR Illegal slab id\r\n");

    rsp_ok("STAT pid 1\r\nSTAT a b c\r\nEND\r\n", MC_CMD_STATS, false);
    rsp_ok("END\r\n", MC_CMD_STATS, false);
    rsp_ok("RESET\r\n", MC_CMD_STATS, false);
    rsp_ok("OK\r\n", MC_CMD_STATS, false);
    rsp_ok("ERROR\r\n", MC_CMD_STATS, true);
    rsp_ok("PREFIX a get 1 hit 0 set 0 del 0\r\nEND\r\n", MC_CMD_STATS, false);
    rsp_ok("CLIENT_ERROR usage: stats detail on|off|dump\r\n", MC_CMD_STATS, true);
    char *longl = repeat('x', 3000, "STAT ", "");
    rsp_bad(longl, MC_CMD_STATS);
    free(longl);
}

static void check_error_reply(const char *msg, const char *want)
{
    struct buf out;
    buf_init(&out);
    CHECK_EQ_INT(P->error_reply(&out, msg), 0);
    CHECK_MEM(out.data, out.len, want);
    buf_free(&out);
}

static void test_error_reply(void)
{
    check_error_reply("Connection timed out", "SERVER_ERROR Connection timed out\r\n");
    check_error_reply("ERROR", "ERROR\r\n");
    check_error_reply("CLIENT_ERROR bad data chunk", "CLIENT_ERROR bad data chunk\r\n");
    check_error_reply("SERVER_ERROR object too large for cache",
                      "SERVER_ERROR object too large for cache\r\n");
    check_error_reply("ERRORS happen", "SERVER_ERROR ERRORS happen\r\n");
    check_error_reply("bad\r\nline", "SERVER_ERROR bad  line\r\n");
    check_error_reply("", "SERVER_ERROR unknown error\r\n");
    /* every reject's err goes through unchanged */
    struct req_info info;
    req_info_init(&info);
    CHECK_EQ_INT(req("set k 0 0 1\r\nxyz", &info), PARSE_OK);
    check_error_reply(info.err, "CLIENT_ERROR bad data chunk\r\n");
    req_info_free(&info);
}

static void test_local(void)
{
    struct req_info info;
    struct buf out;
    struct local_ctx lc = {.version = "0.5.0-nc"};
    req_info_init(&info);
    buf_init(&out);

    CHECK_EQ_INT(req("version\r\n", &info), PARSE_OK); /* the servers' version, not ours */
    CHECK_EQ_INT(P->local(&out, (const uint8_t *)"version\r\n", &info, &lc), 0);
    CHECK_EQ_INT(out.len, 0);
    CHECK_EQ_INT(req("mn\r\n", &info), PARSE_OK);
    CHECK_EQ_INT(P->local(&out, (const uint8_t *)"mn\r\n", &info, &lc), 1);
    CHECK_MEM(out.data, out.len, "MN\r\n");
    buf_reset(&out);
    CHECK_EQ_INT(req("quit\r\n", &info), PARSE_OK);
    CHECK_EQ_INT(P->local(&out, (const uint8_t *)"quit\r\n", &info, &lc), 1);
    CHECK_EQ_INT(out.len, 0);
    CHECK(info.quit);
    CHECK_EQ_INT(req("get k\r\n", &info), PARSE_OK);
    CHECK_EQ_INT(P->local(&out, (const uint8_t *)"get k\r\n", &info, &lc), 0);
    CHECK_EQ_INT(out.len, 0);
    CHECK_EQ_INT(P->conn_init(&out, NULL, 0, 0, 2), 0);
    CHECK_EQ_INT(out.len, 0);
    CHECK(strcmp(P->name, "memcache") == 0);
    CHECK(strcmp(mc_cmd_name(MC_CMD_FLUSH_ALL), "flush_all") == 0);
    CHECK(mc_cmd_name(0) == NULL);
    buf_free(&out);
    req_info_free(&info);
}

int main(void)
{
    test_retrieval();
    test_web_request();
    test_storage();
    test_other_commands();
    test_key_length();
    test_rejects();
    test_noreply_errors();
    test_nul_ends_the_command();
    test_number_tokens();
    test_binary();
    test_fatal();
    test_droppable();
    test_b64_decode();
    test_b64_keys();
    test_quiet();
    test_incremental();
    test_pipelined();
    test_rsp_values();
    test_rsp_lines();
    test_rsp_meta();
    test_frag_build();
    test_merge_split();
    test_merge_all();
    test_merge_stats();
    test_error_reply();
    test_local();
    UNIT_DONE("test_memcache");
}
