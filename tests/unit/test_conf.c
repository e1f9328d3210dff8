/*
 * test_conf: the YAML configuration (SPEC sections 2 and 8): defaults, every
 * key, both layouts, sorting, server names, and the exact problem messages.
 * Run from the repository root (fixtures are under tests/unit/data/conf).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/un.h>

#include "conf/conf.h"
#include "unit.h"

#define DATA "tests/unit/data/conf/"

/* A pool with only what is required, for tests that add one key. */
#define MIN_POOL "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1\n"

static struct conf_errors errs;

static struct conf *load_flags(const char *yml, unsigned flags)
{
    conf_errors_free(&errs);
    return conf_load_buf_flags("t.yml", yml, strlen(yml), flags, &errs);
}

static struct conf *load(const char *yml)
{
    return load_flags(yml, 0);
}

static bool has_err(const char *msg)
{
    for (uint32_t i = 0; i < errs.n; i++) {
        if (strcmp(errs.msgs[i], msg) == 0) {
            return true;
        }
    }
    fprintf(stderr, "missing message: %s\n", msg);
    for (uint32_t i = 0; i < errs.n; i++) {
        fprintf(stderr, "  have: %s\n", errs.msgs[i]);
    }
    return false;
}

/* The config must be refused with exactly this one message. */
static void expect_err(const char *yml, const char *msg)
{
    struct conf *c = load_flags(yml, CONF_F_NUMERIC_ONLY);
    CHECK(c == NULL);
    CHECK_EQ_INT(errs.n, 1);
    CHECK(has_err(msg));
    conf_unref(c);
}

/* MIN_POOL plus one more line. */
static void expect_key_err(const char *line, const char *msg)
{
    char yml[512];
    snprintf(yml, sizeof(yml), "%s  %s\n", MIN_POOL, line);
    expect_err(yml, msg);
}

static void test_defaults(void)
{
    struct conf *c = load(MIN_POOL);
    CHECK(c != NULL);
    if (c == NULL) {
        return;
    }
    CHECK_EQ_INT(errs.n, 0);
    CHECK(strcmp(c->path, "t.yml") == 0);
    CHECK_EQ_INT(c->refs, 1);
    CHECK_EQ_INT(c->global.worker_processes, 0);
    CHECK_EQ_INT(c->global.worker_shutdown_timeout, 30);
    CHECK_EQ_INT(c->global.max_openfiles, 102400);
    CHECK(c->global.user == NULL && c->global.group == NULL);
    CHECK_EQ_INT(c->npools, 1);
    struct conf_pool *p = &c->pools[0];
    CHECK(strcmp(p->name, "alpha") == 0);
    CHECK_EQ_INT(p->line, 1);
    CHECK(strcmp(p->listen.text, "127.0.0.1:22121") == 0);
    CHECK(strcmp(p->listen.host, "127.0.0.1") == 0);
    CHECK_EQ_INT(p->listen.port, 22121);
    CHECK(p->listen.path == NULL);
    CHECK_EQ_INT(p->listen.perm, 0);
    CHECK_EQ_INT(p->listen.sa.ss_family, AF_INET);
    CHECK_EQ_INT(p->listen.salen, sizeof(struct sockaddr_in));
    CHECK_EQ_INT(ntohs(((struct sockaddr_in *)&p->listen.sa)->sin_port), 22121);
    CHECK_EQ_INT(p->hash, HASH_FNV1A_64);
    CHECK(!p->has_hash_tag);
    CHECK_EQ_INT(p->distribution, DIST_KETAMA);
    CHECK_EQ_INT(p->timeout_ms, -1);
    CHECK_EQ_INT(p->backlog, 512);
    CHECK_EQ_INT(p->client_connections, 0);
    CHECK(!p->redis && !p->tcpkeepalive && !p->reuseport && !p->preconnect);
    CHECK(!p->auto_eject_hosts);
    CHECK(p->redis_auth == NULL);
    CHECK_EQ_INT(p->redis_db, 0);
    CHECK_EQ_INT(p->server_connections, 1);
    CHECK_EQ_INT(p->server_retry_timeout_ms, 30000);
    CHECK_EQ_INT(p->server_failure_limit, 2);
    CHECK_EQ_INT(p->reply_batch_wait_ms, 1);
    CHECK_EQ_INT(p->nservers, 1);
    CHECK(strcmp(p->servers[0].pname, "127.0.0.1:6379:1") == 0);
    CHECK(strcmp(p->servers[0].name, "127.0.0.1:6379") == 0);
    CHECK_EQ_INT(p->servers[0].weight, 1);
    CHECK_EQ_INT(p->servers[0].line, 4);
    CHECK_EQ_INT(p->servers[0].addr.sa.ss_family, AF_INET);
    conf_unref(c);
}

static void test_every_key(void)
{
    struct conf *c = load("alpha:\n"
                          "  listen: 127.0.0.1:22121\n"
                          "  hash: murmur\n"
                          "  hash_tag: \"{}\"\n"
                          "  distribution: modula\n"
                          "  timeout: 400\n"
                          "  backlog: 1024\n"
                          "  client_connections: 100\n"
                          "  redis: true\n"
                          "  tcpkeepalive: true\n"
                          "  reuseport: true\n"
                          "  redis_auth: s3cret\n"
                          "  redis_db: 3\n"
                          "  preconnect: true\n"
                          "  auto_eject_hosts: true\n"
                          "  server_connections: 4\n"
                          "  server_retry_timeout: 2000\n"
                          "  server_failure_limit: 0\n"
                          "  reply_batch_wait: 0\n"
                          "  servers:\n"
                          "   - 127.0.0.1:6379:1\n");
    CHECK(c != NULL);
    if (c == NULL) {
        return;
    }
    struct conf_pool *p = &c->pools[0];
    CHECK_EQ_INT(p->hash, HASH_MURMUR);
    CHECK(p->has_hash_tag && p->hash_tag[0] == '{' && p->hash_tag[1] == '}');
    CHECK_EQ_INT(p->distribution, DIST_MODULA);
    CHECK_EQ_INT(p->timeout_ms, 400);
    CHECK_EQ_INT(p->reply_batch_wait_ms, 0);
    CHECK_EQ_INT(p->backlog, 1024);
    CHECK_EQ_INT(p->client_connections, 100);
    CHECK(p->redis && p->tcpkeepalive && p->reuseport && p->preconnect && p->auto_eject_hosts);
    CHECK(p->redis_auth != NULL && strcmp(p->redis_auth, "s3cret") == 0);
    CHECK_EQ_INT(p->redis_db, 3);
    CHECK_EQ_INT(p->server_connections, 4);
    CHECK_EQ_INT(p->server_retry_timeout_ms, 2000);
    CHECK_EQ_INT(p->server_failure_limit, 0);
    conf_unref(c);

    /* false is as exact as true; 0 ms means no timeout */
    c = load(MIN_POOL "  redis: false\n  timeout: 0\n  distribution: random\n");
    CHECK(c != NULL && !c->pools[0].redis && c->pools[0].timeout_ms == -1);
    CHECK(c != NULL && c->pools[0].distribution == DIST_RANDOM);
    conf_unref(c);
}

static void test_hash_names(void)
{
    static const char *names[HASH_COUNT] = {"one_at_a_time", "md5",     "crc16",    "crc32",
                                            "crc32a",        "fnv1_64", "fnv1a_64", "fnv1_32",
                                            "fnv1a_32",      "hsieh",   "murmur",   "jenkins"};
    for (int i = 0; i < HASH_COUNT; i++) {
        char yml[256];
        snprintf(yml, sizeof(yml), MIN_POOL "  hash: %s\n", names[i]);
        struct conf *c = load(yml);
        CHECK(c != NULL && (int)c->pools[0].hash == i);
        conf_unref(c);
    }
}

