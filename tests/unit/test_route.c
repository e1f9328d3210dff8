/*
 * test_route: where route.c sends each key. Master/replica pools (SPEC 10):
 * reads and writes for each read_from, with replicas ejected; a plain pool
 * places keys as before; keys of one request must share a server (CROSSSLOT);
 * sentinel groups pick a replica by rendezvous hashing. The pools are built
 * by pool_create on a proxy whose loop never runs: routing is pure.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "proto/proto.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/replica.h"
#include "proxy/route.h"
#include "proxy/server.h"
#include "unit.h"
#include "unit_proxy.h"

#define NKEYS 2000

struct fixture {
    struct conf *conf;
    struct ev_loop *loop;
    struct proxy px;
    struct pool *pool;
};

static int fixture_init(struct fixture *f, const char *yml)
{
    memset(f, 0, sizeof(*f));
    f->conf = unit_conf(yml);
    if (f->conf == NULL) {
        return -1;
    }
    f->loop = unit_proxy_init(&f->px);
    f->pool = pool_create(&f->px, f->conf, 0);
    if (f->pool == NULL) {
        abort();
    }
    return 0;
}

static void fixture_free(struct fixture *f)
{
    pool_destroy(f->pool);
    proxy_deinit(&f->px);
    ev_loop_destroy(f->loop);
    conf_unref(f->conf);
}

/* A test pokes the health state directly: health.c's rules are tested e2e. */
static void fixture_eject(struct fixture *f, const char *name, bool ejected)
{
    for (uint32_t i = 0; i < f->pool->nservers; i++) {
        if (strcmp(f->pool->servers[i].cs->name, name) == 0) {
            f->pool->servers[i].health.ejected = ejected;
        }
    }
    pool_rebuild(f->pool);
}

static struct server *route_target(struct fixture *f, const char *key, bool readonly)
{
    struct route r;
    int miss = route_key(f->pool, (const uint8_t *)key, strlen(key), readonly, &r);
    return miss == ROUTE_HIT ? r.target : NULL;
}

static const char *route_name(struct fixture *f, const char *key, bool readonly)
{
    struct server *s = route_target(f, key, readonly);
    return s == NULL ? NULL : s->cs->name;
}

