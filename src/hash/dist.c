/*
 * dist: where twemproxy 0.5 puts a key among a pool's live servers.
 *
 * All three distributions fill d->points and answer dist_pick() from it:
 *   ketama  the md5 continuum, sorted by value; pick = first point >= hash,
 *           wrapping to the first point;
 *   modula  twemproxy lays out one slot per unit of weight and picks slot
 *           hash % total. We keep one point per live node instead, whose value
 *           is the end (exclusive) of its run of slots, and binary-search the
 *           slot: same answer, memory in servers rather than in total weight;
 *   random  one point per live node; pick = rnd % count.
 * Ejected (not live) nodes get no points at all.
 */
#include "hash/dist.h"
#include "hash/hash.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KETAMA_POINTS_PER_SERVER 160 /* for a server of average weight */
#define KETAMA_POINTS_PER_DIGEST 4   /* one md5 digest yields four points */
/* twemproxy 0.5 formats "NAME-i" into a 273-byte buffer: longer strings are cut
 * to 272 bytes (it logs "forced to truncate a hostname"), which changes their
 * points, so the cut is part of the placement. Observed with Debian's 0.5.0. */
#define KETAMA_MAX_POINT_NAME 272

static const char *const dist_names[DIST_COUNT] = {
    [DIST_KETAMA] = "ketama",
    [DIST_MODULA] = "modula",
    [DIST_RANDOM] = "random",
};

const char *dist_name(enum dist_type t)
{
    return (unsigned)t < DIST_COUNT ? dist_names[t] : NULL;
}

int dist_from_name(const char *name, size_t len)
{
    for (int t = 0; t < DIST_COUNT; t++) {
        if (strlen(dist_names[t]) == len && memcmp(dist_names[t], name, len) == 0) {
            return t;
        }
    }
    return -1;
}

void dist_init(struct dist *d)
{
    d->type = DIST_KETAMA;
    d->points = NULL;
    d->npoints = 0;
    d->nlive = 0;
    d->bucket = NULL;
    d->bucket_shift = 32;
}

void dist_free(struct dist *d)
{
    free(d->points);
    free(d->bucket);
    dist_init(d);
}

/* Points a ketama server gets. twemproxy computes this in float (and adds a
 * double epsilon); the rounding is part of the placement, so keep the types. */
static uint32_t ketama_points(uint32_t weight, uint64_t total_weight, uint32_t nlive)
{
    float pct = (float)weight / (float)total_weight;
    float per =
        pct * (float)KETAMA_POINTS_PER_SERVER / (float)KETAMA_POINTS_PER_DIGEST * (float)nlive;
    float groups = floorf((float)((double)per + 0.0000000001));
    return (uint32_t)groups * KETAMA_POINTS_PER_DIGEST;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Ties (two servers on one value, practically never) go to the lower index,
 * which is what a stable sort of twemproxy's server-ordered array gives. */
static int point_cmp(const void *a, const void *b)
{
    const struct dist_point *x = a, *y = b;
    if (x->value != y->value) {
        return x->value < y->value ? -1 : 1;
    }
    return (x->index > y->index) - (x->index < y->index);
}

/* The points of one server: md5("NAME-i") for each group i, four per digest. */
static void ketama_server_points(struct dist_point *out, const struct dist_node *node,
                                 uint32_t index, uint32_t npoints, char *namebuf)
{
    uint32_t ngroups = npoints / KETAMA_POINTS_PER_DIGEST;
    for (uint32_t g = 0; g < ngroups; g++) {
        memcpy(namebuf, node->name, node->name_len);
        int n = snprintf(namebuf + node->name_len, 16, "-%u", (unsigned)g);
        size_t len = node->name_len + (size_t)n;
        if (len > KETAMA_MAX_POINT_NAME) {
            len = KETAMA_MAX_POINT_NAME;
        }
        uint8_t digest[16];
        hash_md5((const uint8_t *)namebuf, len, digest);
        for (uint32_t a = 0; a < KETAMA_POINTS_PER_DIGEST; a++) {
            out->value = le32(digest + 4 * a);
            out->index = index;
            out++;
        }
    }
}

static int ketama_build(struct dist_point **out, uint32_t *nout, const struct dist_node *nodes,
                        uint32_t n, uint32_t nlive, uint64_t total_weight)
{
    uint64_t total = 0;
    size_t maxname = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (nodes[i].live && nodes[i].weight > 0) {
            total += ketama_points(nodes[i].weight, total_weight, nlive);
            maxname = nodes[i].name_len > maxname ? nodes[i].name_len : maxname;
        }
    }
    if (total > UINT32_MAX) {
        return -1;
    }

    struct dist_point *pts = malloc((size_t)(total ? total : 1) * sizeof(*pts));
    char *namebuf = malloc(maxname + 16);
    if (pts == NULL || namebuf == NULL) {
        free(pts);
        free(namebuf);
        return -1;
    }

    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (nodes[i].live && nodes[i].weight > 0) {
            uint32_t np = ketama_points(nodes[i].weight, total_weight, nlive);
            ketama_server_points(pts + k, &nodes[i], i, np, namebuf);
            k += np;
        }
    }
    free(namebuf);
    qsort(pts, k, sizeof(*pts), point_cmp);
    *out = pts;
    *nout = k;
    return 0;
}