static void test_listen(void)
{
    struct conf *c = load("alpha:\n  listen: /tmp/nc-test.sock 0666\n  servers:\n"
                          "   - 127.0.0.1:6379:1\n");
    CHECK(c != NULL);
    if (c != NULL) {
        struct conf_addr *a = &c->pools[0].listen;
        CHECK(strcmp(a->text, "/tmp/nc-test.sock") == 0);
        CHECK(strcmp(a->path, "/tmp/nc-test.sock") == 0);
        CHECK(a->host == NULL);
        CHECK_EQ_INT(a->perm, 0666);
        CHECK_EQ_INT(a->sa.ss_family, AF_UNIX);
        CHECK(strcmp(((struct sockaddr_un *)&a->sa)->sun_path, "/tmp/nc-test.sock") == 0);
    }
    conf_unref(c);

    c = load("alpha:\n  listen: /tmp/nc-test.sock\n  servers:\n   - 127.0.0.1:6379:1\n");
    CHECK(c != NULL && c->pools[0].listen.perm == 0);
    conf_unref(c);

    /* IPv6: bracketed (quoted, or YAML reads a list) and twemproxy's bare form */
    c = load("a:\n  listen: '[::1]:22121'\n  servers:\n   - 127.0.0.1:6379:1\n"
             "b:\n  listen: ::1:22122\n  servers:\n   - 127.0.0.1:6379:1\n");
    CHECK(c != NULL);
    if (c != NULL) {
        CHECK(strcmp(c->pools[0].listen.text, "[::1]:22121") == 0);
        CHECK(strcmp(c->pools[0].listen.host, "::1") == 0);
        CHECK_EQ_INT(c->pools[0].listen.sa.ss_family, AF_INET6);
        CHECK_EQ_INT(ntohs(((struct sockaddr_in6 *)&c->pools[0].listen.sa)->sin6_port), 22121);
        CHECK(strcmp(c->pools[1].listen.host, "::1") == 0);
        CHECK_EQ_INT(c->pools[1].listen.port, 22122);
        CHECK_EQ_INT(c->pools[1].listen.sa.ss_family, AF_INET6);
    }
    conf_unref(c);

    c = load("alpha:\n  listen: localhost:22121\n  servers:\n   - 127.0.0.1:6379:1\n");
    CHECK(c != NULL && c->pools[0].listen.salen > 0);
    conf_unref(c);

    /* numeric-only mode leaves names alone instead of asking DNS */
    c = load_flags("alpha:\n  listen: proxy.example:22121\n  servers:\n"
                   "   - 127.0.0.1:6379:1\n",
                   CONF_F_NUMERIC_ONLY);
    CHECK(c != NULL && c->pools[0].listen.salen == 0);
    CHECK(c != NULL && strcmp(c->pools[0].listen.host, "proxy.example") == 0);
    conf_unref(c);
}

static const struct conf_server *find_server(const struct conf_pool *p, const char *name)
{
    for (uint32_t i = 0; i < p->nservers; i++) {
        if (strcmp(p->servers[i].name, name) == 0) {
            return &p->servers[i];
        }
    }
    return NULL;
}

/* Names as Debian's nutcracker 0.5.0 shows them in its stats. */
static void test_server_names(void)
{
    struct conf *c = load_flags("alpha:\n  listen: 127.0.0.1:22121\n  servers:\n"
                                "   - 127.0.0.1:6379:1\n"
                                "   - 127.0.0.1:11211:1\n"
                                "   - cache.example:11211:2\n"
                                "   - /tmp/nc-test.sock:3\n"
                                "   - 127.0.0.1:6380:1 named\n"
                                "   - /tmp/other.sock:1 sock\n"
                                "   - ::1:6382:1\n"
                                "   - '[::1]:6383:5'\n"
                                "   - 127.0.0.1:6384:1:2\n",
                                CONF_F_NUMERIC_ONLY);
    CHECK(c != NULL);
    if (c == NULL) {
        return;
    }
    const struct conf_pool *p = &c->pools[0];
    CHECK_EQ_INT(p->nservers, 9);
    const struct conf_server *s = find_server(p, "127.0.0.1:6379");
    CHECK(s != NULL && strcmp(s->pname, "127.0.0.1:6379:1") == 0);
    s = find_server(p, "127.0.0.1"); /* port 11211 is left out */
    CHECK(s != NULL && s->addr.port == 11211 && strcmp(s->pname, "127.0.0.1:11211:1") == 0);
    s = find_server(p, "cache.example");
    CHECK(s != NULL && s->weight == 2 && s->addr.salen == 0); /* resolved at connect */
    s = find_server(p, "/tmp/nc-test.sock:");
    CHECK(s != NULL && s->weight == 3 && strcmp(s->pname, "/tmp/nc-test.sock:3") == 0);
    CHECK(s != NULL && strcmp(s->addr.path, "/tmp/nc-test.sock") == 0);
    CHECK(s != NULL && s->addr.sa.ss_family == AF_UNIX && s->addr.host == NULL);
    s = find_server(p, "named");
    CHECK(s != NULL && s->addr.port == 6380 && strcmp(s->pname, "127.0.0.1:6380:1") == 0);
    s = find_server(p, "sock");
    CHECK(s != NULL && strcmp(s->addr.path, "/tmp/other.sock") == 0);
    s = find_server(p, "::1:6382");
    CHECK(s != NULL && strcmp(s->addr.host, "::1") == 0 && s->addr.sa.ss_family == AF_INET6);
    s = find_server(p, "[::1]:6383");
    CHECK(s != NULL && s->weight == 5 && strcmp(s->addr.host, "::1") == 0);
    /* split from the right, as twemproxy does: host "127.0.0.1:6384", port 1 */
    s = find_server(p, "127.0.0.1:6384:1");
    CHECK(s != NULL && s->addr.port == 1 && s->weight == 2);
    conf_unref(c);
}

static bool sorted_as(const struct conf_pool *p, const char *const *names, uint32_t n)
{
    if (p->nservers != n) {
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (strcmp(p->servers[i].name, names[i]) != 0) {
            return false;
        }
    }
    return true;
}

/* The order Debian's nutcracker lists them in its stats: shorter first. */
static void test_sorting(void)
{
    struct conf *c = load("gamma:\n  listen: 127.0.0.1:22123\n  servers:\n   - 127.0.0.1:6379:1\n"
                          "beta:\n  listen: 127.0.0.1:22122\n  servers:\n"
                          "   - /tmp/nc-test.sock:3\n"
                          "   - 127.0.0.1:6379:1\n"
                          "   - localhost:11211:2\n"
                          "   - 127.0.0.1:11211:1\n"
                          "   - 127.0.0.1:6380:1 named\n"
                          "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1\n"
                          "zz:\n  listen: 127.0.0.1:22124\n  servers:\n   - 127.0.0.1:6379:1\n");
    CHECK(c != NULL);
    if (c == NULL) {
        return;
    }
    CHECK_EQ_INT(c->npools, 4);
    CHECK(strcmp(c->pools[0].name, "zz") == 0);
    CHECK(strcmp(c->pools[1].name, "beta") == 0);
    CHECK(strcmp(c->pools[2].name, "alpha") == 0);
    CHECK(strcmp(c->pools[3].name, "gamma") == 0);
    static const char *const want[] = {"named", "127.0.0.1", "localhost", "127.0.0.1:6379",
                                       "/tmp/nc-test.sock:"};
    CHECK(sorted_as(&c->pools[1], want, 5));
    CHECK_EQ_INT(c->pools[1].line, 5);
    conf_unref(c);
}

static void test_fixtures(void)
{
    conf_errors_free(&errs);
    struct conf *c = conf_load(DATA "twemproxy.yml", &errs);
    CHECK(c != NULL);
    CHECK_EQ_INT(errs.n, 0);
    if (c != NULL) {
        CHECK_EQ_INT(c->npools, 5);
        CHECK(strcmp(c->pools[0].name, "beta") == 0);  /* 4 letters */
        CHECK(strcmp(c->pools[4].name, "omega") == 0); /* then alpha delta gamma omega */
        CHECK_EQ_INT(c->pools[4].servers[0].weight, 100000);
        CHECK_EQ_INT(c->pools[4].listen.perm, 0666);
        CHECK_EQ_INT(c->pools[4].hash, HASH_HSIEH);
        CHECK_EQ_INT(c->pools[3].nservers, 2);
        CHECK_EQ_INT(c->pools[3].backlog, 1024);
        CHECK(strcmp(c->pools[0].servers[3].name, "server4") == 0);
    }
    conf_unref(c);

    c = conf_load(DATA "meitu.yml", &errs);
    CHECK(c != NULL);
    if (c != NULL) {
        CHECK_EQ_INT(c->global.worker_processes, -1);
        CHECK_EQ_INT(c->global.worker_shutdown_timeout, 10);
        CHECK_EQ_INT(c->global.max_openfiles, 65536);
        CHECK(strcmp(c->global.user, "nobody") == 0);
        CHECK(strcmp(c->global.group, "nogroup") == 0);
        CHECK_EQ_INT(c->npools, 2);
        CHECK(strcmp(c->pools[0].name, "web") == 0);
        CHECK(strcmp(c->pools[1].name, "cache") == 0);
        CHECK(strcmp(c->pools[1].servers[0].name, "127.0.0.1") == 0);
        CHECK_EQ_INT(c->pools[1].distribution, DIST_MODULA);
        CHECK(strcmp(c->pools[0].servers[0].name, "master") == 0);
    }
    conf_unref(c);

    /* every problem of the file at once, in line order */
    c = conf_load(DATA "errors.yml", &errs);
    CHECK(c == NULL);
    static const char *const want[] = {
        DATA "errors.yml:3: hash: \"foo\" is not a valid hash (one of one_at_a_time, md5, crc16, "
             "crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, jenkins)",
        DATA "errors.yml:4: distribution: \"bar\" is not a valid distribution (one of ketama, "
             "modula, random)",
        DATA "errors.yml:5: timeout: \"x\" is not a number",
        DATA "errors.yml:6: timeout: directive is a duplicate (first on line 5)",
        DATA "errors.yml:7: redis_auth: directive is only valid for a redis pool",
        DATA "errors.yml:8: server_connections: directive cannot be 0",
        DATA "errors.yml:9: reuse_port: directive is unknown",
        DATA "errors.yml:11: servers: \"127.0.0.1:6379:0\" has a zero weight in "
             "\"hostname:port:weight [name]\" format string",
        DATA "errors.yml:13: servers: pool 'alpha' has servers with same name '127.0.0.1:6380'",
        DATA "errors.yml:15: listen: pools 'alpha' and 'beta' have the same listen address "
             "'127.0.0.1:22121'",
        DATA "errors.yml:16: redis: \"yes\" is not \"true\" or \"false\"",
        DATA "errors.yml:18: servers: \"127.0.0.1:6381\" has an invalid "
             "\"hostname:port:weight [name]\" or \"/path/unix_socket:weight [name]\" format "
             "string",
    };
    CHECK_EQ_INT(errs.n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]) && i < errs.n; i++) {
        if (strcmp(errs.msgs[i], want[i]) != 0) {
            fprintf(stderr, "got  %s\nwant %s\n", errs.msgs[i], want[i]);
            CHECK(0);
        }
    }

    conf_errors_free(&errs);
    c = conf_load(DATA "missing.yml", &errs);
    CHECK(c == NULL);
    CHECK(has_err(DATA "missing.yml:1: conf: cannot open: No such file or directory"));
}