/* Per server name index (as sorted in the pool), how many of NKEYS keys it gets. */
static void count_routes(struct fixture *f, bool readonly, uint32_t *counts, uint32_t *nnull)
{
    memset(counts, 0, f->pool->nservers * sizeof(*counts));
    *nnull = 0;
    for (int i = 0; i < NKEYS; i++) {
        char key[32];
        snprintf(key, sizeof(key), "key:%d", i);
        struct server *s = route_target(f, key, readonly);
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

/* One sentinel group g, its reads by read_from rf. */
#define GROUP_POOL(rf)                                                                             \
    "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  read_from: " rf "\n  groups:\n   - g\n"   \
    "  sentinels:\n   - 127.0.0.1:26379\n"

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
        CHECK(f.pool->mode == POOL_MASTER_REPLICA && route_one_dataset(f.pool));
        CHECK_EQ_INT(f.pool->cp->master, IDX_MASTER);
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
        struct server *s = route_target(&f, "", true);
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
    struct route r;
    char buf[256];
    int miss = route_key(f.pool, (const uint8_t *)"k", 1, true, &r);
    CHECK_EQ_INT(miss, ROUTE_MISS_REPLICA);
    CHECK(strstr(route_miss_text(f.pool, miss, &r, buf, sizeof(buf)), "no replica") != NULL);
    CHECK(strstr(route_miss_text(f.pool, ROUTE_MISS_SERVER, &r, buf, sizeof(buf)), "no server") !=
          NULL);
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
    /* without a master a read goes where a write goes, including twemproxy's
     * shortcut of an empty key to server 0 */
    struct fixture f;
    CHECK(fixture_init(&f, "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n"
                           "   - 127.0.0.1:6380:1\n   - 127.0.0.1:6379:1\n"
                           "   - 127.0.0.1:6381:1 masters\n") == 0);
    if (f.conf == NULL) {
        return;
    }
    CHECK(f.pool->mode == POOL_PLAIN && !route_one_dataset(f.pool));
    int same = 0, spread[3] = {0, 0, 0};
    for (int i = 0; i < NKEYS; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%d", i);
        struct server *w = route_target(&f, key, false);
        struct server *r = route_target(&f, key, true);
        same += w != NULL && w == r;
        spread[w != NULL ? w->idx : 0]++;
    }
    CHECK_EQ_INT(same, NKEYS);
    CHECK(spread[0] > NKEYS / 6 && spread[1] > NKEYS / 6 && spread[2] > NKEYS / 6);
    CHECK(route_target(&f, "", true) == &f.pool->servers[0]);
    fixture_free(&f);
}

/* A request's keys: all on one shard, or refused; one-dataset pools and the
 * random distribution never refuse. */
static void test_request_keys_together(void)
{
    struct fixture f;
    CHECK(fixture_init(&f, "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  hash_tag: \"{}\"\n"
                           "  servers:\n   - 127.0.0.1:6380:1\n   - 127.0.0.1:6379:1\n"
                           "   - 127.0.0.1:6381:1\n") == 0);
    if (f.conf == NULL) {
        return;
    }
    /* find two keys on different servers */
    char a[32] = "", b[32] = "";
    struct server *sa = route_target(&f, "k0", false);
    snprintf(a, sizeof(a), "k0");
    for (int i = 1; i < NKEYS && b[0] == '\0'; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%d", i);
        if (route_target(&f, key, false) != sa) {
            snprintf(b, sizeof(b), "%s", key);
        }
    }
    CHECK(b[0] != '\0');
    char req[128];
    int n = snprintf(req, sizeof(req), "%s%s{t}x{t}y", a, b);
    struct spans keys;
    spans_init(&keys);
    spans_push(&keys, 0, (uint32_t)strlen(a));
    spans_push(&keys, (uint32_t)strlen(a), (uint32_t)strlen(b));
    struct route r;
    CHECK_EQ_INT(route_request(f.pool, (const uint8_t *)req, &keys, false, &r), ROUTE_MISS_CROSS);
    char buf[64];
    CHECK(strncmp(route_miss_text(f.pool, ROUTE_MISS_CROSS, &r, buf, sizeof(buf)), "CROSSSLOT ",
                  10) == 0);
    /* the same hash tag: one server, whatever the rest of the keys */
    spans_reset(&keys);
    spans_push(&keys, (uint32_t)(n - 8), 4);
    spans_push(&keys, (uint32_t)(n - 4), 4);
    CHECK_EQ_INT(route_request(f.pool, (const uint8_t *)req, &keys, false, &r), ROUTE_HIT);
    /* one key, or none: nothing to compare */
    keys.n = 1;
    CHECK_EQ_INT(route_request(f.pool, (const uint8_t *)req, &keys, false, &r), ROUTE_HIT);
    keys.n = 0;
    CHECK_EQ_INT(route_request(f.pool, (const uint8_t *)req, &keys, false, &r), ROUTE_HIT);
    CHECK(r.target == &f.pool->servers[0]);
    spans_free(&keys);
    fixture_free(&f);
}

static void sa_of(struct sockaddr_storage *ss, socklen_t *len, int port)
{
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof(*ss));
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, "10.0.0.1", &in->sin_addr);
    *len = sizeof(*in);
}

/* A sentinel group's reads: a replica chosen per key by rendezvous hashing,
 * which moves only the keys of a replica that goes; never the master. */
