/*
 * snap: a value copy of every counter the stats port and /metrics report, so
 * rendering does not care whose counters they are: this process's own pools, or
 * the sum over the workers of a master (SPEC 8), which reach the master through
 * shared memory in the binary form below (stats/slot.h).
 */
#ifndef NC_STATS_SNAP_H
#define NC_STATS_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/buf.h"
#include "stats/histo.h"
#include "stats/stats_fields.h"

struct conf;

struct stats_server_snap {
    char *name;
    int64_t v[SS_COUNT];
    int64_t g[SG_COUNT]; /* a sentinel group's (stats_fields.h); zero elsewhere */
    struct histo lat;
};

struct stats_pool_snap {
    char *name;
    bool sentinel; /* render the group fields (server_failover...) */
    bool cluster;  /* a redis_cluster pool: render c[], servers may grow at run time */
    int64_t v[SP_COUNT];
    int64_t x[SPX_COUNT]; /* ours (stats_fields.h) */
    int64_t c[SC_COUNT];  /* a cluster pool's (stats_fields.h); zero elsewhere */
    struct histo lat;
    uint32_t nservers;
    struct stats_server_snap *servers;
};

/* What the last configuration reload did. */
enum stats_reload { STATS_RELOAD_NONE = 0, STATS_RELOAD_OK, STATS_RELOAD_FAILED };

struct stats_snap {
    uint64_t total_connections, curr_connections;
    /* configuration generation in force (1: the file read at start, +1 per
     * applied reload), reloads that changed nothing because they failed, and
     * the last one's outcome (enum stats_reload): how a test or an operator
     * sees that a reload finished, without reading the log */
    uint64_t generation, reload_failures;
    uint8_t last_reload;
    uint32_t npools;
    struct stats_pool_snap *pools;
};

/* All zero, in conf's layout (pools and servers in conf order, names from
 * conf): what the master sums into. NULL when out of memory. */
struct stats_snap *stats_snap_of_conf(const struct conf *conf);
/* Where the stats port and /metrics get their numbers: this process's pools,
 * or the sum over the workers of a master (process/). */
struct stats_source {
    struct stats_snap *(*collect)(void *ctx); /* NULL when out of memory */
    void *ctx;
    time_t start_time; /* uptime counts from it */
};
/* Append a server named name to p (a cluster node learned at run time): its
 * zeroed entry, or NULL when out of memory. */
struct stats_server_snap *stats_pool_snap_add_server(struct stats_pool_snap *p, const char *name);
/* Add from into into, matching pools and servers by name (entries of from that
 * into does not have are ignored, except the servers of a cluster pool, which
 * are appended: its nodes are learned at run time, not from the file). COUNTER and GAUGE fields are
 * summed, TIMESTAMP and MAX fields take the max, histograms merge, the connection totals are
 * summed; the generation is the lowest (every worker has it), reload failures are the most any one
 * counted and a failed last reload wins. With counters_only, GAUGE fields and curr_connections are
 * not added (the last counts of a worker that died: sums never go backwards, but its connections
 * are gone). */
void stats_snap_add(struct stats_snap *into, const struct stats_snap *from, bool counters_only);
/* Append the binary form of s to out. Returns 0, or -1 when out of memory. */
int stats_snap_encode(const struct stats_snap *s, struct buf *out);
/* Parse exactly len bytes of the binary form. Strict: anything malformed,
 * truncated, non-canonical or followed by extra bytes gives NULL (as does out
 * of memory). */
struct stats_snap *stats_snap_decode(const uint8_t *p, size_t len);
void stats_snap_free(struct stats_snap *s);

#endif