static void test_layouts(void)
{
    /* meitu's layout with defaults for what global leaves out */
    struct conf *c = load("global:\n  worker_processes: 4\npools:\n  "
                          "alpha:\n"
                          "    listen: 127.0.0.1:22121\n    servers:\n     - 127.0.0.1:6379:1\n");
    CHECK(c != NULL && c->global.worker_processes == 4);
    CHECK(c != NULL && c->global.worker_shutdown_timeout == 30 && c->npools == 1);
    conf_unref(c);

    c = load("pools:\n  alpha:\n    listen: 127.0.0.1:22121\n    servers:\n"
             "     - 127.0.0.1:6379:1\n");
    CHECK(c != NULL && c->npools == 1 && strcmp(c->pools[0].name, "alpha") == 0);
    conf_unref(c);

    /* a twemproxy pool that happens to be called "pools" or "global" */
    c = load("global:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1\n"
             "pools:\n  listen: 127.0.0.1:22122\n  servers:\n   - 127.0.0.1:6379:1\n");
    CHECK(c != NULL && c->npools == 2);
    CHECK(c != NULL && strcmp(c->pools[0].name, "pools") == 0);
    conf_unref(c);

    /* meitu's layout with a pool called "listen" */
    c = load("pools:\n  listen:\n    listen: 127.0.0.1:22121\n    servers:\n"
             "     - 127.0.0.1:6379:1\n");
    CHECK(c != NULL && c->npools == 1 && strcmp(c->pools[0].name, "listen") == 0);
    conf_unref(c);

    expect_err("global:\n  worker_processes: 2\n", "t.yml:1: pools: no pools are defined");
    expect_err("\"\":\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1\n",
               "t.yml:1: \"\": a pool's name cannot be empty");
    expect_err("global:\n  workers: 2\npools:\n  a:\n    listen: 127.0.0.1:22121\n"
               "    servers:\n     - 127.0.0.1:6379:1\n",
               "t.yml:2: workers: directive is unknown");
    expect_err("global:\n  worker_processes: many\npools:\n  a:\n    listen: 127.0.0.1:22121\n"
               "    servers:\n     - 127.0.0.1:6379:1\n",
               "t.yml:2: worker_processes: \"many\" is not a number or \"auto\"");
    expect_err("global:\n  max_openfiles: 0\npools:\n  a:\n    listen: 127.0.0.1:22121\n"
               "    servers:\n     - 127.0.0.1:6379:1\n",
               "t.yml:2: max_openfiles: directive cannot be 0");
    expect_err("global: 3\npools:\n  a:\n    listen: 127.0.0.1:22121\n"
               "    servers:\n     - 127.0.0.1:6379:1\n",
               "t.yml:1: global: directive needs a mapping, not a scalar");
    expect_err("global:\n  user: nobody\nglobal:\n  user: root\npools:\n  a:\n"
               "    listen: 127.0.0.1:22121\n    servers:\n     - 127.0.0.1:6379:1\n",
               "t.yml:3: global: directive is a duplicate (first on line 1)");
    /* accounts are looked up where they will be used: by a proxy started as root */
    const char *nouser = "global:\n  worker_processes: 0\n  user: no-such-user-nc\n"
                         "  group: no-such-group-nc\npools:\n  a:\n"
                         "    listen: 127.0.0.1:22121\n    servers:\n     - 127.0.0.1:6379:1\n";
    c = load_flags(nouser, CONF_F_NUMERIC_ONLY);
    if (geteuid() == 0) {
        CHECK(c == NULL);
        CHECK_EQ_INT(errs.n, 2);
        CHECK(has_err("t.yml:3: user: no user \"no-such-user-nc\" on this system"));
        CHECK(has_err("t.yml:4: group: no group \"no-such-group-nc\" on this system"));
    } else {
        CHECK(c != NULL); /* not root: the names are not used */
    }
    conf_unref(c);
}

static void test_key_errors(void)
{
    expect_key_err("hash: MD5", "t.yml:5: hash: \"MD5\" is not a valid hash (one of "
                                "one_at_a_time, md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64, "
                                "fnv1_32, fnv1a_32, hsieh, murmur, jenkins)");
    expect_key_err("hash_tag: \"{\"",
                   "t.yml:5: hash_tag: \"{\" is not a valid hash tag string with two characters");
    expect_key_err("hash_tag: abc",
                   "t.yml:5: hash_tag: \"abc\" is not a valid hash tag string with two characters");
    expect_key_err("distribution: consistent",
                   "t.yml:5: distribution: \"consistent\" is not a valid distribution (one of "
                   "ketama, modula, random)");
    expect_key_err("timeout: -1", "t.yml:5: timeout: \"-1\" is not a number");
    expect_key_err("timeout: 1e3", "t.yml:5: timeout: \"1e3\" is not a number");
    expect_key_err("timeout: 99999999999999999999",
                   "t.yml:5: timeout: 99999999999999999999 is out of range (0..1000000000000)");
    expect_key_err("backlog: 2147483648",
                   "t.yml:5: backlog: 2147483648 is out of range (0..2147483647)");
    expect_key_err("reply_batch_wait: 1001",
                   "t.yml:5: reply_batch_wait: 1001 is out of range (0..1000)");
    /* past 2^63 too: out of range, not "cannot be 0" (the value was not read) */
    expect_key_err("server_connections: 99999999999999999999",
                   "t.yml:5: server_connections: 99999999999999999999 is out of range "
                   "(1..2147483647)");
    /* a value's control bytes are escaped: a message stays one line */
    expect_key_err("hash: |\n    fnv1a_64\n",
                   "t.yml:5: hash: \"fnv1a_64\\n\" is not a valid hash (one of one_at_a_time, md5, "
                   "crc16, crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, "
                   "jenkins)");
    expect_key_err(
        "hash: \"a\\e[1m\\r\\nx.yml:1: y: z\"",
        "t.yml:5: hash: \"a\\x1b[1m\\r\\nx.yml:1: y: z\" is not a valid hash (one of "
        "one_at_a_time, md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, "
        "hsieh, murmur, jenkins)");
    expect_key_err("client_connections: x", "t.yml:5: client_connections: \"x\" is not a number");
    expect_key_err("redis: True", "t.yml:5: redis: \"True\" is not \"true\" or \"false\"");
    expect_key_err("tcpkeepalive: 1", "t.yml:5: tcpkeepalive: \"1\" is not \"true\" or \"false\"");
    expect_key_err("reuseport: on", "t.yml:5: reuseport: \"on\" is not \"true\" or \"false\"");
    expect_key_err("preconnect: yes", "t.yml:5: preconnect: \"yes\" is not \"true\" or \"false\"");
    expect_key_err("auto_eject_hosts: no",
                   "t.yml:5: auto_eject_hosts: \"no\" is not \"true\" or \"false\"");
    expect_key_err("redis_auth: pw",
                   "t.yml:5: redis_auth: directive is only valid for a redis pool");
    expect_key_err("redis_db: -2", "t.yml:5: redis_db: \"-2\" is not a number");
    expect_key_err("server_connections: 0", "t.yml:5: server_connections: directive cannot be 0");
    expect_key_err("server_retry_timeout: soon",
                   "t.yml:5: server_retry_timeout: \"soon\" is not a number");
    expect_key_err("server_failure_limit: -1",
                   "t.yml:5: server_failure_limit: \"-1\" is not a number");
    expect_key_err("bogus: 1", "t.yml:5: bogus: directive is unknown");
    expect_key_err("timeout:", "t.yml:5: timeout: directive has no value");
    expect_key_err("hash: ''", "t.yml:5: hash: directive has no value");
    expect_key_err("hash: [md5]", "t.yml:5: hash: directive needs a single value, not a list");
    expect_key_err("redis_auth: \"a\\0b\"", "t.yml:5: redis_auth: value contains a NUL byte");
    expect_key_err("listen: 127.0.0.1:22122",
                   "t.yml:5: listen: directive is a duplicate (first on line 2)");
    expect_key_err("servers:\n   - 127.0.0.1:6380:1",
                   "t.yml:5: servers: directive is a duplicate (first on line 3)");
}