/* Modula: value = cumulative weight up to and including the node (see top). */
static int modula_build(struct dist_point **out, uint32_t *nout, const struct dist_node *nodes,
                        uint32_t n, uint32_t nlive, uint64_t total_weight)
{
    if (total_weight > UINT32_MAX) {
        return -1; /* twemproxy could not allocate that many slots either */
    }
    struct dist_point *pts = malloc((size_t)(nlive ? nlive : 1) * sizeof(*pts));
    if (pts == NULL) {
        return -1;
    }
    uint32_t k = 0, end = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (nodes[i].live && nodes[i].weight > 0) {
            end += nodes[i].weight;
            pts[k].value = end;
            pts[k].index = i;
            k++;
        }
    }
    *out = pts;
    *nout = k;
    return 0;
}

static int random_build(struct dist_point **out, uint32_t *nout, const struct dist_node *nodes,
                        uint32_t n, uint32_t nlive)
{
    struct dist_point *pts = malloc((size_t)(nlive ? nlive : 1) * sizeof(*pts));
    if (pts == NULL) {
        return -1;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (nodes[i].live) {
            pts[k].value = 0;
            pts[k].index = i;
            k++;
        }
    }
    *out = pts;
    *nout = k;
    return 0;
}

/* Index of the first point whose value is >= v (npoints if none). */
static uint32_t first_at_least(const struct dist_point *pts, uint32_t npoints, uint32_t v)
{
    uint32_t lo = 0, hi = npoints;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (pts[mid].value < v) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* The ketama bucket index: about one bucket per point (at most 2^16), so a
 * pick's binary search covers one or two points instead of log2(npoints).
 * Built from the sorted points, it changes no answer. NULL when out of memory:
 * picks then search the whole continuum. */
static uint32_t *ketama_buckets(const struct dist_point *pts, uint32_t npts, uint32_t *shift)
{
    uint32_t bits = 1;
    while (bits < 16 && (1u << bits) < npts) {
        bits++;
    }
    uint32_t nb = 1u << bits;
    uint32_t *b = malloc((size_t)(nb + 1) * sizeof(*b));
    if (b == NULL) {
        return NULL;
    }
    *shift = 32 - bits;
    uint32_t i = 0;
    for (uint32_t k = 0; k < nb; k++) {
        uint32_t v = k << *shift;
        while (i < npts && pts[i].value < v) {
            i++;
        }
        b[k] = i;
    }
    b[nb] = npts;
    return b;
}

int dist_build(struct dist *d, enum dist_type type, const struct dist_node *nodes, uint32_t n)
{
    uint32_t nlive = 0;
    uint64_t total_weight = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (nodes[i].live) {
            nlive++;
            total_weight += nodes[i].weight;
        }
    }

    struct dist_point *pts = NULL;
    uint32_t npts = 0;
    int rc;
    switch (type) {
    case DIST_KETAMA:
        rc = ketama_build(&pts, &npts, nodes, n, nlive, total_weight);
        break;
    case DIST_MODULA:
        rc = modula_build(&pts, &npts, nodes, n, nlive, total_weight);
        break;
    case DIST_RANDOM:
        rc = random_build(&pts, &npts, nodes, n, nlive);
        break;
    default:
        return -1;
    }
    if (rc != 0) {
        return -1;
    }

    uint32_t shift = 32;
    uint32_t *bucket = type == DIST_KETAMA ? ketama_buckets(pts, npts, &shift) : NULL;
    free(d->points);
    free(d->bucket);
    d->type = type;
    d->points = pts;
    d->npoints = npts;
    d->nlive = nlive;
    d->bucket = bucket;
    d->bucket_shift = shift;
    return 0;
}

int dist_pick(const struct dist *d, uint32_t hash, uint32_t rnd)
{
    if (d->npoints == 0) {
        return -1;
    }
    uint32_t i;
    switch (d->type) {
    case DIST_KETAMA:
        if (d->bucket != NULL) {
            /* every point before bucket[k] is below hash, and the point at
             * bucket[k + 1] (if any) is above it */
            uint32_t k = hash >> d->bucket_shift, lo = d->bucket[k];
            i = lo + first_at_least(d->points + lo, d->bucket[k + 1] - lo, hash);
        } else {
            i = first_at_least(d->points, d->npoints, hash);
        }
        if (i == d->npoints) {
            i = 0; /* past the last point: wrap around the circle */
        }
        break;
    case DIST_MODULA: {
        uint32_t slot = hash % d->points[d->npoints - 1].value;
        /* The node owning slot s is the first whose end exceeds s. */
        i = first_at_least(d->points, d->npoints, slot + 1);
        break;
    }
    case DIST_RANDOM:
        i = rnd % d->npoints;
        break;
    default:
        return -1;
    }
    return (int)d->points[i].index;
}
