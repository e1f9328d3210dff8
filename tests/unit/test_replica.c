/*
 * test_replica: read/write splitting in a master/replica pool (SPEC 10): where
 * replica_route sends reads and writes for each read_from, with replicas
 * ejected, and that a pool without a master places keys exactly as before.
 * The pools are built by hand (no event loop, no sockets): routing is pure.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "proto/proto.h"
#include "proxy/pool.h"
#include "proxy/replica.h"
#include "proxy/server.h"
#include "unit.h"

#define NKEYS 2000

struct fixture {
    struct conf *conf;
    struct pool pool;
};

static int fixture_init(struct fixture *f, const char *yml)
{
    struct conf_errors errs;
    conf_errors_init(&errs);
    memset(f, 0, sizeof(*f));
    f->conf = conf_load_buf_flags("t.yml", yml, strlen(yml), CONF_F_NUMERIC_ONLY, &errs);
    for (uint32_t i = 0; i < errs.n; i++) {
        fprintf(stderr, "%s\n", errs.msgs[i]);
    }
    conf_errors_free(&errs);
    if (f->conf == NULL) {
        return -1;
    }
    struct pool *p = &f->pool;
    p->conf = f->conf;
    p->cp = &f->conf->pools[0];
    p->nservers = p->cp->nservers;
    p->servers = calloc(p->nservers, sizeof(*p->servers));
    p->nodes = calloc(p->nservers, sizeof(*p->nodes));
    if (p->servers == NULL || p->nodes == NULL) {
        abort();
    }
    for (uint32_t i = 0; i < p->nservers; i++) {
        p->servers[i].pool = p;
        p->servers[i].cs = &p->cp->servers[i];
        p->servers[i].idx = i;
    }
    dist_init(&p->dist);
    pool_rebuild(p);
    return 0;
}

static void fixture_free(struct fixture *f)
{
    free(f->pool.servers);
    free(f->pool.nodes);
    dist_free(&f->pool.dist);
    conf_unref(f->conf);
}

static void fixture_eject(struct fixture *f, const char *name, bool ejected)
{
    for (uint32_t i = 0; i < f->pool.nservers; i++) {
        if (strcmp(f->pool.servers[i].cs->name, name) == 0) {
            f->pool.servers[i].ejected = ejected;
        }
    }
    pool_rebuild(&f->pool);
}

static const char *route_name(struct fixture *f, const char *key, bool readonly)
{
    struct server *s = replica_route(&f->pool, (const uint8_t *)key, strlen(key), readonly);
    return s == NULL ? NULL : s->cs->name;
}

/* Per server name index (as sorted in the pool), how many of NKEYS keys it gets. */
static void count_routes(struct fixture *f, bool readonly, uint32_t *counts, uint32_t *nnull)
{
    memset(counts, 0, f->pool.nservers * sizeof(*counts));
    *nnull = 0;
    for (int i = 0; i < NKEYS; i++) {
        char key[32];
        snprintf(key, sizeof(key), "key:%d", i);
        struct server *s = replica_route(&f->pool, (const uint8_t *)key, strlen(key), readonly);
        if (s == NULL) {
            (*nnull)++;
        } else {
            counts[s->idx]++;
        }
    }
}

#define SPLIT_POOL(dist, extra)                                                                    \
    "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  distribution: " dist "\n" extra           \
    "  servers:\n   - 127.0.0.1:6380:1 r1\n   - 127.0.0.1:6379:1 master\n"                         \
    "   - 127.0.0.1:6381:1 r2\n"

/* master is index 2 after sorting (r1, r2, master: shorter names first) */
#define IDX_R1     0
#define IDX_R2     1
#define IDX_MASTER 2

static void test_default_replica(void)
{
    static const char *const dists[] = {"ketama", "modula", "random"};
    for (size_t d = 0; d < 3; d++) {
        char yml[512];
        snprintf(yml, sizeof(yml), SPLIT_POOL("%s", ""), dists[d]);
        struct fixture f;
        CHECK(fixture_init(&f, yml) == 0);
        if (f.conf == NULL) {
            continue;
        }
        CHECK(replica_pool_is_split(&f.pool));
        CHECK_EQ_INT(f.pool.cp->master, IDX_MASTER);
        CHECK(replica_server_is_master(&f.pool.servers[IDX_MASTER]));
        CHECK(!replica_server_is_master(&f.pool.servers[IDX_R1]));
        uint32_t counts[3], nnull;
        /* writes: all to the master */
        count_routes(&f, false, counts, &nnull);
        CHECK_EQ_INT(counts[IDX_MASTER], NKEYS);
        /* reads: spread over both replicas, never the master */
        count_routes(&f, true, counts, &nnull);
        CHECK_EQ_INT(nnull, 0);
        CHECK_EQ_INT(counts[IDX_MASTER], 0);
        CHECK(counts[IDX_R1] > NKEYS / 4 && counts[IDX_R2] > NKEYS / 4);
        /* an empty key (keyless commands) is a read among the replicas too */
        struct server *s = replica_route(&f.pool, (const uint8_t *)"", 0, true);
        CHECK(s != NULL && s->idx != IDX_MASTER);
        fixture_free(&f);
    }
}

static void test_placement_among_replicas(void)
{
    /* reads are placed by ketama over the replicas alone: the same as a plain
     * pool of just those two servers */
    struct fixture f, plain;
    CHECK(fixture_init(&f, SPLIT_POOL("ketama", "")) == 0);
    CHECK(fixture_init(&plain, "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n"
                               "   - 127.0.0.1:6380:1 r1\n   - 127.0.0.1:6381:1 r2\n") == 0);
    if (f.conf == NULL || plain.conf == NULL) {
        return;
    }
    int same = 0;
    for (int i = 0; i < NKEYS; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%d", i);
        const char *a = route_name(&f, key, true), *b = route_name(&plain, key, true);
        same += a != NULL && b != NULL && strcmp(a, b) == 0;
    }
    CHECK_EQ_INT(same, NKEYS);
    fixture_free(&f);
    fixture_free(&plain);
}