static void test_listen_errors(void)
{
    const char *tail = "\n  servers:\n   - 127.0.0.1:6379:1\n";
    char yml[256];
    struct {
        const char *listen, *msg;
    } cases[] = {
        {"127.0.0.1", "t.yml:2: listen: \"127.0.0.1\" has an invalid \"hostname:port\" format "
                      "string"},
        {"127.0.0.1:0", "t.yml:2: listen: \"127.0.0.1:0\" has an invalid port in "
                        "\"hostname:port\" format string"},
        {"127.0.0.1:65536", "t.yml:2: listen: \"127.0.0.1:65536\" has an invalid port in "
                            "\"hostname:port\" format string"},
        {"rel.sock", "t.yml:2: listen: \"rel.sock\" has an invalid \"hostname:port\" format "
                     "string"},
        {"/tmp/x.sock 999", "t.yml:2: listen: \"/tmp/x.sock 999\" has an invalid permission "
                            "\"999\" (octal, e.g. 0666)"},
        {"/tmp/x.sock 0666 x", "t.yml:2: listen: \"/tmp/x.sock 0666 x\" has an invalid "
                               "permission \"0666 x\" (octal, e.g. 0666)"},
        {"127.0.0.1:22121:1", "t.yml:2: listen: \"127.0.0.1:22121:1\" has an invalid "
                              "\"hostname:port\" format string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(yml, sizeof(yml), "alpha:\n  listen: %s%s", cases[i].listen, tail);
        expect_err(yml, cases[i].msg);
    }
    /* 108 bytes cannot fit sun_path */
    char path[120];
    memset(path, 'x', sizeof(path));
    path[0] = '/';
    path[108] = '\0';
    snprintf(yml, sizeof(yml), "alpha:\n  listen: %s%s", path, tail);
    struct conf *c = load(yml);
    CHECK(c == NULL && errs.n == 1 && strstr(errs.msgs[0], "is too long (max 107 bytes)"));
    /* a name that does not resolve is an error for listen (not for servers) */
    c = load("alpha:\n  listen: nohost.invalid:22121\n  servers:\n   - 127.0.0.1:6379:1\n");
    CHECK(c == NULL && errs.n == 1);
    CHECK(errs.n == 1 &&
          strncmp(errs.msgs[0], "t.yml:2: listen: cannot resolve \"nohost.invalid\" (", 50) == 0);
    conf_unref(c);
    /* same address written two ways is still the same address */
    expect_err("a:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1\n"
               "b:\n  listen: 127.000.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1\n",
               "t.yml:6: listen: pools 'a' and 'b' have the same listen address "
               "'127.000.0.1:22121'");
    expect_err("a:\n  listen: /tmp/x.sock\n  servers:\n   - 127.0.0.1:6379:1\n"
               "b:\n  listen: /tmp/x.sock 0600\n  servers:\n   - 127.0.0.1:6379:1\n",
               "t.yml:6: listen: pools 'a' and 'b' have the same listen address '/tmp/x.sock'");
}

static void test_server_errors(void)
{
    struct {
        const char *server, *msg;
    } cases[] = {
        {"127.0.0.1:6379:0", "\"127.0.0.1:6379:0\" has a zero weight in \"hostname:port:weight "
                             "[name]\" format string"},
        {"127.0.0.1:6379:x", "\"127.0.0.1:6379:x\" has an invalid weight in "
                             "\"hostname:port:weight [name]\" format string"},
        {"127.0.0.1:6379:1 a b", "\"127.0.0.1:6379:1 a b\" has a name with a space or a tab in "
                                 "\"hostname:port:weight [name]\" format string (the name is "
                                 "one word)"},
        {"127.0.0.1:6379:1\tb", "\"127.0.0.1:6379:1\tb\" has a name with a space or a tab in "
                                "\"hostname:port:weight [name]\" format string (the name is "
                                "one word)"},
        {"127.0.0.1:6379:2147483648", "\"127.0.0.1:6379:2147483648\" has an invalid weight in "
                                      "\"hostname:port:weight [name]\" format string"},
        {"127.0.0.1:x:1", "\"127.0.0.1:x:1\" has an invalid port in \"hostname:port:weight "
                          "[name]\" format string"},
        {"127.0.0.1:70000:1", "\"127.0.0.1:70000:1\" has an invalid port in "
                              "\"hostname:port:weight [name]\" format string"},
        {"127.0.0.1:6379", "\"127.0.0.1:6379\" has an invalid \"hostname:port:weight [name]\" or "
                           "\"/path/unix_socket:weight [name]\" format string"},
        {"/tmp/x.sock", "\"/tmp/x.sock\" has an invalid \"hostname:port:weight [name]\" or "
                        "\"/path/unix_socket:weight [name]\" format string"},
        {"rel.sock:1", "\"rel.sock:1\" has an invalid \"hostname:port:weight [name]\" or "
                       "\"/path/unix_socket:weight [name]\" format string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yml[256], msg[256];
        snprintf(yml, sizeof(yml), "alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - %s\n",
                 cases[i].server);
        snprintf(msg, sizeof(msg), "t.yml:4: servers: %s", cases[i].msg);
        expect_err(yml, msg);
    }
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  servers:\n", "t.yml:3: servers: directive "
                                                                  "has no servers");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  servers: []\n",
               "t.yml:3: servers: directive has no servers");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  servers: 127.0.0.1:6379:1\n",
               "t.yml:3: servers: directive needs a list of servers, not a scalar");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - a: b\n",
               "t.yml:4: servers: directive needs a single value, not a mapping");
    /* same name, given or derived */
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1 x\n"
               "   - 127.0.0.1:6380:1 x\n",
               "t.yml:5: servers: pool 'alpha' has servers with same name 'x'");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6380:1 "
               "127.0.0.1:6379\n   - 127.0.0.1:6379:2\n",
               "t.yml:5: servers: pool 'alpha' has servers with same name '127.0.0.1:6379'");
}

/* Nesting past 64 is refused before the document is built (libyaml's time
 * grows with the square of the depth); 64 is only refused for what it is. */
static void test_depth(void)
{
    char yml[1024];
    for (int depth = 64; depth <= 65; depth++) {
        /* the pool's mapping is 2 deep: the value opens depth - 2 more */
        int n = snprintf(yml, sizeof(yml), "%snest: ", MIN_POOL "  ");
        for (int i = 0; i < depth - 2; i++) {
            n += snprintf(yml + n, sizeof(yml) - (size_t)n, "[");
        }
        for (int i = 0; i < depth - 2; i++) {
            n += snprintf(yml + n, sizeof(yml) - (size_t)n, "]");
        }
        snprintf(yml + n, sizeof(yml) - (size_t)n, "\n");
        expect_err(yml, depth == 64 ? "t.yml:5: nest: directive is unknown"
                                    : "t.yml:5: syntax: collections nested more than 64 deep");
    }
}

static void test_structure_errors(void)
{
    expect_err("", "t.yml:1: conf: no pools are defined (the file is empty)");
    expect_err("# only a comment\n", "t.yml:1: conf: no pools are defined (the file is empty)");
    expect_err("{}\n", "t.yml:1: pools: no pools are defined");
    expect_err("- a\n", "t.yml:1: conf: the top level must be a mapping of pool names to "
                        "pools, not a list");
    expect_err("alpha: x\n", "t.yml:1: alpha: pool needs a mapping of directives, not a scalar");
    expect_err("alpha:\n  servers:\n   - 127.0.0.1:6379:1\n",
               "t.yml:1: listen: directive is missing in pool 'alpha'");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n",
               "t.yml:1: servers: directive is missing in pool 'alpha'");
    expect_err(MIN_POOL "alpha:\n  listen: 127.0.0.1:22122\n  servers:\n   - 127.0.0.1:6379:1\n",
               "t.yml:5: alpha: pool name is a duplicate (first on line 1)");
    expect_err(MIN_POOL "---\nbeta: 1\n", "t.yml:6: conf: the file must contain only 1 document");
    expect_err("alpha:\n  listen: &a 127.0.0.1:22121\n  servers:\n   - *a\n",
               "t.yml:3: servers: YAML aliases are not supported");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  servers: [\n",
               "t.yml:4: syntax: did not find expected node content (while parsing a flow node "
               "started on line 4)");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n bad: 1\n",
               "t.yml:3: syntax: did not find expected key (while parsing a block mapping "
               "started on line 1)");
    expect_err("alpha:\n  listen: \"\xff\"\n", "t.yml:2: syntax: invalid leading UTF-8 octet "
                                               "(byte 18)");
    /* flow style is plain YAML and accepted (twemproxy refuses it) */
    struct conf *c = load("{alpha: {listen: 127.0.0.1:22121, servers: [127.0.0.1:6379:1]}}");
    CHECK(c != NULL && c->npools == 1);
    conf_unref(c);
}

