/*
 * test_dist: key placement against what twemproxy 0.5 did
 * (tests/vectors/placement.tsv), and the properties the pool relies on:
 * ejection, no live node, weights.
 *
 * Ketama point names. twemproxy names a server by its config name when one is
 * given ("127.0.0.1:7402:2 beta" -> "beta"), else by "host:port" WITHOUT the
 * weight ("127.0.0.1:7401"); for port 11211 just "host", and for a unix socket
 * "/path:" (path plus a colon). Config A of the vectors fits "127.0.0.1:7401"
 * for all 46 keys and "127.0.0.1:7401:1" for none of key:0..39; the unix rule
 * was observed with Debian's nutcracker 0.5.0. Servers are indexed in name
 * order (shorter first, then bytewise), which modula depends on.
 */
#include "hash/dist.h"
#include "hash/hash.h"
#include "unit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERVERS 16
#define MAX_CONFIGS 16

struct server {
    char spec[128]; /* as written in the config and printed in the vectors */
    char name[128]; /* ketama name, see top */
    uint32_t weight;
};

struct config {
    char id[8];
    int hash;
    int dist;
    char tag[2];
    int has_tag;
    struct server servers[MAX_SERVERS]; /* sorted by name */
    uint32_t nservers;
    int rows;
};

/* twemproxy's server name for "host:port:weight [name]" or "/path:weight [name]". */
static void server_parse(struct server *s, const char *spec)
{
    snprintf(s->spec, sizeof(s->spec), "%s", spec);
    const char *space = strchr(spec, ' ');
    size_t addr_len = space ? (size_t)(space - spec) : strlen(spec);
    const char *wcolon = NULL;
    for (size_t i = 0; i < addr_len; i++) {
        if (spec[i] == ':') {
            wcolon = spec + i;
        }
    }
    s->weight = wcolon ? (uint32_t)strtoul(wcolon + 1, NULL, 10) : 1;
    size_t hp_len = wcolon ? (size_t)(wcolon - spec) : addr_len; /* "host:port" or "/path" */

    if (space != NULL) {
        snprintf(s->name, sizeof(s->name), "%s", space + 1);
    } else if (spec[0] == '/') {
        snprintf(s->name, sizeof(s->name), "%.*s:", (int)hp_len, spec);
    } else if (hp_len > 6 && memcmp(spec + hp_len - 6, ":11211", 6) == 0) {
        snprintf(s->name, sizeof(s->name), "%.*s", (int)hp_len - 6, spec);
    } else {
        snprintf(s->name, sizeof(s->name), "%.*s", (int)hp_len, spec);
    }
}

/* Pool order: shorter name first, then bytewise. */
static int server_cmp(const void *a, const void *b)
{
    const struct server *x = a, *y = b;
    size_t lx = strlen(x->name), ly = strlen(y->name);
    if (lx != ly) {
        return lx < ly ? -1 : 1;
    }
    return memcmp(x->name, y->name, lx);
}

/* "# config A: hash: fnv1a_64; distribution: ketama; hash_tag: "{}"; servers: a, b" */
static int config_parse(struct config *c, char *line)
{
    memset(c, 0, sizeof(*c));
    c->hash = -1;
    c->dist = -1;
    if (strncmp(line, "# config ", 9) != 0) {
        return -1;
    }
    char *p = line + 9, *colon = strchr(p, ':');
    if (colon == NULL || (size_t)(colon - p) >= sizeof(c->id)) {
        return -1;
    }
    memcpy(c->id, p, (size_t)(colon - p));
    p = colon + 1;

    for (char *item = strtok(p, ";"); item != NULL; item = strtok(NULL, ";")) {
        while (*item == ' ') {
            item++;
        }
        char *val = strstr(item, ": ");
        if (val == NULL) {
            continue;
        }
        *val = '\0';
        val += 2;
        if (strcmp(item, "hash") == 0) {
            c->hash = hash_from_name(val, strlen(val));
        } else if (strcmp(item, "distribution") == 0) {
            c->dist = dist_from_name(val, strlen(val));
        } else if (strcmp(item, "hash_tag") == 0 && strlen(val) == 4 && val[0] == '"') {
            c->tag[0] = val[1];
            c->tag[1] = val[2];
            c->has_tag = 1;
        } else if (strcmp(item, "servers") == 0) {
            /* Strip the ", " separators one server at a time. */
            for (char *s = val; s != NULL && c->nservers < MAX_SERVERS;) {
                char *next = strstr(s, ", ");
                if (next != NULL) {
                    *next = '\0';
                    next += 2;
                }
                server_parse(&c->servers[c->nservers++], s);
                s = next;
            }
        }
    }
    qsort(c->servers, c->nservers, sizeof(c->servers[0]), server_cmp);
    return c->hash >= 0 && c->dist >= 0 && c->nservers > 0 ? 0 : -1;
}