static void test_read_from_master(void)
{
    struct fixture f;
    CHECK(fixture_init(&f, SPLIT_POOL("ketama", "  read_from: master\n")) == 0);
    if (f.conf == NULL) {
        return;
    }
    uint32_t counts[3], nnull;
    count_routes(&f, true, counts, &nnull);
    CHECK_EQ_INT(counts[IDX_MASTER], NKEYS);
    count_routes(&f, false, counts, &nnull);
    CHECK_EQ_INT(counts[IDX_MASTER], NKEYS);
    fixture_free(&f);
}

static void test_ejected_replicas(void)
{
    struct fixture f;
    CHECK(fixture_init(&f, SPLIT_POOL("ketama", "")) == 0);
    if (f.conf == NULL) {
        return;
    }
    uint32_t counts[3], nnull;
    fixture_eject(&f, "r1", true);
    count_routes(&f, true, counts, &nnull);
    CHECK_EQ_INT(counts[IDX_R2], NKEYS);
    /* no live replica: reads fail with their own message, writes go on */
    fixture_eject(&f, "r2", true);
    count_routes(&f, true, counts, &nnull);
    CHECK_EQ_INT(nnull, NKEYS);
    CHECK(strstr(replica_route_error(&f.pool, true), "no replica") != NULL);
    CHECK(strstr(replica_route_error(&f.pool, false), "no server") != NULL);
    count_routes(&f, false, counts, &nnull);
    CHECK_EQ_INT(counts[IDX_MASTER], NKEYS);
    /* a replica back: reads go to it again */
    fixture_eject(&f, "r1", false);
    count_routes(&f, true, counts, &nnull);
    CHECK_EQ_INT(counts[IDX_R1], NKEYS);
    fixture_free(&f);

    CHECK(fixture_init(&f, SPLIT_POOL("modula", "  read_from: prefer_replica\n")) == 0);
    if (f.conf == NULL) {
        return;
    }
    count_routes(&f, true, counts, &nnull);
    CHECK_EQ_INT(counts[IDX_MASTER], 0);
    fixture_eject(&f, "r1", true);
    fixture_eject(&f, "r2", true);
    count_routes(&f, true, counts, &nnull);
    CHECK_EQ_INT(counts[IDX_MASTER], NKEYS);
    fixture_free(&f);
}

static void test_plain_pool_unchanged(void)
{
    /* without a master every read and write goes where pool_route puts it,
     * including twemproxy's shortcut of an empty key to server 0 */
    struct fixture f;
    CHECK(fixture_init(&f, "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n"
                           "   - 127.0.0.1:6380:1\n   - 127.0.0.1:6379:1\n"
                           "   - 127.0.0.1:6381:1 masters\n") == 0);
    if (f.conf == NULL) {
        return;
    }
    CHECK(!replica_pool_is_split(&f.pool));
    int same = 0;
    for (int i = 0; i < NKEYS; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%d", i);
        struct server *w = replica_route(&f.pool, (const uint8_t *)key, strlen(key), false);
        struct server *r = replica_route(&f.pool, (const uint8_t *)key, strlen(key), true);
        struct server *s = pool_route(&f.pool, (const uint8_t *)key, strlen(key));
        same += w == s && r == s;
    }
    CHECK_EQ_INT(same, NKEYS);
    CHECK(replica_route(&f.pool, (const uint8_t *)"", 0, true) == &f.pool.servers[0]);
    fixture_free(&f);
}

/* The read/write decision comes from the command table's READONLY flag. */
static void test_readonly_flag(void)
{
    static const struct {
        const char *req;
        bool readonly;
    } cases[] = {
        {"*2\r\n$3\r\nGET\r\n$1\r\na\r\n", true},
        {"*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nb\r\n", true},
        {"*3\r\n$6\r\nEXISTS\r\n$1\r\na\r\n$1\r\nb\r\n", true},
        {"*2\r\n$7\r\nHGETALL\r\n$1\r\nh\r\n", true},
        {"*4\r\n$7\r\nEVAL_RO\r\n$1\r\nx\r\n$1\r\n1\r\n$1\r\na\r\n", true},
        {"*3\r\n$6\r\nOBJECT\r\n$8\r\nENCODING\r\n$1\r\na\r\n", true},
        {"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n", false},
        {"*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nb\r\n", false},
        {"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n", false},
        {"*2\r\n$4\r\nINCR\r\n$1\r\na\r\n", false},
        {"*4\r\n$4\r\nEVAL\r\n$1\r\nx\r\n$1\r\n1\r\n$1\r\na\r\n", false},
        {"*2\r\n$4\r\nSORT\r\n$1\r\na\r\n", false},
    };
    struct req_info ri;
    req_info_init(&ri);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *q = cases[i].req;
        int rc = proto_redis.req_parse((const uint8_t *)q, strlen(q), &ri);
        CHECK_EQ_INT(rc, PARSE_OK);
        CHECK(ri.route != ROUTE_REJECT);
        if (ri.readonly != cases[i].readonly) {
            fprintf(stderr, "readonly of %s: %d\n", q, ri.readonly);
        }
        CHECK(ri.readonly == cases[i].readonly);
    }
    req_info_free(&ri);
}

int main(void)
{
    test_default_replica();
    test_placement_among_replicas();
    test_read_from_master();
    test_ejected_replicas();
    test_plain_pool_unchanged();
    test_readonly_flag();
    UNIT_DONE("test_replica");
}