static void test_many_errors(void)
{
    /* 150 unknown keys: 100 messages, then one line counting the rest */
    size_t cap = 150 * 16 + 128;
    char *yml = malloc(cap);
    size_t n = (size_t)snprintf(yml, cap, "%s", MIN_POOL);
    for (int i = 0; i < 150; i++) {
        n += (size_t)snprintf(yml + n, cap - n, "  k%d: 1\n", i);
    }
    struct conf *c = load(yml);
    CHECK(c == NULL);
    CHECK_EQ_INT(errs.n, 101);
    CHECK(has_err("t.yml:5: k0: directive is unknown"));
    CHECK(has_err("t.yml:1: conf: 50 more problems not shown"));
    free(yml);

    /* without a place for messages the verdict is the same */
    c = conf_load_buf("t.yml", "alpha: 1\n", 9, NULL);
    CHECK(c == NULL);
}

/* A sentinel pool (SPEC 9) with only what it needs. */
#define SENTINEL_POOL                                                                              \
    "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  groups:\n   - g1\n  sentinels:\n"         \
    "   - 127.0.0.1:26379\n"

static void test_sentinel_pool(void)
{
    struct conf *c = load("alpha:\n"
                          "  listen: 127.0.0.1:22121\n"
                          "  redis: true\n"
                          "  sentinel_heartbeat: 250\n"
                          "  sentinel_auth: s3cret\n"
                          "  failover_hold: 2500\n"
                          "  failover_hold_on_crash: true\n"
                          "  groups:\n"
                          "   - cache-long\n"
                          "   - cache\n"
                          "   - b\n"
                          "  sentinels:\n"
                          "   - 127.0.0.1:26379 s0\n"
                          "   - \"[::1]:26380\"\n"
                          "   - 10.0.0.3:26381\n");
    CHECK(c != NULL);
    if (c == NULL) {
        return;
    }
    const struct conf_pool *p = &c->pools[0];
    CHECK_EQ_INT(p->sentinel_heartbeat_ms, 250);
    CHECK(p->sentinel_auth != NULL && strcmp(p->sentinel_auth, "s3cret") == 0);
    CHECK_EQ_INT(p->failover_hold_ms, 2500);
    CHECK(p->failover_hold_on_crash);
    /* groups are the servers, sorted like servers, named after the group */
    CHECK_EQ_INT(p->nservers, 3);
    CHECK(strcmp(p->servers[0].name, "b") == 0 && strcmp(p->servers[0].pname, "b") == 0);
    CHECK(strcmp(p->servers[1].name, "cache") == 0);
    CHECK(strcmp(p->servers[2].name, "cache-long") == 0);
    CHECK_EQ_INT(p->servers[1].weight, 1);
    CHECK_EQ_INT(p->servers[1].line, 10);
    CHECK(p->servers[1].addr.text == NULL && p->servers[1].addr.salen == 0);
    /* sentinels keep file order; the name is optional */
    CHECK_EQ_INT(p->nsentinels, 3);
    CHECK(strcmp(p->sentinels[0].name, "s0") == 0);
    CHECK_EQ_INT(p->sentinels[0].addr.port, 26379);
    CHECK_EQ_INT(p->sentinels[0].addr.sa.ss_family, AF_INET);
    CHECK_EQ_INT(p->sentinels[0].line, 13);
    CHECK(strcmp(p->sentinels[1].name, "[::1]:26380") == 0);
    CHECK(strcmp(p->sentinels[1].addr.host, "::1") == 0);
    CHECK_EQ_INT(p->sentinels[1].addr.sa.ss_family, AF_INET6);
    CHECK(strcmp(p->sentinels[2].name, "10.0.0.3:26381") == 0);
    conf_unref(c);

    c = load(SENTINEL_POOL);
    CHECK(c != NULL && c->pools[0].sentinel_heartbeat_ms == 1000);
    CHECK(c != NULL && c->pools[0].sentinel_auth == NULL && c->pools[0].nservers == 1);
    /* planned failovers are held 5 s by default, crashes fail fast */
    CHECK(c != NULL && c->pools[0].failover_hold_ms == 5000);
    CHECK(c != NULL && !c->pools[0].failover_hold_on_crash);
    conf_unref(c);
    c = load(SENTINEL_POOL "  failover_hold: 0\n");
    CHECK(c != NULL && c->pools[0].failover_hold_ms == 0);
    conf_unref(c);
    /* andyqzb's sentinel fork: servers named after the sentinels' masters (their
     * addresses a first guess, left to the sentinels), sentinels with weights */
    c = load("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n"
             "   - 127.0.0.1:2100:1 server1\n   - 127.0.0.1:2101:2 server2\n  sentinels:\n"
             "   - 127.0.0.1:26379:1 sentinel-1\n   - \"[::1]:26380:1\"\n");
    CHECK(c != NULL);
    if (c != NULL) {
        const struct conf_pool *q = &c->pools[0];
        CHECK_EQ_INT(q->nservers, 2);
        CHECK(strcmp(q->servers[0].name, "server1") == 0 &&
              strcmp(q->servers[0].pname, "server1") == 0);
        CHECK(q->servers[0].addr.text == NULL && q->servers[0].addr.salen == 0);
        CHECK_EQ_INT(q->servers[1].weight, 2);
        CHECK_EQ_INT(q->nsentinels, 2);
        CHECK_EQ_INT(q->sentinels[0].addr.port, 26379);
        CHECK(strcmp(q->sentinels[0].addr.text, "127.0.0.1:26379") == 0);
        CHECK(strcmp(q->sentinels[0].name, "sentinel-1") == 0);
        CHECK_EQ_INT(q->sentinels[1].addr.port, 26380);
        CHECK(strcmp(q->sentinels[1].addr.host, "::1") == 0);
    }
    conf_unref(c);
    /* an ordinary pool is no sentinel pool */
    c = load(MIN_POOL);
    CHECK(c != NULL && c->pools[0].nsentinels == 0 && c->pools[0].sentinels == NULL);
    CHECK(c != NULL && !c->pools[0].failover_hold_on_crash);
    conf_unref(c);
    /* ... but may hold a server's requests through its restart */
    c = load(MIN_POOL "  failover_hold_on_crash: true\n  failover_hold: 800\n");
    CHECK(c != NULL && c->pools[0].failover_hold_on_crash && c->pools[0].failover_hold_ms == 800);
    conf_unref(c);
    c = load(MIN_POOL "  failover_hold_on_crash: true\n");
    CHECK(c != NULL && c->pools[0].failover_hold_ms == 5000);
    conf_unref(c);
    expect_err(MIN_POOL "  failover_hold: 800\n",
               "t.yml:5: failover_hold: directive is only valid in a pool with sentinels, or "
               "with failover_hold_on_crash: true");
    /* a bad value is the one error said (not also failover_hold's) */
    struct conf *bad = load_flags(MIN_POOL "  failover_hold_on_crash: yes\n  failover_hold: 800\n",
                                  CONF_F_NUMERIC_ONLY);
    CHECK(bad == NULL && errs.n == 1);
    CHECK(has_err("t.yml:5: failover_hold_on_crash: \"yes\" is not \"true\" or \"false\""));
    conf_unref(bad);
    expect_err(MIN_POOL "  auto_eject_hosts: true\n  failover_hold_on_crash: true\n",
               "t.yml:6: failover_hold_on_crash: directive cannot be true with auto_eject_hosts: "
               "true on line 5 (an ejected server's keys go to other servers instead of waiting "
               "for it)");
}