static void test_sentinel_replica_choice(void)
{
    struct fixture f;
    CHECK(fixture_init(&f, GROUP_POOL("replica")) == 0);
    if (f.conf == NULL) {
        return;
    }
    struct server *g = &f.pool->servers[0];
    CHECK(f.pool->mode == POOL_SENTINEL && f.pool->replica_reads);
    struct replica_addr v[3];
    for (int i = 0; i < 3; i++) {
        sa_of(&v[i].ss, &v[i].len, 7000 + i);
        v[i].usable = true;
    }
    struct sockaddr_storage mss;
    socklen_t mlen;
    sa_of(&mss, &mlen, 6379);
    server_set_addr(g, (const struct sockaddr *)&mss, mlen, "test");
    replica_group_update(g, v, 3);
    CHECK(g->replicas != NULL && g->replicas->n == 3);
    struct server *before[NKEYS];
    int per[3] = {0, 0, 0};
    for (int i = 0; i < NKEYS; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%d", i);
        before[i] = route_target(&f, key, true);
        CHECK(before[i] != NULL && before[i]->owner == g);
        CHECK(route_target(&f, key, false) == g); /* writes: the group's master */
        for (int k = 0; k < 3; k++) {
            per[k] += before[i] == &g->replicas->v[k]->srv;
        }
    }
    CHECK(per[0] > NKEYS / 6 && per[1] > NKEYS / 6 && per[2] > NKEYS / 6);
    /* the replica at 7001 goes down: only its keys move */
    struct server *gone = NULL;
    for (uint32_t k = 0; k < 3; k++) {
        if (server_addr_is(&g->replicas->v[k]->srv, (const struct sockaddr *)&v[1].ss, v[1].len)) {
            gone = &g->replicas->v[k]->srv;
        }
    }
    replica_group_mark(g, (const struct sockaddr *)&v[1].ss, v[1].len, false);
    int moved = 0, wrong = 0;
    for (int i = 0; i < NKEYS; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%d", i);
        struct server *now = route_target(&f, key, true);
        moved += now != before[i];
        wrong += (now != before[i]) != (before[i] == gone) || now == gone;
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK(moved > 0);
    /* no usable replica: read_from replica refuses the read, naming the group */
    replica_group_update(g, NULL, 0);
    struct route r;
    char buf[256];
    int miss = route_key(f.pool, (const uint8_t *)"k", 1, true, &r);
    CHECK_EQ_INT(miss, ROUTE_MISS_REPLICA);
    CHECK(strstr(route_miss_text(f.pool, miss, &r, buf, sizeof(buf)), "group 'g'") != NULL);
    proxy_before_sleep(&f.px); /* frees the replicas that left the set */
    CHECK(f.px.dead_servers == NULL);
    fixture_free(&f);
}

/* Where a read goes when its replica cannot be reached or is lost with it:
 * another live replica when reads go to replicas, else (or for a read sent
 * again once already) the master with prefer_replica only; never for a write
 * or from the master. */
static void test_fallback(void)
{
    static const char *const rf[] = {"", "  read_from: replica\n", "  read_from: master\n",
                                     "  read_from: prefer_replica\n"};
    for (size_t i = 0; i < 4; i++) {
        struct fixture f;
        char yml[512];
        snprintf(yml, sizeof(yml), SPLIT_POOL("ketama", "%s"), rf[i]);
        CHECK(fixture_init(&f, yml) == 0);
        if (f.conf == NULL) {
            return;
        }
        struct server *m = &f.pool->servers[IDX_MASTER], *r1 = &f.pool->servers[IDX_R1];
        struct server *r2 = &f.pool->servers[IDX_R2];
        bool reads_replicas = i != 2, prefer = i == 3;
        CHECK(route_fallback(r1, true, true) == (reads_replicas ? r2 : NULL));
        CHECK(route_fallback(r2, true, true) == (reads_replicas ? r1 : NULL));
        CHECK(route_fallback(r1, true, false) == (prefer ? m : NULL));
        CHECK(route_may_fall_back(r1) == reads_replicas);
        r2->health.ejected = true; /* no other live replica */
        CHECK(route_fallback(r1, true, true) == (prefer ? m : NULL));
        r2->health.ejected = false;
        CHECK(route_fallback(r1, false, true) == NULL);
        CHECK(route_fallback(m, true, true) == NULL);
        CHECK(!route_may_fall_back(m));
        fixture_free(&f);
    }
    static const char *const grf[] = {GROUP_POOL("prefer_replica"), GROUP_POOL("replica")};
    for (size_t i = 0; i < 2; i++) {
        struct fixture f;
        CHECK(fixture_init(&f, grf[i]) == 0);
        if (f.conf == NULL) {
            return;
        }
        bool prefer = i == 0;
        struct server *g = &f.pool->servers[0];
        struct replica_addr v[2];
        sa_of(&v[0].ss, &v[0].len, 7000);
        sa_of(&v[1].ss, &v[1].len, 7001);
        v[0].usable = v[1].usable = true;
        replica_group_update(g, v, 1);
        CHECK(g->replicas != NULL && g->replicas->n == 1);
        struct server *rep = &g->replicas->v[0]->srv;
        CHECK(route_fallback(rep, true, true) == (prefer ? g : NULL));
        CHECK(route_fallback(rep, false, true) == NULL);
        CHECK(route_fallback(g, true, true) == NULL);
        replica_group_update(g, v, 2); /* the other replica takes the lost one's reads */
        CHECK(g->replicas->n == 2);
        struct server *r0 = &g->replicas->v[0]->srv, *r1 = &g->replicas->v[1]->srv;
        CHECK(route_fallback(r0, true, true) == r1);
        CHECK(route_fallback(r1, true, true) == r0);
        CHECK(route_fallback(r0, true, false) == (prefer ? g : NULL));
        replica_group_update(g, NULL, 0);
        proxy_before_sleep(&f.px);
        fixture_free(&f);
    }
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
    test_fallback();
    test_plain_pool_unchanged();
    test_request_keys_together();
    test_sentinel_replica_choice();
    test_readonly_flag();
    UNIT_DONE("test_route");
}
