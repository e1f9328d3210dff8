/*
 * dist: key distribution over a pool's live servers (ketama, modula, random),
 * placing keys exactly where twemproxy 0.5 places them.
 *
 * A struct dist is built from the server list once and rebuilt whenever the set
 * of live servers changes (ejection, return, reload, failover); it is a value
 * the pool owns, never shared.
 */
#ifndef NC_DIST_H
#define NC_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dist_type { DIST_KETAMA = 0, DIST_MODULA, DIST_RANDOM, DIST_COUNT };

const char *dist_name(enum dist_type t);
int dist_from_name(const char *name, size_t len); /* -1 if unknown */

/* One server as the distribution sees it, in the pool's (sorted) server order. */
struct dist_node {
    const char *name; /* ketama point name (the server's name) */
    size_t name_len;
    uint32_t weight;
    bool live; /* false: ejected, takes no keys */
};

struct dist_point {
    uint32_t value;
    uint32_t index; /* index into the node array */
};

struct dist {
    enum dist_type type;
    struct dist_point *points;
    uint32_t npoints;
    uint32_t nlive;
    /* ketama: bucket[k] is the first point >= k << shift, for the 2^bits
     * buckets of the top hash bits, and bucket[2^bits] = npoints; a pick then
     * searches only its bucket's few points (NULL: search them all) */
    uint32_t *bucket;
    uint32_t bucket_shift;
};

void dist_init(struct dist *d);
/* (Re)build from nodes[0..n); returns 0, or -1 when out of memory (d unchanged then). */
int dist_build(struct dist *d, enum dist_type type, const struct dist_node *nodes, uint32_t n);
/* Node index for a key hash; rnd is a random number used only by DIST_RANDOM.
 * Returns -1 when no node is live. */
int dist_pick(const struct dist *d, uint32_t hash, uint32_t rnd);
void dist_free(struct dist *d);

#endif