static void config_nodes(const struct config *c, struct dist_node *nodes)
{
    for (uint32_t i = 0; i < c->nservers; i++) {
        nodes[i].name = c->servers[i].name;
        nodes[i].name_len = strlen(c->servers[i].name);
        nodes[i].weight = c->servers[i].weight;
        nodes[i].live = true;
    }
}

static uint32_t key_hash(int hash, const char *tag, const char *key, size_t len)
{
    size_t n;
    const uint8_t *k = hash_tag_apply((const uint8_t *)key, len, tag, &n);
    return hash_key((enum hash_type)hash, k, n);
}

/* One "config\tkey\tserver" row: the server we pick must be the one printed. */
static void check_row(struct config *cfgs, int ncfg, struct dist *dists, char *line)
{
    line[strcspn(line, "\r\n")] = '\0';
    char *key = strchr(line, '\t');
    char *server = key ? strchr(key + 1, '\t') : NULL;
    CHECK(server != NULL);
    if (server == NULL) {
        return;
    }
    *key++ = '\0';
    *server++ = '\0';
    for (int i = 0; i < ncfg; i++) {
        if (strcmp(cfgs[i].id, line) != 0) {
            continue;
        }
        struct config *c = &cfgs[i];
        uint32_t h = key_hash(c->hash, c->has_tag ? c->tag : NULL, key, strlen(key));
        int got = dist_pick(&dists[i], h, 0);
        const char *got_spec = got >= 0 ? c->servers[got].spec : "(none)";
        if (strcmp(got_spec, server) != 0) {
            fprintf(stderr, "  config %s key \"%s\": got %s, want %s\n", c->id, key, got_spec,
                    server);
        }
        CHECK(strcmp(got_spec, server) == 0);
        c->rows++;
        return;
    }
    fprintf(stderr, "  unknown config \"%s\"\n", line);
    CHECK(0);
}

static void test_placement(void)
{
    FILE *f = unit_vectors_open("placement.tsv");
    CHECK(f != NULL);
    if (f == NULL) {
        return;
    }
    static struct config cfgs[MAX_CONFIGS];
    struct dist dists[MAX_CONFIGS];
    int ncfg = 0;
    char line[4096];

    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "# config ", 9) == 0 && ncfg < MAX_CONFIGS) {
            line[strcspn(line, "\r\n")] = '\0';
            CHECK_EQ_INT(config_parse(&cfgs[ncfg], line), 0);
            struct dist_node nodes[MAX_SERVERS];
            config_nodes(&cfgs[ncfg], nodes);
            dist_init(&dists[ncfg]);
            CHECK_EQ_INT(dist_build(&dists[ncfg], (enum dist_type)cfgs[ncfg].dist, nodes,
                                    cfgs[ncfg].nservers),
                         0);
            ncfg++;
        } else if (line[0] != '#' && strncmp(line, "config\t", 7) != 0 && line[0] != '\n') {
            check_row(cfgs, ncfg, dists, line);
        }
    }
    fclose(f);

    CHECK(ncfg >= 4);
    for (int i = 0; i < ncfg; i++) {
        CHECK(cfgs[i].rows > 0);
        dist_free(&dists[i]);
    }
}