static void test_sentinel_errors(void)
{
    expect_err(SENTINEL_POOL "  servers:\n   - 127.0.0.1:6379:1\n",
               "t.yml:8: servers: directive cannot be used in a pool with sentinels and groups "
               "(its groups are the servers)");
    /* andyqzb's layout: each server is named after its sentinel master */
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n"
               "   - 127.0.0.1:6379:1 g1\n   - 127.0.0.1:6380:1\n  sentinels:\n"
               "   - 127.0.0.1:26379\n",
               "t.yml:6: servers: \"127.0.0.1:6380:1\" has no name: in a pool with sentinels a "
               "server is named after its sentinel master (or list the names under groups)");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  sentinels:\n"
               "   - 127.0.0.1:26379\n",
               "t.yml:1: groups: directive is missing in pool 'alpha' (it has sentinels)");
    /* groups (and the other sentinel keys) need sentinels */
    expect_key_err("groups:\n   - g1", "t.yml:5: groups: directive is only valid in a pool with "
                                       "sentinels");
    expect_key_err("sentinel_heartbeat: 10",
                   "t.yml:5: sentinel_heartbeat: directive is only valid in a pool with sentinels");
    expect_key_err("sentinel_auth: pw",
                   "t.yml:5: sentinel_auth: directive is only valid in a pool with sentinels");
    expect_key_err("failover_hold: 100",
                   "t.yml:5: failover_hold: directive is only valid in a pool with sentinels, or "
                   "with failover_hold_on_crash: true");
    /* groups without sentinels and without servers: both are said */
    struct conf *c = load_flags("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  groups:\n"
                                "   - g1\n",
                                CONF_F_NUMERIC_ONLY);
    CHECK(c == NULL);
    CHECK(has_err("t.yml:1: servers: directive is missing in pool 'alpha'"));
    CHECK(has_err("t.yml:4: groups: directive is only valid in a pool with sentinels"));
    conf_unref(c);

    expect_err(SENTINEL_POOL "  sentinel_heartbeat: 0\n",
               "t.yml:8: sentinel_heartbeat: directive cannot be 0");
    expect_err(SENTINEL_POOL "  sentinel_heartbeat: soon\n",
               "t.yml:8: sentinel_heartbeat: \"soon\" is not a number");
    expect_err(SENTINEL_POOL "  failover_hold: -1\n",
               "t.yml:8: failover_hold: \"-1\" is not a number");
    expect_err(SENTINEL_POOL "  failover_hold_on_crash: yes\n",
               "t.yml:8: failover_hold_on_crash: \"yes\" is not \"true\" or \"false\"");
    expect_err(SENTINEL_POOL "  sentinel_auth: [a]\n",
               "t.yml:8: sentinel_auth: directive needs a single value, not a list");
    expect_err(SENTINEL_POOL "  groups:\n   - g2\n",
               "t.yml:8: groups: directive is a duplicate (first on line 4)");
    expect_err(SENTINEL_POOL "  sentinels:\n   - 127.0.0.1:26380\n",
               "t.yml:8: sentinels: directive is a duplicate (first on line 6)");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  groups:\n   - g1\n   - g1\n"
               "  sentinels:\n   - 127.0.0.1:26379\n",
               "t.yml:6: groups: pool 'alpha' has groups with same name 'g1'");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  groups:\n   - \"a b\"\n"
               "  sentinels:\n   - 127.0.0.1:26379\n",
               "t.yml:5: groups: group name \"a b\" contains white space");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  groups: []\n"
               "  sentinels:\n   - 127.0.0.1:26379\n",
               "t.yml:4: groups: directive has no groups");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  groups: g1\n"
               "  sentinels:\n   - 127.0.0.1:26379\n",
               "t.yml:4: groups: directive needs a list of groups, not a scalar");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  groups:\n   - g1\n"
               "  sentinels:\n   - 127.0.0.1\n",
               "t.yml:7: sentinels: \"127.0.0.1\" has an invalid \"hostname:port [name]\" format "
               "string");
    /* a colon too many after the weight: refused here, not left to fail to
     * resolve "127.0.0.1:26379" at every connect */
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  groups:\n   - g1\n"
               "  sentinels:\n   - 127.0.0.1:26379:1:1 s1\n",
               "t.yml:7: sentinels: \"127.0.0.1:26379:1:1 s1\" has an invalid \"hostname:port "
               "[name]\" format string");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  groups:\n   - g1\n"
               "  sentinels:\n   - 127.0.0.1:0 s\n",
               "t.yml:7: sentinels: \"127.0.0.1:0 s\" has an invalid port in \"hostname:port "
               "[name]\" format string");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  groups:\n   - g1\n"
               "  sentinels:\n",
               "t.yml:6: sentinels: directive has no sentinels");
}

/* A pool with sentinels or groups is a redis pool without saying so, as in
 * twemproxy-163 (whose pools are all redis); "redis: false" there is refused. */
#define NO_REDIS_KEY_POOL                                                                          \
    "alpha:\n  listen: 127.0.0.1:22121\n  groups:\n   - g1\n  sentinels:\n   - 127.0.0.1:26379\n"

static void test_sentinel_pool_is_redis(void)
{
    /* the keys that need a redis pool follow the implied "redis: true" */
    struct conf *c = load(NO_REDIS_KEY_POOL "  redis_auth: pw\n  redis_db: 3\n"
                                            "  read_from: prefer_replica\n");
    CHECK(c != NULL);
    if (c != NULL) {
        CHECK(c->pools[0].redis);
        CHECK(c->pools[0].redis_auth != NULL && strcmp(c->pools[0].redis_auth, "pw") == 0);
        CHECK_EQ_INT(c->pools[0].redis_db, 3);
        CHECK_EQ_INT(c->pools[0].read_from, READ_FROM_PREFER_REPLICA);
    }
    conf_unref(c);
    c = load(SENTINEL_POOL);
    CHECK(c != NULL && c->pools[0].redis);
    conf_unref(c);
    /* ordinary pools keep twemproxy's default */
    c = load(MIN_POOL);
    CHECK(c != NULL && !c->pools[0].redis);
    conf_unref(c);

    /* one message, on the redis line: its echoes (redis_auth, read_from "only
     * valid for a redis pool") would hide the cause */
    expect_err(NO_REDIS_KEY_POOL "  redis: false\n  redis_auth: pw\n  read_from: replica\n",
               "t.yml:7: redis: directive must be true in a pool with sentinels (sentinel pools "
               "are redis pools; leave it out or say true)");
    /* not a boolean: both are true of it */
    c = load_flags("alpha:\n  listen: 127.0.0.1:22121\n  redis: yes\n  groups:\n   - g1\n"
                   "  sentinels:\n   - 127.0.0.1:26379\n",
                   CONF_F_NUMERIC_ONLY);
    CHECK(c == NULL);
    CHECK_EQ_INT(errs.n, 2);
    CHECK(has_err("t.yml:3: redis: \"yes\" is not \"true\" or \"false\""));
    CHECK(has_err("t.yml:3: redis: directive must be true in a pool with sentinels (sentinel pools "
                  "are redis pools; leave it out or say true)"));
    conf_unref(c);
    /* groups without sentinels: both problems, redis: false named after the
     * key that is there */
    c = load_flags(MIN_POOL "  redis: false\n  groups:\n   - g1\n", CONF_F_NUMERIC_ONLY);
    CHECK(c == NULL);
    CHECK_EQ_INT(errs.n, 2);
    CHECK(has_err("t.yml:5: redis: directive must be true in a pool with groups (sentinel pools "
                  "are redis pools; leave it out or say true)"));
    CHECK(has_err("t.yml:6: groups: directive is only valid in a pool with sentinels"));
    conf_unref(c);
}

/* twemproxy-163's own example (seeds/000) as a fixture of the e2e tests. */
static void test_twemproxy163_example(void)
{
    conf_errors_free(&errs);
    struct conf *c =
        conf_load("tests/fixtures/seeds/000_f3ec260a3b5c1051_alpha_sentinels.yml", &errs);
    CHECK(c != NULL);
    CHECK_EQ_INT(errs.n, 0);
    if (c == NULL) {
        return;
    }
    const struct conf_pool *p = &c->pools[0];
    CHECK(p->redis);
    CHECK(strcmp(p->redis_auth, "123456") == 0);
    CHECK_EQ_INT(p->hash, HASH_MURMUR);
    CHECK_EQ_INT(p->timeout_ms, 400);
    CHECK_EQ_INT(p->sentinel_heartbeat_ms, 2000);
    CHECK_EQ_INT(p->nservers, 4);
    CHECK(strcmp(p->servers[3].name, "groups_helf_3") == 0);
    CHECK_EQ_INT(p->nsentinels, 3);
    CHECK(strcmp(p->sentinels[2].name, "sentinel2") == 0);
    CHECK_EQ_INT(p->read_from, READ_FROM_NONE);
    conf_unref(c);
}

/* meitu's master/replica pool (SPEC 10): a redis pool with a server named master. */
#define SPLIT_POOL                                                                                 \
    "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n   - 127.0.0.1:6380:1\n"        \
    "   - 127.0.0.1:6379:1 master\n   - 127.0.0.1:6381:1\n"

