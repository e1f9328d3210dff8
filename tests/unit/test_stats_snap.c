#include "proxy/pool.h"
#include "proxy/pool_stats.h"
#include "proxy/proxy.h"
#include "proxy/server.h"
#include "stats/metrics_int.h"
#include "stats/slot.h"
#include "stats/snap.h"
#include "stats/stats.h"
#include "unit.h"
#include "unit_proxy.h"

#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    memcpy(d, s, n);
    return d;
}

/* A snapshot with pools "p0".."p{np-1}", each with servers "s0".."s{ns-1}" in
 * the given order (order_rev reverses the servers, to test name matching). */
static struct stats_snap *make_snap(uint32_t np, uint32_t ns, bool order_rev)
{
    struct stats_snap *s = calloc(1, sizeof(*s));
    s->npools = np;
    s->pools = calloc(np, sizeof(*s->pools));
    for (uint32_t i = 0; i < np; i++) {
        char name[32];
        snprintf(name, sizeof(name), "p%u", i);
        s->pools[i].name = dup_str(name);
        s->pools[i].nservers = ns;
        s->pools[i].servers = calloc(ns, sizeof(*s->pools[i].servers));
        for (uint32_t j = 0; j < ns; j++) {
            snprintf(name, sizeof(name), "s%u", order_rev ? ns - 1 - j : j);
            s->pools[i].servers[j].name = dup_str(name);
        }
    }
    return s;
}

static struct stats_server_snap *find_server(struct stats_snap *s, const char *pool,
                                             const char *server)
{
    for (uint32_t i = 0; i < s->npools; i++) {
        if (strcmp(s->pools[i].name, pool) != 0) {
            continue;
        }
        for (uint32_t j = 0; j < s->pools[i].nservers; j++) {
            if (strcmp(s->pools[i].servers[j].name, server) == 0) {
                return &s->pools[i].servers[j];
            }
        }
    }
    return NULL;
}

static bool histo_equal(const struct histo *a, const struct histo *b)
{
    return memcmp(a, b, sizeof(*a)) == 0;
}

static const char *or_empty(const char *s)
{
    return s != NULL ? s : "";
}

/* What the status page reads of a server survives the trip. */
static bool status_equal(const struct stats_server_snap *a, const struct stats_server_snap *b)
{
    if (strcmp(or_empty(a->addr), or_empty(b->addr)) != 0 || a->role != b->role ||
        a->state != b->state || a->failures != b->failures ||
        a->ejected_until_ms != b->ejected_until_ms ||
        strcmp(or_empty(a->last_error), or_empty(b->last_error)) != 0 ||
        a->last_error_ms != b->last_error_ms || a->nreplicas != b->nreplicas) {
        return false;
    }
    for (uint32_t k = 0; k < a->nreplicas; k++) {
        if (strcmp(a->replicas[k].addr, b->replicas[k].addr) != 0 ||
            a->replicas[k].state != b->replicas[k].state) {
            return false;
        }
    }
    return true;
}

static bool snap_equal(const struct stats_snap *a, const struct stats_snap *b)
{
    if (a->total_connections != b->total_connections ||
        a->curr_connections != b->curr_connections || a->npools != b->npools) {
        return false;
    }
    for (uint32_t i = 0; i < a->npools; i++) {
        const struct stats_pool_snap *pa = &a->pools[i], *pb = &b->pools[i];
        if (strcmp(pa->name, pb->name) != 0 || pa->group_fields != pb->group_fields ||
            memcmp(pa->v, pb->v, sizeof(pa->v)) != 0 || !histo_equal(&pa->lat, &pb->lat) ||
            pa->nservers != pb->nservers) {
            return false;
        }
        for (uint32_t j = 0; j < pa->nservers; j++) {
            const struct stats_server_snap *sa = &pa->servers[j], *sb = &pb->servers[j];
            if (strcmp(sa->name, sb->name) != 0 || memcmp(sa->v, sb->v, sizeof(sa->v)) != 0 ||
                memcmp(sa->g, sb->g, sizeof(sa->g)) != 0 ||
                !histo_equal(stats_server_lat(sa), stats_server_lat(sb))) {
                return false;
            }
            if (!status_equal(sa, sb)) {
                return false;
            }
        }
    }
    return true;
}

/* A deterministic generator: tests are reproducible and share no state. */
static uint64_t rng_next(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return *state >> 33;
}