/* The four equal servers of config A. */
static void nodes_a(struct dist_node nodes[4])
{
    static const char *names[4] = {"127.0.0.1:7401", "127.0.0.1:7402", "127.0.0.1:7403",
                                   "127.0.0.1:7404"};
    for (int i = 0; i < 4; i++) {
        nodes[i] = (struct dist_node){names[i], strlen(names[i]), 1, true};
    }
}

/* With equal weights a ketama ejection moves only the ejected node's keys:
 * the others keep exactly their points (160 each for 3 or 4 servers). */
static void test_eject(void)
{
    struct dist_node nodes[4];
    nodes_a(nodes);
    struct dist all, less;
    dist_init(&all);
    dist_init(&less);
    CHECK_EQ_INT(dist_build(&all, DIST_KETAMA, nodes, 4), 0);
    CHECK_EQ_INT(all.npoints, 4 * 160);
    CHECK_EQ_INT(all.nlive, 4);

    for (uint32_t gone = 0; gone < 4; gone++) {
        nodes_a(nodes);
        nodes[gone].live = false;
        CHECK_EQ_INT(dist_build(&less, DIST_KETAMA, nodes, 4), 0);
        CHECK_EQ_INT(less.npoints, 3 * 160);
        CHECK_EQ_INT(less.nlive, 3);
        int moved = 0, kept_bad = 0, to_dead = 0;
        for (int k = 0; k < 5000; k++) {
            char key[32];
            int n = snprintf(key, sizeof(key), "key:%d", k);
            uint32_t h = key_hash(HASH_FNV1A_64, NULL, key, (size_t)n);
            int before = dist_pick(&all, h, 0), after = dist_pick(&less, h, 0);
            to_dead += after == (int)gone;
            if (before == (int)gone) {
                moved++;
            } else {
                kept_bad += before != after;
            }
        }
        CHECK(moved > 0);
        CHECK_EQ_INT(kept_bad, 0);
        CHECK_EQ_INT(to_dead, 0);
    }
    dist_free(&all);
    dist_free(&less);
}

static void test_no_live(void)
{
    struct dist_node nodes[4];
    nodes_a(nodes);
    for (int i = 0; i < 4; i++) {
        nodes[i].live = false;
    }
    for (int t = 0; t < DIST_COUNT; t++) {
        struct dist d;
        dist_init(&d);
        CHECK_EQ_INT(dist_pick(&d, 123, 0), -1); /* never built */
        CHECK_EQ_INT(dist_build(&d, (enum dist_type)t, nodes, 4), 0);
        CHECK_EQ_INT(d.nlive, 0);
        CHECK_EQ_INT(dist_pick(&d, 0, 0), -1);
        CHECK_EQ_INT(dist_pick(&d, 0xffffffffu, 7), -1);
        CHECK_EQ_INT(dist_build(&d, (enum dist_type)t, nodes, 0), 0);
        CHECK_EQ_INT(dist_pick(&d, 42, 42), -1);
        /* One node back: everything goes to it. */
        nodes[2].live = true;
        CHECK_EQ_INT(dist_build(&d, (enum dist_type)t, nodes, 4), 0);
        CHECK_EQ_INT(dist_pick(&d, 0, 0), 2);
        CHECK_EQ_INT(dist_pick(&d, 0xffffffffu, 0xffffffffu), 2);
        nodes[2].live = false;
        dist_free(&d);
    }
}

/* The bucket index only narrows the search: every pick equals the first point
 * >= hash over the whole continuum (wrapping), for hashes at and next to every
 * point, bucket edges and random ones, with 1, 4 and 25 servers. */
static uint32_t pick_linear(const struct dist *d, uint32_t hash)
{
    for (uint32_t i = 0; i < d->npoints; i++) {
        if (d->points[i].value >= hash) {
            return d->points[i].index;
        }
    }
    return d->points[0].index;
}