static void test_read_from(void)
{
    /* the master is found after sorting; reads go to replicas by default */
    struct conf *c = load(SPLIT_POOL);
    CHECK(c != NULL);
    if (c == NULL) {
        return;
    }
    const struct conf_pool *p = &c->pools[0];
    CHECK_EQ_INT(p->read_from, READ_FROM_REPLICA);
    CHECK_EQ_INT(p->nservers, 3);
    CHECK(strcmp(p->servers[p->master].name, "master") == 0);
    CHECK_EQ_INT(p->servers[p->master].addr.port, 6379);
    CHECK_EQ_INT(p->master, 0); /* names sort shorter first: "master" before "127.0.0.1:6380" */
    conf_unref(c);

    static const struct {
        const char *v;
        enum conf_read_from want;
    } vals[] = {{"master", READ_FROM_MASTER},
                {"replica", READ_FROM_REPLICA},
                {"prefer_replica", READ_FROM_PREFER_REPLICA}};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        char yml[512];
        snprintf(yml, sizeof(yml), "%s  read_from: %s\n", SPLIT_POOL, vals[i].v);
        c = load(yml);
        CHECK(c != NULL && c->pools[0].read_from == vals[i].want);
        CHECK(strcmp(conf_read_from_name(vals[i].want), vals[i].v) == 0);
        conf_unref(c);
    }
    /* without a server named master: plain sharding, whatever the pool */
    c = load(MIN_POOL);
    CHECK(c != NULL && c->pools[0].read_from == READ_FROM_NONE);
    conf_unref(c);
    c = load("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n"
             "   - 127.0.0.1:6379:1 masters\n   - 127.0.0.1:6380:1 Master\n");
    CHECK(c != NULL && c->pools[0].read_from == READ_FROM_NONE);
    conf_unref(c);
    /* memcached pools and sentinel pools never split, even with a "master" */
    c = load("alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:1 master\n"
             "   - 127.0.0.1:11212:1\n");
    CHECK(c != NULL && c->pools[0].read_from == READ_FROM_NONE);
    conf_unref(c);
    c = load("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  groups:\n   - master\n"
             "   - g2\n  sentinels:\n   - 127.0.0.1:26379\n");
    CHECK(c != NULL && c->pools[0].read_from == READ_FROM_NONE);
    conf_unref(c);
    /* sentinel pools: read_from picks where reads go (the groups' replicas come
     * from the sentinels); without it reads stay on the masters */
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        char yml[512];
        snprintf(yml, sizeof(yml), "%s  read_from: %s\n", SENTINEL_POOL, vals[i].v);
        c = load(yml);
        CHECK(c != NULL && c->pools[0].read_from == vals[i].want);
        conf_unref(c);
    }
    c = load(SENTINEL_POOL);
    CHECK(c != NULL && c->pools[0].read_from == READ_FROM_NONE);
    conf_unref(c);
}

static void test_read_from_errors(void)
{
    expect_err(SPLIT_POOL "  read_from: slave\n",
               "t.yml:8: read_from: \"slave\" is not a valid read_from (one of master, replica, "
               "prefer_replica)");
    expect_err(SPLIT_POOL "  read_from: [master]\n",
               "t.yml:8: read_from: directive needs a single value, not a list");
    expect_err(SPLIT_POOL "  read_from: master\n  read_from: replica\n",
               "t.yml:9: read_from: directive is a duplicate (first on line 8)");
    expect_key_err("read_from: master", "t.yml:5: read_from: directive is only valid for a redis "
                                        "pool");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  read_from: replica\n"
               "  servers:\n   - 127.0.0.1:6379:1\n   - 127.0.0.1:6380:1\n",
               "t.yml:4: read_from: directive needs a server named 'master' in pool 'alpha' (the "
               "master; the other servers are its replicas)");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:1 master\n"
               "  read_from: prefer_replica\n",
               "t.yml:5: read_from: directive is only valid for a redis pool");
    /* a sentinel pool takes read_from, but only valid values */
    expect_err(SENTINEL_POOL "  read_from: slave\n",
               "t.yml:8: read_from: \"slave\" is not a valid read_from (one of master, replica, "
               "prefer_replica)");
    /* two masters are two servers with the same name */
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n"
               "   - 127.0.0.1:6379:1 master\n   - 127.0.0.1:6380:1 master\n",
               "t.yml:6: servers: pool 'alpha' has servers with same name 'master'");
}

/* How long a static pool's replica may serve reads with its link down. */
static void test_replica_max_link_down(void)
{
    struct conf *c = load(SPLIT_POOL);
    CHECK(c != NULL && c->pools[0].replica_max_link_down_ms == -1); /* no bound */
    conf_unref(c);
    c = load(SPLIT_POOL "  replica_max_link_down: 10000\n");
    CHECK(c != NULL && c->pools[0].replica_max_link_down_ms == 10000);
    conf_unref(c);
    c = load(SPLIT_POOL "  read_from: prefer_replica\n  replica_max_link_down: 0\n");
    CHECK(c != NULL && c->pools[0].replica_max_link_down_ms == 0);
    conf_unref(c);
    expect_err(SPLIT_POOL "  replica_max_link_down: -1\n",
               "t.yml:8: replica_max_link_down: \"-1\" is not a number");
    expect_err(SENTINEL_POOL "  read_from: replica\n  replica_max_link_down: 5000\n",
               "t.yml:9: replica_max_link_down: directive is only valid in a pool with a server "
               "named 'master' (a sentinel group's replica gets no read while its link to its "
               "master is down)");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  replica_max_link_down: 5000\n"
               "  servers:\n   - 127.0.0.1:6379:1\n   - 127.0.0.1:6380:1\n",
               "t.yml:4: replica_max_link_down: directive needs a server named 'master' in pool "
               "'alpha' (the master; the other servers are its replicas)");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:1 master\n"
               "  replica_max_link_down: 5000\n",
               "t.yml:5: replica_max_link_down: directive is only valid for a redis pool");
    /* a cluster pool's shards have replicas too, when it reads from them */
    c = load("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  redis_cluster: true\n"
             "  read_from: prefer_replica\n  replica_max_link_down: 3000\n"
             "  servers:\n   - 127.0.0.1:7000:1\n");
    CHECK(c != NULL && c->pools[0].replica_max_link_down_ms == 3000);
    conf_unref(c);
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  redis_cluster: true\n"
               "  replica_max_link_down: 3000\n  servers:\n   - 127.0.0.1:7000:1\n",
               "t.yml:5: replica_max_link_down: directive needs read_from: replica or "
               "prefer_replica in cluster pool 'alpha' (its reads go to the masters)");
}

static void test_refcount(void)
{
    struct conf *c = load(MIN_POOL);
    CHECK(c != NULL);
    if (c == NULL) {
        return;
    }
    CHECK(conf_ref(c) == c);
    CHECK_EQ_INT(c->refs, 2);
    conf_unref(c);
    CHECK_EQ_INT(c->refs, 1);
    CHECK_EQ_INT(c->npools, 1); /* still intact: ASan would flag a use after free */
    conf_unref(c);
    conf_unref(NULL);
}

/* The TLS keys as read (CONF_F_NO_FILES: no certificate is read, contexts stay NULL). */
static void test_tls_keys(void)
{
    const char *yml = "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  tls: true\n"
                      "  tls_ca_file: /ca.pem\n  tls_ca_dir: /cas\n  tls_cert_file: /c.pem\n"
                      "  tls_key_file: /k.pem\n  tls_server_name: redis.example\n"
                      "  tls_verify: false\n"
                      "  listen_tls: {cert_file: /s.pem, key_file: /sk.pem, ca_file: /cca.pem,\n"
                      "    verify_client: true, protocols: TLSv1.3, ciphers: HIGH,\n"
                      "    ciphersuites: TLS_AES_256_GCM_SHA384}\n"
                      "  listen_tls_addr: 127.0.0.1:22122\n"
                      "  servers:\n   - 127.0.0.1:6379:1\n";
    struct conf *c = load_flags(yml, CONF_F_NUMERIC_ONLY | CONF_F_NO_FILES);
    CHECK(c != NULL);
    if (c == NULL) {
        return;
    }
    const struct conf_pool *p = &c->pools[0];
    CHECK(p->tls.enabled && !p->tls.verify && p->tls.ctx == NULL);
    CHECK(strcmp(p->tls.ca_file, "/ca.pem") == 0 && strcmp(p->tls.ca_dir, "/cas") == 0);
    CHECK(strcmp(p->tls.cert_file, "/c.pem") == 0 && strcmp(p->tls.key_file, "/k.pem") == 0);
    CHECK(strcmp(p->tls.server_name, "redis.example") == 0);
    CHECK(p->listen_tls.enabled && p->listen_tls.verify);
    CHECK(strcmp(p->listen_tls.cert_file, "/s.pem") == 0);
    CHECK(strcmp(p->listen_tls.key_file, "/sk.pem") == 0);
    CHECK(strcmp(p->listen_tls.ca_file, "/cca.pem") == 0);
    CHECK(strcmp(p->listen_tls.protocols, "TLSv1.3") == 0);
    CHECK(strcmp(p->listen_tls.ciphers, "HIGH") == 0);
    CHECK(strcmp(p->listen_tls.ciphersuites, "TLS_AES_256_GCM_SHA384") == 0);
    CHECK(strcmp(p->listen_tls_addr.text, "127.0.0.1:22122") == 0);
    CHECK(!p->sentinel_tls.enabled);
    conf_unref(c);
    /* defaults: verification on, plain clients */
    c = load_flags("alpha:\n  listen: 127.0.0.1:22121\n  tls: true\n  servers:\n"
                   "   - 127.0.0.1:6379:1\n",
                   CONF_F_NUMERIC_ONLY | CONF_F_NO_FILES);
    CHECK(c != NULL && c->pools[0].tls.verify && !c->pools[0].listen_tls.enabled);
    CHECK(c != NULL && c->pools[0].listen_tls_addr.text == NULL);
    conf_unref(c);
}