/* A snapshot with every kind of value the encoding must carry. */
static struct stats_snap *make_full_snap(void)
{
    struct stats_snap *s = make_snap(3, 4, false);
    s->total_connections = UINT64_MAX;
    s->curr_connections = 7;
    s->last_reload_ms = 1795422014123;
    for (uint32_t i = 0; i < s->npools; i++) {
        s->pools[i].listen = dup_str(i ? "127.0.0.1:22121" : "/tmp/x.sock 0666");
        s->pools[i].redis = i == 1;
        s->pools[i].mode = (uint8_t)i;
    }
    s->pools[1].group_fields = true;
    free(s->pools[2].name);
    s->pools[2].name = dup_str("a pool \"with\" odd\tname \xc3\xa9");
    for (uint32_t i = 0; i < s->npools; i++) {
        struct stats_pool_snap *p = &s->pools[i];
        for (int f = 0; f < SP_COUNT; f++) {
            p->v[f] = (int64_t)(i * 1000 + (uint32_t)f);
        }
        p->v[SP_client_connections] = -3; /* a gauge gone wrong still travels */
        histo_add(&p->lat, 5);
        histo_add(&p->lat, 5);
        histo_add(&p->lat, 123456);
        for (uint32_t j = 0; j < p->nservers; j++) {
            struct stats_server_snap *sv = &p->servers[j];
            for (int f = 0; f < SS_COUNT; f++) {
                sv->v[f] = (int64_t)(j << 20) + f;
            }
            sv->v[SS_server_ejected_at] = INT64_MAX;
            sv->v[SS_in_queue] = INT64_MIN;
            for (int f = 0; f < SG_COUNT; f++) {
                sv->g[f] = (int64_t)j - 1 + f;
            }
            sv->addr = dup_str("127.0.0.1:6379");
            sv->role = (uint8_t)(j % STATS_ROLE_COUNT);
            sv->state = (uint8_t)(j % STATS_STATE_COUNT);
            sv->failures = UINT32_MAX - j;
            sv->ejected_until_ms = 1795422014000 + j;
            sv->last_error = dup_str(j ? "Connection refused" : "");
            sv->last_error_ms = -1;
            if (j == 1) {
                sv->nreplicas = 2;
                sv->replicas = calloc(2, sizeof(*sv->replicas));
                sv->replicas[0].addr = dup_str("10.0.0.2:6379");
                sv->replicas[1].addr = dup_str("[::1]:6380");
                sv->replicas[1].state = STATS_EJECTED;
            }
            histo_add(stats_server_lat_mut(sv), j);
            histo_add(stats_server_lat_mut(sv), UINT64_MAX); /* the last bucket, a 10-byte varint */
        }
    }
    /* an empty pool, and an empty histogram */
    s->pools[0].nservers = 0;
    for (uint32_t j = 0; j < 4; j++) {
        free(s->pools[0].servers[j].name);
        free(s->pools[0].servers[j].addr);
        free(s->pools[0].servers[j].last_error);
        free(s->pools[0].servers[j].lat);
        for (uint32_t k = 0; k < s->pools[0].servers[j].nreplicas; k++) {
            free(s->pools[0].servers[j].replicas[k].addr);
        }
        free(s->pools[0].servers[j].replicas);
    }
    free(s->pools[0].servers);
    s->pools[0].servers = NULL;
    memset(&s->pools[0].lat, 0, sizeof(s->pools[0].lat));
    return s;
}

/* ---- encoding ---- */

static void test_round_trip(void)
{
    struct stats_snap *s = make_full_snap();
    struct buf enc, again;
    buf_init(&enc);
    buf_init(&again);
    CHECK_EQ_INT(stats_snap_encode(s, &enc), 0);
    /* histograms travel sparse: far smaller than the structs */
    CHECK(enc.len < 2000);
    struct stats_snap *d = stats_snap_decode(enc.data, enc.len);
    CHECK(d != NULL);
    if (d != NULL) {
        CHECK(snap_equal(s, d));
        CHECK_EQ_INT(stats_snap_encode(d, &again), 0);
        CHECK(again.len == enc.len && memcmp(again.data, enc.data, enc.len) == 0);
    }
    stats_snap_free(d);

    /* no pools at all */
    struct stats_snap empty = {0};
    buf_reset(&again);
    CHECK_EQ_INT(stats_snap_encode(&empty, &again), 0);
    d = stats_snap_decode(again.data, again.len);
    CHECK(d != NULL && d->npools == 0 && d->pools == NULL);
    stats_snap_free(d);

    /* encode appends */
    buf_reset(&again);
    buf_append_str(&again, "xy");
    CHECK_EQ_INT(stats_snap_encode(s, &again), 0);
    CHECK(again.len == enc.len + 2 && memcmp(again.data + 2, enc.data, enc.len) == 0);

    stats_snap_free(s);
    buf_free(&enc);
    buf_free(&again);
}