static int bucket_mismatches(const struct dist *d)
{
    int bad = 0;
    for (uint32_t i = 0; i < d->npoints; i++) {
        uint32_t v = d->points[i].value;
        uint32_t probe[3] = {v - 1, v, v + 1};
        for (int j = 0; j < 3; j++) {
            bad += dist_pick(d, probe[j], 0) != (int)pick_linear(d, probe[j]);
        }
    }
    uint32_t x = 2463534242u;
    for (int k = 0; k < 200000; k++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        uint32_t h = k < 65536 ? (uint32_t)k << 16 : x; /* every bucket's first hash */
        bad += dist_pick(d, h, 0) != (int)pick_linear(d, h);
    }
    bad += dist_pick(d, 0, 0) != (int)pick_linear(d, 0);
    bad += dist_pick(d, 0xffffffffu, 0) != (int)pick_linear(d, 0xffffffffu);
    return bad;
}

static void test_ketama_buckets(void)
{
    static char names[25][8];
    struct dist_node many[25];
    for (int i = 0; i < 25; i++) {
        int n = snprintf(names[i], sizeof(names[i]), "s%d", i + 10);
        many[i] = (struct dist_node){names[i], (size_t)n, (uint32_t)(1 + i % 3), true};
    }
    uint32_t sizes[3] = {1, 4, 25};
    for (int t = 0; t < 3; t++) {
        struct dist d;
        dist_init(&d);
        CHECK_EQ_INT(dist_build(&d, DIST_KETAMA, many, sizes[t]), 0);
        CHECK(d.bucket != NULL);
        CHECK_EQ_INT(bucket_mismatches(&d), 0);
        dist_free(&d);
    }
}

/* Ketama: 4 * floorf(pct * 40 * nlive) points per server, from float maths. */
static void test_ketama_weights(void)
{
    /* Config B, in name order: beta(2) alpha(1) delta(5) gamma(1). */
    struct dist_node nodes[4] = {
        {"beta", 4, 2, true},
        {"alpha", 5, 1, true},
        {"delta", 5, 5, true},
        {"gamma", 5, 1, true},
    };
    struct dist d;
    dist_init(&d);
    CHECK_EQ_INT(dist_build(&d, DIST_KETAMA, nodes, 4), 0);
    uint32_t count[4] = {0};
    for (uint32_t i = 0; i < d.npoints; i++) {
        count[d.points[i].index]++;
        if (i > 0) {
            CHECK(d.points[i - 1].value <= d.points[i].value);
        }
    }
    CHECK_EQ_INT(count[0], 140); /* 2/9 * 160: 35.6 -> 35 groups */
    CHECK_EQ_INT(count[1], 68);  /* 1/9: 17.8 -> 17 */
    CHECK_EQ_INT(count[2], 352); /* 5/9: 88.9 -> 88 */
    CHECK_EQ_INT(count[3], 68);

    /* Float rounding is kept on purpose: 25 equal servers get 39 groups
     * (156 points) each, not 40 (confirmed against nutcracker 0.5.0). */
    static char names[25][8];
    struct dist_node many[25];
    for (int i = 0; i < 25; i++) {
        int n = snprintf(names[i], sizeof(names[i]), "s%d", i + 10);
        many[i] = (struct dist_node){names[i], (size_t)n, 1, true};
    }
    CHECK_EQ_INT(dist_build(&d, DIST_KETAMA, many, 25), 0);
    CHECK_EQ_INT(d.npoints, 25 * 156);

    /* "NAME-i" is cut at 272 bytes (twemproxy's buffer): two long names that
     * agree on their first 272 bytes then give every group the same 4 points.
     * Ties sort the lower index first, so node 0 takes all keys, as observed
     * with nutcracker 0.5.0 on glibc 2.36 (whose qsort is stable here). */
    static char longname[300];
    memset(longname, 'n', sizeof(longname));
    struct dist_node same[2] = {{longname, 280, 1, true}, {longname, 290, 1, true}};
    CHECK_EQ_INT(dist_build(&d, DIST_KETAMA, same, 2), 0);
    CHECK_EQ_INT(d.npoints, 320);
    uint32_t distinct = 1;
    for (uint32_t i = 1; i < d.npoints; i++) {
        const struct dist_point *a = &d.points[i - 1], *b = &d.points[i];
        CHECK(a->value < b->value || (a->value == b->value && a->index <= b->index));
        distinct += a->value != b->value;
    }
    CHECK_EQ_INT(distinct, 4);
    for (uint32_t h = 0; h < 0xf0000000u; h += 0x01000000u) {
        CHECK_EQ_INT(dist_pick(&d, h, 0), 0);
    }
    dist_free(&d);
}