static void test_sentinel_tls(void)
{
    const char *head = "alpha:\n  listen: 127.0.0.1:22121\n  sentinels:\n   - 127.0.0.1:26379\n"
                       "  groups:\n   - g1\n  tls: true\n  tls_ca_file: /ca.pem\n";
    char yml[512];
    snprintf(yml, sizeof(yml), "%s  sentinel_tls: true\n", head);
    struct conf *c = load_flags(yml, CONF_F_NUMERIC_ONLY | CONF_F_NO_FILES);
    CHECK(c != NULL);
    if (c != NULL) { /* true: the pool's tls_* settings */
        const struct conf_tls *t = &c->pools[0].sentinel_tls;
        CHECK(t->enabled && !t->is_map && t->verify && strcmp(t->ca_file, "/ca.pem") == 0);
    }
    conf_unref(c);
    snprintf(yml, sizeof(yml), "%s  sentinel_tls: {ca_file: /sca.pem, verify: false}\n", head);
    c = load_flags(yml, CONF_F_NUMERIC_ONLY | CONF_F_NO_FILES);
    CHECK(c != NULL);
    if (c != NULL) { /* a mapping: its own */
        const struct conf_tls *t = &c->pools[0].sentinel_tls;
        CHECK(t->enabled && t->is_map && !t->verify && strcmp(t->ca_file, "/sca.pem") == 0);
    }
    conf_unref(c);
}

static void test_tls_errors(void)
{
    expect_key_err("tls_ca_file: /ca.pem",
                   "t.yml:5: tls_ca_file: directive is only valid with tls: true (or sentinel_tls: "
                   "true)");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  tls: true\n  tls_verify: maybe\n"
               "  servers:\n   - 127.0.0.1:6379:1\n",
               "t.yml:4: tls_verify: \"maybe\" is not \"true\" or \"false\"");
    expect_key_err("listen_tls: yes",
                   "t.yml:5: listen_tls: directive needs a mapping (cert_file, key_file, ...), not "
                   "\"yes\"");
    expect_key_err("listen_tls: {cert_file: /c.pem}",
                   "t.yml:5: listen_tls: cert_file and key_file are required");
    expect_key_err("listen_tls: {cert_file: /c.pem, key_file: /k.pem, verify_client: true}",
                   "t.yml:5: listen_tls: verify_client needs ca_file or ca_dir (the CA client "
                   "certificates come from)");
    expect_key_err("listen_tls: {cert_file: /c.pem, key_file: /k.pem, protocols: SSLv3}",
                   "t.yml:5: listen_tls: protocols \"SSLv3\" is not a list of TLSv1, TLSv1.1, "
                   "TLSv1.2, TLSv1.3");
    expect_key_err("listen_tls: {cert_file: /c.pem, key_file: /k.pem, cert: /c.pem}",
                   "t.yml:5: cert: directive is unknown");
    expect_key_err(
        "listen_tls_addr: 127.0.0.1:1",
        "t.yml:5: listen_tls_addr: directive needs listen_tls (the certificate to serve on "
        "it)");
    expect_key_err("sentinel_tls: true",
                   "t.yml:5: sentinel_tls: directive is only valid in a pool with sentinels");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  tls: true\n  tls_cert_file: /c.pem\n"
               "  servers:\n   - 127.0.0.1:6379:1\n",
               "t.yml:4: tls_cert_file: tls_cert_file needs tls_key_file too");
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  listen_tls: {cert_file: /c, key_file: /k}\n"
               "  listen_tls_addr: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1\n",
               "t.yml:3: listen_tls_addr: pool 'alpha' has listen_tls_addr equal to its listen "
               "address '127.0.0.1:22121'");
    /* files that cannot be read refuse the generation: FILE: reason */
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  tls: true\n  tls_ca_file: /nonexistent.pem\n"
               "  servers:\n   - 127.0.0.1:6379:1\n",
               "t.yml:3: tls: /nonexistent.pem: No such file or directory");
}

static void test_client_auth(void)
{
    const char *yml = "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n"
                      "  redis_auth: \"app s3cret word\"\n  client_auth:\n   - alice pw1\n"
                      "   - bob sha256:"
                      "5E884898DA28047151D0E56F8DC6292773603D0D6AABBDD62A11EF721D1542D8\n"
                      "   - onlypass\n  servers:\n   - 127.0.0.1:6379:1\n";
    struct conf *c = load_flags(yml, CONF_F_NUMERIC_ONLY | CONF_F_NO_FILES);
    CHECK(c != NULL);
    if (c == NULL) {
        return;
    }
    const struct conf_pool *p = &c->pools[0];
    /* the user is the first word; the password keeps its spaces */
    CHECK(strcmp(p->redis_auth_user, "app") == 0 && strcmp(p->redis_auth, "s3cret word") == 0);
    CHECK_EQ_INT(p->nclient_users, 3);
    const uint8_t *u = (const uint8_t *)"alice", *pw = (const uint8_t *)"pw1";
    CHECK(conf_user_check(p, u, 5, pw, 3));
    CHECK(!conf_user_check(p, u, 5, pw, 2));
    CHECK(!conf_user_check(p, (const uint8_t *)"alic", 4, pw, 3));
    CHECK(conf_user_check(p, (const uint8_t *)"bob", 3, (const uint8_t *)"password", 8));
    CHECK(conf_user_check(p, NULL, 0, (const uint8_t *)"onlypass", 8)); /* the default user */
    CHECK(!conf_user_check(p, NULL, 0, pw, 3));
    conf_unref(c);
    /* redis_auth "user password" alone: the clients log in as that user, or with
     * the whole as the default user's password (twemproxy's one password) */
    c = load_flags("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  redis_auth: \"app pw\"\n"
                   "  servers:\n   - 127.0.0.1:6379:1\n",
                   CONF_F_NUMERIC_ONLY);
    CHECK(c != NULL && c->pools[0].nclient_users == 2);
    CHECK(c != NULL && c->pools[0].redis_auth_whole != NULL &&
          strcmp(c->pools[0].redis_auth_whole, "app pw") == 0);
    CHECK(c != NULL &&
          conf_user_check(&c->pools[0], (const uint8_t *)"app", 3, (const uint8_t *)"pw", 2));
    CHECK(c != NULL && conf_user_check(&c->pools[0], NULL, 0, (const uint8_t *)"app pw", 6));
    CHECK(c != NULL && !conf_user_check(&c->pools[0], NULL, 0, (const uint8_t *)"pw", 2));
    conf_unref(c);
    /* "default pw": both logins are the default user's; either password works */
    c = load_flags(
        "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  redis_auth: \"default pw\"\n"
        "  servers:\n   - 127.0.0.1:6379:1\n",
        CONF_F_NUMERIC_ONLY);
    CHECK(c != NULL && conf_user_check(&c->pools[0], NULL, 0, (const uint8_t *)"pw", 2));
    CHECK(c != NULL && conf_user_check(&c->pools[0], NULL, 0, (const uint8_t *)"default pw", 10));
    CHECK(c != NULL && !conf_user_check(&c->pools[0], NULL, 0, (const uint8_t *)"default", 7));
    conf_unref(c);
    /* a single word stays twemproxy's password, no user */
    c = load_flags("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  redis_auth: pw\n"
                   "  servers:\n   - 127.0.0.1:6379:1\n",
                   CONF_F_NUMERIC_ONLY);
    CHECK(c != NULL && c->pools[0].redis_auth_user == NULL && c->pools[0].nclient_users == 0);
    conf_unref(c);
    expect_err("alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  client_auth:\n   - a x\n"
               "   - a y\n  servers:\n   - 127.0.0.1:6379:1\n",
               "t.yml:6: client_auth: user 'a' is a duplicate (first on line 5)");
    expect_err(
        "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  client_auth:\n   - a sha256:ab\n"
        "  servers:\n   - 127.0.0.1:6379:1\n",
        "t.yml:5: client_auth: \"sha256:ab\" is not sha256: followed by 64 hex digits");
    expect_key_err("client_auth:\n   - a b",
                   "t.yml:5: client_auth: directive is only valid for a redis pool");
}

int main(void)
{
    conf_errors_init(&errs);
    test_defaults();
    test_every_key();
    test_hash_names();
    test_listen();
    test_server_names();
    test_sorting();
    test_fixtures();
    test_layouts();
    test_key_errors();
    test_listen_errors();
    test_server_errors();
    test_structure_errors();
    test_depth();
    test_many_errors();
    test_sentinel_pool();
    test_sentinel_errors();
    test_sentinel_pool_is_redis();
    test_twemproxy163_example();
    test_read_from();
    test_read_from_errors();
    test_replica_max_link_down();
    test_refcount();
    test_tls_keys();
    test_sentinel_tls();
    test_tls_errors();
    test_client_auth();
    conf_errors_free(&errs);
    UNIT_DONE("test_conf");
}