static void test_decode_rejects(void)
{
    struct stats_snap *s = make_full_snap();
    struct buf enc;
    buf_init(&enc);
    stats_snap_encode(s, &enc);
    stats_snap_free(s);

    /* every truncation, each in an allocation of its own size so that the
     * sanitizers see any read past the end */
    int accepted = 0;
    for (size_t n = 0; n < enc.len; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, enc.data, n);
        struct stats_snap *d = stats_snap_decode(copy, n);
        accepted += d != NULL;
        stats_snap_free(d);
        free(copy);
    }
    CHECK_EQ_INT(accepted, 0);
    CHECK(stats_snap_decode(NULL, 0) == NULL);

    /* trailing bytes */
    uint8_t *longer = malloc(enc.len + 1);
    memcpy(longer, enc.data, enc.len);
    longer[enc.len] = 0;
    CHECK(stats_snap_decode(longer, enc.len + 1) == NULL);
    free(longer);

    /* a wrong header byte */
    for (size_t i = 0; i < 8; i++) {
        enc.data[i] ^= 0x40;
        CHECK(stats_snap_decode(enc.data, enc.len) == NULL);
        enc.data[i] ^= 0x40;
    }

    /* hand-made bodies after a valid header */
    static const uint8_t head[] = {'N',      'C',      'S',       'N',      5,
                                   SP_COUNT, SS_COUNT, SPX_COUNT, SG_COUNT, SC_COUNT};
    struct {
        const char *why;
        uint8_t body[24];
        size_t len;
        bool ok;
    } cases[] = {
        {"empty snapshot", {0, 0, 1, 0, 0, 0, 0}, 7, true},
        {"a reload outcome that does not exist", {0, 0, 1, 0, 3, 0, 0}, 7, false},
        {"overlong varint", {0x80, 0x00, 0, 0}, 4, false},
        {"varint over 64 bits",
         {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0},
         12,
         false},
        {"varint of 11 bytes",
         {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00, 0, 0},
         13,
         false},
        {"more pools than bytes", {0, 0, 1, 0, 0, 0, 0x7f}, 7, false},
        {"huge pool count", {0, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, 11, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t in[sizeof(head) + 24];
        memcpy(in, head, sizeof(head));
        memcpy(in + sizeof(head), cases[i].body, cases[i].len);
        struct stats_snap *d = stats_snap_decode(in, sizeof(head) + cases[i].len);
        if ((d != NULL) != cases[i].ok) {
            fprintf(stderr, "decode case '%s'\n", cases[i].why);
        }
        CHECK((d != NULL) == cases[i].ok);
        stats_snap_free(d);
    }

    /* a pool by hand: then break one thing at a time */
    uint8_t pool[96];
    size_t n = 0;
    memcpy(pool, head, sizeof(head));
    n = sizeof(head);
    pool[n++] = 0;   /* total */
    pool[n++] = 0;   /* curr */
    pool[n++] = 1;   /* generation */
    pool[n++] = 0;   /* reload failures */
    pool[n++] = 0;   /* last reload */
    pool[n++] = 0;   /* last reload time */
    pool[n++] = 1;   /* npools */
    pool[n++] = 1;   /* name length */
    pool[n++] = 'a'; /* name */
    size_t sent = n; /* where the kind byte is */
    pool[n++] = 0;   /* plain (1 sentinel, 2 cluster) */
    for (int f = 0; f < SP_COUNT + SPX_COUNT + SC_COUNT; f++) {
        pool[n++] = 0;
    }
    size_t histo = n;
    pool[n++] = 1; /* count */
    pool[n++] = 3; /* sum */
    pool[n++] = 3; /* max */
    pool[n++] = 1; /* nnz */
    pool[n++] = 3; /* gap: bucket 3 */
    pool[n++] = 1; /* value */
    pool[n++] = 0; /* listen length */
    size_t redis = n;
    pool[n++] = 1; /* redis */
    pool[n++] = 2; /* mode: sentinel */
    pool[n++] = 0; /* nservers */
    struct stats_snap *d = stats_snap_decode(pool, n);
    CHECK(d != NULL && d->npools == 1 && strcmp(d->pools[0].name, "a") == 0 &&
          d->pools[0].lat.b[3] == 1 && d->pools[0].lat.count == 1 && d->pools[0].redis &&
          d->pools[0].mode == STATS_SENTINEL && strcmp(d->pools[0].listen, "") == 0);
    stats_snap_free(d);
    pool[redis] = 2; /* redis is a boolean */
    CHECK(stats_snap_decode(pool, n) == NULL);
    pool[redis] = 1;
    pool[redis + 1] = STATS_MODE_COUNT; /* no such mode */
    CHECK(stats_snap_decode(pool, n) == NULL);
    pool[redis + 1] = 2;
    pool[sent] = 3; /* no such kind */
    CHECK(stats_snap_decode(pool, n) == NULL);
    pool[sent] = 0;
    pool[sent - 1] = '\0'; /* a NUL inside a name */
    CHECK(stats_snap_decode(pool, n) == NULL);
    pool[sent - 1] = 'a';
    pool[histo + 5] = 0; /* a zero bucket is not canonical */
    CHECK(stats_snap_decode(pool, n) == NULL);
    pool[histo + 5] = 1;
    pool[histo + 4] = 0x7f; /* bucket 127: fine */
    d = stats_snap_decode(pool, n);
    CHECK(d != NULL && d->pools[0].lat.b[127] == 1);
    stats_snap_free(d);
    /* bucket past the end, as a two-byte gap */
    memmove(pool + histo + 6, pool + histo + 5, n - (histo + 5));
    pool[histo + 4] = 0x80 | (HISTO_BUCKETS & 0x7f);
    pool[histo + 5] = HISTO_BUCKETS >> 7;
    CHECK(stats_snap_decode(pool, n + 1) == NULL);
    pool[histo + 4] = 0x80 | ((HISTO_BUCKETS - 1) & 0x7f);
    d = stats_snap_decode(pool, n + 1);
    CHECK(d != NULL && d->pools[0].lat.b[HISTO_BUCKETS - 1] == 1);
    stats_snap_free(d);

    /* random corruption: never a crash, and whatever is accepted is canonical
     * (encodes back to the very bytes given) */
    uint64_t rng = 42;
    struct buf again;
    buf_init(&again);
    int bad = 0;
    for (int round = 0; round < 20000; round++) {
        uint8_t *copy = malloc(enc.len);
        memcpy(copy, enc.data, enc.len);
        int flips = 1 + (int)(rng_next(&rng) % 4);
        for (int k = 0; k < flips; k++) {
            size_t at = sizeof(head) + rng_next(&rng) % (enc.len - sizeof(head));
            copy[at] = (uint8_t)rng_next(&rng);
        }
        size_t len = enc.len - (round % 3 == 0 ? rng_next(&rng) % 16 : 0);
        d = stats_snap_decode(copy, len);
        if (d != NULL) {
            buf_reset(&again);
            stats_snap_encode(d, &again);
            bad += again.len != len || memcmp(again.data, copy, len) != 0;
            stats_snap_free(d);
        }
        free(copy);
    }
    CHECK_EQ_INT(bad, 0);
    buf_free(&again);
    buf_free(&enc);
}

/* ---- summing ---- */

static void test_add(void)
{
    struct stats_snap *into = make_snap(2, 3, false);
    struct stats_snap *from = make_snap(3, 4, true); /* p2 and s3 are unknown to into */
    into->total_connections = 10;
    into->curr_connections = 4;
    from->total_connections = 5;
    from->curr_connections = 2;
    for (uint32_t i = 0; i < 3; i++) {
        struct stats_pool_snap *p = &from->pools[i];
        p->v[SP_client_eof] = 1;
        p->v[SP_client_connections] = 2;
        histo_add(&p->lat, 100);
        for (uint32_t j = 0; j < p->nservers; j++) {
            struct stats_server_snap *sv = &p->servers[j];
            int num = sv->name[1] - '0';
            sv->v[SS_requests] = 10 + num;
            sv->v[SS_server_connections] = 1;
            sv->v[SS_server_ejected_at] = 1000 + num;
            sv->g[SG_server_failover] = 1;
            sv->g[SG_failover_hold_us] = 100 + num;
            histo_add(stats_server_lat_mut(sv), (uint64_t)(num + 1) * 1000);
        }
    }
    struct stats_server_snap *s1 = find_server(into, "p1", "s1");
    s1->v[SS_server_ejected_at] = 5000; /* later than from's: kept */
    s1->v[SS_requests] = 100;
    histo_add(stats_server_lat_mut(s1), 7);
    struct stats_server_snap *s0 = find_server(into, "p0", "s0");
    s0->v[SS_server_ejected_at] = 500; /* earlier: replaced by from's */

    stats_snap_add(into, from, false);
    CHECK_EQ_INT(into->total_connections, 15);
    CHECK_EQ_INT(into->curr_connections, 6);
    CHECK_EQ_INT(into->npools, 2);
    CHECK_EQ_INT(into->pools[0].v[SP_client_eof], 1);
    CHECK_EQ_INT(into->pools[0].v[SP_client_connections], 2);
    CHECK_EQ_INT(into->pools[1].lat.count, 1);
    CHECK_EQ_INT(into->pools[0].nservers, 3);
    /* matched by name: from lists the servers in reverse */
    CHECK_EQ_INT(s1->v[SS_requests], 111);
    CHECK_EQ_INT(s1->v[SS_server_connections], 1);
    CHECK_EQ_INT(s1->v[SS_server_ejected_at], 5000);
    CHECK_EQ_INT(s0->v[SS_server_ejected_at], 1000);
    CHECK_EQ_INT(s1->g[SG_server_failover], 1);
    /* the longest hold is a max, not a sum */
    CHECK_EQ_INT(s1->g[SG_failover_hold_us], 101);
    CHECK_EQ_INT(s1->lat->count, 2);
    CHECK_EQ_INT(s1->lat->sum, 2007);
    CHECK_EQ_INT(s1->lat->max, 2000);
    CHECK_EQ_INT(s1->lat->b[histo_bucket(7)], 1);
    CHECK_EQ_INT(s1->lat->b[histo_bucket(2000)], 1);
    CHECK_EQ_INT(find_server(into, "p0", "s2")->v[SS_requests], 12);

    /* counters_only: counters, timestamps, maxima, histograms; no gauges */
    stats_snap_add(into, from, true);
    CHECK_EQ_INT(into->total_connections, 20);
    CHECK_EQ_INT(into->curr_connections, 6);
    CHECK_EQ_INT(into->pools[0].v[SP_client_eof], 2);
    CHECK_EQ_INT(into->pools[0].v[SP_client_connections], 2);
    CHECK_EQ_INT(s1->v[SS_requests], 122);
    CHECK_EQ_INT(s1->v[SS_server_connections], 1);
    CHECK_EQ_INT(s0->v[SS_server_ejected_at], 1000);
    CHECK_EQ_INT(s1->g[SG_server_failover], 2);
    CHECK_EQ_INT(s1->g[SG_failover_hold_us], 101);
    CHECK_EQ_INT(s1->lat->count, 3);
    CHECK_EQ_INT(into->pools[1].lat.count, 2);

    /* from with nothing in common changes nothing but the connection totals */
    struct stats_snap *other = make_snap(1, 1, false);
    free(other->pools[0].name);
    other->pools[0].name = dup_str("elsewhere");
    other->pools[0].v[SP_client_eof] = 99;
    stats_snap_add(into, other, false);
    CHECK_EQ_INT(into->pools[0].v[SP_client_eof], 2);
    CHECK_EQ_INT(into->pools[1].v[SP_client_eof], 2);

    stats_snap_free(other);
    stats_snap_free(into);
    stats_snap_free(from);
}

/* The status page's fields: the worst state over the workers, the latest
 * error, the first address and replica list known; a dead worker's say nothing. */
static void test_add_status(void)
{
    struct stats_snap *into = make_snap(1, 1, false);
    struct stats_snap *a = make_snap(1, 1, false);
    struct stats_snap *b = make_snap(1, 1, false);
    struct stats_server_snap *sa = &a->pools[0].servers[0], *sb = &b->pools[0].servers[0];
    struct stats_server_snap *si = &into->pools[0].servers[0];
    sa->state = STATS_FAILING;
    sa->failures = 1;
    sa->last_error = dup_str("Connection refused");
    sa->last_error_ms = 2000;
    sa->addr = dup_str("10.0.0.1:6379");
    sb->state = STATS_EJECTED;
    sb->failures = 3;
    sb->ejected_until_ms = 9000;
    sb->last_error = dup_str("Connection timed out");
    sb->last_error_ms = 1000;
    sb->nreplicas = 1;
    sb->replicas = calloc(1, sizeof(*sb->replicas));
    sb->replicas[0].addr = dup_str("10.0.0.2:6379");
    stats_snap_add(into, a, true);
    CHECK(si->state == STATS_LIVE && si->last_error == NULL && si->addr == NULL);
    stats_snap_add(into, a, false);
    stats_snap_add(into, b, false);
    CHECK_EQ_INT(si->state, STATS_EJECTED);
    CHECK_EQ_INT(si->failures, 3);
    CHECK_EQ_INT(si->ejected_until_ms, 9000);
    CHECK(si->last_error != NULL && strcmp(si->last_error, "Connection refused") == 0);
    CHECK_EQ_INT(si->last_error_ms, 2000);
    CHECK(si->addr != NULL && strcmp(si->addr, "10.0.0.1:6379") == 0);
    CHECK(si->nreplicas == 1 && strcmp(si->replicas[0].addr, "10.0.0.2:6379") == 0);
    stats_snap_free(into);
    stats_snap_free(a);
    stats_snap_free(b);
}

/* /metrics' states: one sample per state with exactly one 1, label values
 * escaped, a replica family only with replicas, worker families only with
 * workers; a state out of range is none of the four. */
static void test_metrics_states(void)
{
    struct stats_snap *s = make_snap(1, 2, false);
    struct stats_server_snap *a = &s->pools[0].servers[0], *b = &s->pools[0].servers[1];
    struct buf out;
    buf_init(&out);
    a->state = STATS_NO_READS;
    a->role = STATS_REPLICA;
    a->addr = dup_str("10.0.0.1:6379");
    a->failures = 2;
    free(b->name);
    b->name = dup_str("q\"\\x");
    b->state = 9;
    metrics_render_state(s, &out);
    CHECK_EQ_INT(buf_append(&out, "", 1), 0);
    const char *t = (const char *)out.data;
    CHECK(strstr(t, "nutcracker_server_info{pool=\"p0\",server=\"s0\",addr=\"10.0.0.1:6379\","
                    "role=\"replica\"} 1\n") != NULL);
    CHECK(strstr(t, "server=\"q\\\"\\\\x\",addr=\"\",role=\"shard\"} 1\n") != NULL);
    CHECK(strstr(t, "server=\"s0\",state=\"live\"} 0\n") != NULL);
    CHECK(strstr(t, "server=\"s0\",state=\"failing\"} 0\n") != NULL);
    CHECK(strstr(t, "server=\"s0\",state=\"ejected\"} 0\n") != NULL);
    CHECK(strstr(t, "server=\"s0\",state=\"no_reads\"} 1\n") != NULL);
    CHECK(strstr(t, "x\",state=\"live\"} 0\n") != NULL);
    CHECK(strstr(t, "x\",state=\"no_reads\"} 0\n") != NULL);
    CHECK(strstr(t, "nutcracker_server_consecutive_failures{pool=\"p0\",server=\"s0\"} 2\n") !=
          NULL);
    CHECK(strstr(t, "nutcracker_replica_state") == NULL);
    CHECK(strstr(t, "nutcracker_worker_up") == NULL);

    buf_reset(&out);
    a->nreplicas = 1;
    a->replicas = calloc(1, sizeof(*a->replicas));
    a->replicas[0].addr = dup_str("10.0.0.2:6379");
    a->replicas[0].state = STATS_EJECTED;
    s->nworkers = 2;
    s->workers = calloc(2, sizeof(*s->workers));
    s->workers[0] = (struct stats_worker_snap){.id = 0, .pid = 42, .restarts = 0};
    s->workers[1] = (struct stats_worker_snap){.id = 1, .pid = 0, .restarts = 3};
    metrics_render_state(s, &out);
    CHECK_EQ_INT(buf_append(&out, "", 1), 0);
    t = (const char *)out.data;
    CHECK(strstr(t, "# TYPE nutcracker_replica_state gauge\n") != NULL);
    CHECK(strstr(t, "nutcracker_replica_state{pool=\"p0\",server=\"s0\",replica=\"10.0.0.2:6379\","
                    "state=\"ejected\"} 1\n") != NULL);
    CHECK(strstr(t, "replica=\"10.0.0.2:6379\",state=\"live\"} 0\n") != NULL);
    CHECK(strstr(t, "nutcracker_worker_up{worker=\"0\"} 1\n") != NULL);
    CHECK(strstr(t, "nutcracker_worker_up{worker=\"1\"} 0\n") != NULL);
    CHECK(strstr(t, "# TYPE nutcracker_worker_restarts_total counter\n") != NULL);
    CHECK(strstr(t, "nutcracker_worker_restarts_total{worker=\"1\"} 3\n") != NULL);
    buf_free(&out);
    stats_snap_free(s);
}

/* ---- from a configuration and from live pools ---- */

static const char *two_pools = "beta:\n"
                               "  listen: 127.0.0.1:22121\n"
                               "  redis: true\n"
                               "  groups:\n"
                               "   - g2\n"
                               "   - g1\n"
                               "  sentinels:\n"
                               "   - 127.0.0.1:26379\n"
                               "alpha:\n"
                               "  listen: 127.0.0.1:22122\n"
                               "  servers:\n"
                               "   - 127.0.0.1:11211:1\n"
                               "   - 127.0.0.1:11212:1 named\n";

static void test_of_conf(void)
{
    struct conf *c = unit_conf(two_pools);
    CHECK(c != NULL);
    if (c == NULL) {
        return;
    }
    struct stats_snap *s = stats_snap_of_conf(c);
    CHECK(s != NULL && s->npools == c->npools);
    for (uint32_t i = 0; s != NULL && i < s->npools; i++) {
        const struct conf_pool *cp = &c->pools[i];
        CHECK(strcmp(s->pools[i].name, cp->name) == 0);
        CHECK(s->pools[i].group_fields == (cp->nsentinels > 0));
        CHECK_EQ_INT(s->pools[i].nservers, cp->nservers);
        CHECK_EQ_INT(s->pools[i].lat.count, 0);
        for (uint32_t j = 0; j < cp->nservers; j++) {
            CHECK(strcmp(s->pools[i].servers[j].name, cp->servers[j].name) == 0);
            CHECK_EQ_INT(s->pools[i].servers[j].v[SS_requests], 0);
        }
    }
    stats_snap_free(s);
    conf_unref(c);
}

/* Pools and servers as the proxy has them (built by pool_create on a proxy
 * whose loop never runs), just enough to be counted. */
static void test_of_proxy_and_render(void)
{
    struct conf *c = unit_conf(two_pools);
    CHECK(c != NULL);
    if (c == NULL) {
        return;
    }
    struct options o;
    memset(&o, 0, sizeof(o));
    o.mbuf_size = 16384;
    o.buffer_limit = 1 << 24;
    struct ev_loop *loop = ev_loop_create();
    struct proxy px;
    CHECK(loop != NULL && proxy_init(&px, loop, &o, -1) == 0);
    px.npools = c->npools;
    px.pools = calloc(px.npools, sizeof(*px.pools));
    px.total_connections = 9;
    px.curr_connections = 2;
    time_t start_time = time(NULL);
    for (uint32_t i = 0; i < c->npools; i++) {
        struct pool *p = pool_create(&px, c, i);
        CHECK(p != NULL);
        p->stats[SP_client_eof] = 1 + i;
        for (uint32_t j = 0; j < p->nservers; j++) {
            p->servers[j].stats[SS_requests] = 100 * (i + 1) + j;
            p->servers[j].gstats[SG_server_failover] = 3;
            p->servers[j].gstats[SG_failover_hold_us] = 250;
        }
        px.pools[i] = p;
    }
    struct stats_snap *s = pool_stats_snap(&px);
    CHECK(s != NULL && s->npools == 2 && s->total_connections == 9 && s->curr_connections == 2);
    if (s != NULL) {
        /* conf sorts names shorter first: beta (the sentinel pool), then alpha */
        CHECK(strcmp(s->pools[0].name, "beta") == 0 && s->pools[0].group_fields);
        CHECK(strcmp(s->pools[1].name, "alpha") == 0 && !s->pools[1].group_fields);
        CHECK_EQ_INT(s->pools[1].v[SP_client_eof], 2);
        CHECK_EQ_INT(s->pools[1].servers[1].v[SS_requests], 201);
        CHECK(strcmp(s->pools[0].servers[0].name, "g1") == 0);

        struct buf out;
        buf_init(&out);
        stats_render_json(s, start_time, &out);
        buf_append(&out, "", 1);
        const char *text = (const char *)out.data;
        static const char head[] = "\"total_connections\":9, \"curr_connections\":2, "
                                   "\"config_generation\":0, \"reload_failures\":0, "
                                   "\"last_reload\":\"none\", \"beta\": "
                                   "{\"client_eof\":1, \"client_err\":0, ";
        const char *at = strstr(text, "\"total_connections\"");
        CHECK(at != NULL && strncmp(at, head, strlen(head)) == 0);
        static const char want[] =
            "},\"alpha\": {\"client_eof\":2, "
            "\"client_err\":0, \"client_connections\":0, \"server_ejects\":0, "
            "\"forward_error\":0, \"fragments\":0, \"cross_server_refused\":0, "
            "\"auth_failed\":0, "
            "\"latency_p50_us\":0, \"latency_p90_us\":0, "
            "\"latency_p99_us\":0, \"latency_p999_us\":0, \"latency_max_us\":0, "
            "\"named\": {\"server_eof\":0, \"server_err\":0, \"server_timedout\":0, "
            "\"server_connections\":0, \"server_ejected_at\":0, \"requests\":200, "
            "\"request_bytes\":0, \"responses\":0, \"response_bytes\":0, \"in_queue\":0, "
            "\"in_queue_bytes\":0, \"out_queue\":0, \"out_queue_bytes\":0, "
            "\"server_latency_p50_us\":0, \"server_latency_p90_us\":0, "
            "\"server_latency_p99_us\":0, \"server_latency_p999_us\":0, "
            "\"server_latency_max_us\":0},\"127.0.0.1\": {";
        at = strstr(text, "},\"alpha\"");
        CHECK(at != NULL && strncmp(at, want, strlen(want)) == 0);
        /* server_failover in the sentinel pool's two groups only */
        at = strstr(text, "\"server_failover\":3");
        CHECK(at != NULL && (at = strstr(at + 1, "\"server_failover\":3")) != NULL &&
              strstr(at + 2, "server_failover") == NULL && at < strstr(text, "\"alpha\""));
        out.len--;
        CHECK(out.len > 0 && out.data[out.len - 1] == '\n');
        /* the group keys, in their order, after twemproxy's */
        CHECK(strstr((const char *)out.data,
                     "\"out_queue_bytes\":0, \"server_failover\":3, \"failover_held\":0, "
                     "\"failover_hold_us\":250, \"failover_released\":0, "
                     "\"failover_expired\":0, \"server_latency_p50_us\"") != NULL);
        CHECK(strncmp((const char *)out.data, "{\"service\":\"nutcracker\", \"source\":\"", 35) ==
              0);
        buf_free(&out);
    }
    stats_snap_free(s);

    proxy_deinit(&px); /* frees the pools */
    ev_loop_destroy(loop);
    conf_unref(c);
}

/* ---- shared memory ---- */

static void test_slots_local(void)
{
    CHECK(stats_slots_create(0, 1024) == NULL);
    struct stats_slots *sl = stats_slots_create(3, 32u << 20);
    CHECK(sl != NULL);
    if (sl == NULL) {
        return;
    }
    CHECK(stats_slot_read(sl, 0) == NULL);
    CHECK(stats_slot_read(sl, 3) == NULL);
    struct stats_snap *s = make_full_snap();
    CHECK_EQ_INT(stats_slot_publish(sl, 1, s), 0);
    CHECK_EQ_INT(stats_slot_publish(sl, 3, s), -1);
    CHECK(stats_slot_read(sl, 0) == NULL);
    CHECK(stats_slot_read(sl, 2) == NULL);
    struct stats_snap *r = stats_slot_read(sl, 1);
    CHECK(r != NULL && snap_equal(s, r));
    stats_snap_free(r);
    /* a second publish replaces the first */
    s->total_connections = 1;
    CHECK_EQ_INT(stats_slot_publish(sl, 1, s), 0);
    r = stats_slot_read(sl, 1);
    CHECK(r != NULL && r->total_connections == 1);
    stats_snap_free(r);
    stats_slot_clear(sl, 1);
    CHECK(stats_slot_read(sl, 1) == NULL);
    stats_slot_clear(sl, 7); /* out of range: ignored */
    stats_slots_destroy(sl);

    /* too big for the slot: refused, the old contents stay */
    sl = stats_slots_create(1, 64);
    struct stats_snap *small = make_snap(0, 0, false);
    CHECK_EQ_INT(stats_slot_publish(sl, 0, small), 0);
    CHECK_EQ_INT(stats_slot_publish(sl, 0, s), -1);
    CHECK_EQ_INT(stats_slot_publish(sl, 0, s), -1);
    r = stats_slot_read(sl, 0);
    CHECK(r != NULL && r->npools == 0);
    stats_snap_free(r);
    stats_snap_free(small);
    stats_slots_destroy(sl);
    stats_snap_free(s);
}

/* Every field and histogram bucket of the snapshot holds the same number: a
 * torn read would show two different ones. Filled buckets make the encoding
 * long, so that a write takes a while and readers do run into it. */
static void set_uniform(struct stats_snap *s, int64_t k)
{
    s->total_connections = (uint64_t)k;
    for (uint32_t i = 0; i < s->npools; i++) {
        for (int f = 0; f < SP_COUNT; f++) {
            s->pools[i].v[f] = k;
        }
        for (uint32_t j = 0; j < s->pools[i].nservers; j++) {
            struct stats_server_snap *sv = &s->pools[i].servers[j];
            for (int f = 0; f < SS_COUNT; f++) {
                sv->v[f] = k;
            }
            for (uint32_t b = 0; b < HISTO_BUCKETS; b++) {
                stats_server_lat_mut(sv)->b[b] = (uint64_t)k;
            }
        }
    }
}

static struct stats_snap *make_uniform(uint32_t ns, int64_t k)
{
    struct stats_snap *s = make_snap(2, ns, false);
    set_uniform(s, k);
    return s;
}

static bool is_uniform(const struct stats_snap *s, uint32_t ns, int64_t *k)
{
    if (s->npools != 2) {
        return false;
    }
    *k = (int64_t)s->total_connections;
    for (uint32_t i = 0; i < s->npools; i++) {
        if (s->pools[i].nservers != ns) {
            return false;
        }
        for (int f = 0; f < SP_COUNT; f++) {
            if (s->pools[i].v[f] != *k) {
                return false;
            }
        }
        for (uint32_t j = 0; j < ns; j++) {
            const struct stats_server_snap *sv = &s->pools[i].servers[j];
            for (int f = 0; f < SS_COUNT; f++) {
                if (sv->v[f] != *k) {
                    return false;
                }
            }
            for (uint32_t b = 0; b < HISTO_BUCKETS; b++) {
                if (stats_server_lat(sv)->b[b] != (uint64_t)*k) {
                    return false;
                }
            }
        }
    }
    return true;
}

static void test_slots_fork(void)
{
    struct stats_slots *sl = stats_slots_create(2, 1u << 20);
    CHECK(sl != NULL);
    if (sl == NULL) {
        return;
    }
    /* one publish from a child, read by the parent after the child is gone */
    pid_t pid = fork();
    if (pid == 0) {
        struct stats_snap *s = make_uniform(5, 77);
        int rc = stats_slot_publish(sl, 1, s);
        stats_snap_free(s);
        _exit(rc == 0 ? 0 : 1);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct stats_snap *r = stats_slot_read(sl, 1);
    int64_t k = 0;
    CHECK(r != NULL && is_uniform(r, 5, &k) && k == 77);
    stats_snap_free(r);
    CHECK(stats_slot_read(sl, 0) == NULL);

    /* a child publishing as fast as it can while the parent reads: every read
     * is whole, and the numbers only go forward */
    const uint32_t ns = 100;
    pid = fork();
    if (pid == 0) {
        struct stats_snap *s = make_uniform(ns, 1);
        for (int64_t i = 1;; i++) {
            set_uniform(s, i);
            stats_slot_publish(sl, 0, s);
        }
    }
    CHECK(pid > 0);
    int torn = 0, got = 0, backwards = 0;
    int64_t last = 0;
    struct timespec t0, t;
    long ms = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        r = stats_slot_read(sl, 0);
        if (r != NULL) {
            got++;
            torn += !is_uniform(r, ns, &k);
            backwards += k < last;
            last = k;
            stats_snap_free(r);
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        /* half a second of racing, longer on a busy machine until the child
         * has been seen publishing more than once */
    } while (ms < 500 || (last <= 1 && ms < 10000));
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    CHECK_EQ_INT(torn, 0);
    CHECK_EQ_INT(backwards, 0);
    CHECK(got > 0);
    CHECK(last > 1);
    /* the child may have died inside a write: clearing repairs the slot */
    stats_slot_clear(sl, 0);
    CHECK(stats_slot_read(sl, 0) == NULL);
    struct stats_snap *s = make_uniform(1, 5);
    CHECK_EQ_INT(stats_slot_publish(sl, 0, s), 0);
    stats_snap_free(s);
    r = stats_slot_read(sl, 0);
    CHECK(r != NULL && is_uniform(r, 1, &k) && k == 5);
    stats_snap_free(r);
    stats_slots_destroy(sl);
}

/* The stats JSON's numbers: what printf's %lld and %llu print. */
static void test_numbers(void)
{
    const int64_t vs[] = {0, 1, -1, 9, 10, 99, 100, 12345678901234LL, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
        struct buf got, want;
        buf_init(&got);
        buf_init(&want);
        buf_append_i64(&got, vs[i]);
        buf_printf(&want, "%lld", (long long)vs[i]);
        buf_append_u64(&got, (uint64_t)vs[i]);
        buf_printf(&want, "%llu", (unsigned long long)vs[i]);
        CHECK(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
        buf_free(&got);
        buf_free(&want);
    }
}

int main(void)
{
    test_numbers();
    test_round_trip();
    test_decode_rejects();
    test_add_status();
    test_metrics_states();
    test_add();
    test_of_conf();
    test_of_proxy_and_render();
    test_slots_local();
    test_slots_fork();
    UNIT_DONE("test_stats_snap");
}