/* Modula: hash % total weight, one run of slots per node in order. */
static void test_modula_weights(void)
{
    struct dist_node nodes[4];
    nodes_a(nodes);
    nodes[2].weight = 2; /* config C */
    struct dist d;
    dist_init(&d);
    CHECK_EQ_INT(dist_build(&d, DIST_MODULA, nodes, 4), 0);
    static const int want[5] = {0, 1, 2, 2, 3};
    for (uint32_t h = 0; h < 50; h++) {
        CHECK_EQ_INT(dist_pick(&d, h, 0), want[h % 5]);
    }
    CHECK_EQ_INT(dist_pick(&d, 0xffffffffu, 0), want[0xffffffffu % 5]);

    /* An ejected node's slots vanish; the others close up. */
    nodes[1].live = false;
    CHECK_EQ_INT(dist_build(&d, DIST_MODULA, nodes, 4), 0);
    static const int want2[4] = {0, 2, 2, 3};
    for (uint32_t h = 0; h < 40; h++) {
        CHECK_EQ_INT(dist_pick(&d, h, 0), want2[h % 4]);
    }
    dist_free(&d);
}

/* Random: rnd % live count, weights ignored, dead nodes never picked. */
static void test_random(void)
{
    struct dist_node nodes[4];
    nodes_a(nodes);
    nodes[0].weight = 9;
    nodes[1].live = false;
    struct dist d;
    dist_init(&d);
    CHECK_EQ_INT(dist_build(&d, DIST_RANDOM, nodes, 4), 0);
    static const int want[3] = {0, 2, 3};
    for (uint32_t r = 0; r < 30; r++) {
        CHECK_EQ_INT(dist_pick(&d, 777, r), want[r % 3]);
    }
    dist_free(&d);
}

static void test_names(void)
{
    for (int t = 0; t < DIST_COUNT; t++) {
        const char *n = dist_name((enum dist_type)t);
        CHECK(n != NULL);
        if (n != NULL) {
            CHECK_EQ_INT(dist_from_name(n, strlen(n)), t);
        }
    }
    CHECK_EQ_INT(dist_from_name("ketama", 6), DIST_KETAMA);
    CHECK_EQ_INT(dist_from_name("modula", 6), DIST_MODULA);
    CHECK_EQ_INT(dist_from_name("random", 6), DIST_RANDOM);
    CHECK_EQ_INT(dist_from_name("ketam", 5), -1);
    CHECK_EQ_INT(dist_from_name("Ketama", 6), -1);
    CHECK_EQ_INT(dist_from_name("", 0), -1);
    CHECK(dist_name(DIST_COUNT) == NULL);
}

/* The ketama-name rule of the top comment. */
static void test_server_names(void)
{
    struct server s;
    server_parse(&s, "127.0.0.1:7401:1");
    CHECK_MEM(s.name, strlen(s.name), "127.0.0.1:7401");
    CHECK_EQ_INT(s.weight, 1);
    server_parse(&s, "127.0.0.1:7404:5 delta");
    CHECK_MEM(s.name, strlen(s.name), "delta");
    CHECK_EQ_INT(s.weight, 5);
    server_parse(&s, "10.0.0.1:11211:3");
    CHECK_MEM(s.name, strlen(s.name), "10.0.0.1");
    server_parse(&s, "/tmp/r1.sock:2");
    CHECK_MEM(s.name, strlen(s.name), "/tmp/r1.sock:");
    CHECK_EQ_INT(s.weight, 2);
}

int main(void)
{
    test_server_names();
    test_placement();
    test_eject();
    test_no_live();
    test_ketama_weights();
    test_ketama_buckets();
    test_modula_weights();
    test_random();
    test_names();
    UNIT_DONE("test_dist");
}
