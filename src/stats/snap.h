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

/* What the status page says of a server (the worst over the workers). NO_READS:
 * a static replica reachable or not, left out of the reads because it cannot
 * have its master's data (replica_check.h). */
enum stats_state {
    STATS_LIVE = 0,
    STATS_FAILING,
    STATS_EJECTED,
    STATS_NO_READS,
    STATS_STATE_COUNT
};
/* A server of a sharded pool, the master or a replica of a master/replica pool. */
enum stats_role { STATS_SHARD = 0, STATS_MASTER, STATS_REPLICA, STATS_ROLE_COUNT };

/* The names the status page and /metrics give a state ("live", "failing",
 * "ejected", "no_reads") and a role ("shard", "master", "replica"); "?" out
 * of range. */
const char *stats_state_name(unsigned state);
const char *stats_role_name(unsigned role);

/* A replica of a sentinel group, as the sentinels list it. */
struct stats_replica_snap {
    char *addr;
    uint8_t state; /* enum stats_state: EJECTED when it gets no read */
};

struct stats_server_snap {
    char *name;
    int64_t v[SS_COUNT];
    int64_t g[SG_COUNT]; /* a sentinel group's (stats_fields.h); zero elsewhere */
    /* NULL while nothing was recorded: a histogram is 4 KB, and a pool of
     * thousands of servers, most idle, was allocated and zeroed whole at every
     * interval (read it with stats_server_lat) */
    struct histo *lat;
    /* for the status page (not in the stats JSON, whose keys stay twemproxy's) */
    char *addr;               /* where it is now ("" unknown: a group with no master yet) */
    uint8_t role;             /* enum stats_role */
    uint8_t state;            /* enum stats_state */
    uint32_t failures;        /* in a row */
    int64_t ejected_until_ms; /* wall clock; 0 unless ejected */
    char *last_error;         /* "" none */
    int64_t last_error_ms;    /* wall clock */
    uint32_t nreplicas;
    struct stats_replica_snap *replicas;
};

/* How a pool maps keys (proxy/pool.h's pool_mode). */
enum stats_pool_mode {
    STATS_PLAIN = 0,
    STATS_MASTER_REPLICA,
    STATS_SENTINEL,
    STATS_CLUSTER,
    STATS_MODE_COUNT
};

struct stats_pool_snap {
    char *name;
    bool group_fields; /* render them (server_failover...): a sentinel pool, or one holding a
                        * server's requests through its restart (failover_hold_on_crash) */
    bool cluster;      /* a redis_cluster pool: render c[], servers may grow at run time */
    int64_t v[SP_COUNT];
    int64_t x[SPX_COUNT]; /* ours (stats_fields.h) */
    int64_t c[SC_COUNT];  /* a cluster pool's (stats_fields.h); zero elsewhere */
    struct histo lat;
    uint32_t nservers;
    struct stats_server_snap *servers;
    char *listen; /* as written in the file */
    bool redis;
    uint8_t mode; /* enum stats_pool_mode */
};

/* A worker of the master/worker mode (filled by the master; never encoded). */
struct stats_worker_snap {
    int id;
    int pid;            /* 0: not running (waiting to be restarted) */
    int64_t started_ms; /* wall clock */
    uint32_t restarts;
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
    int64_t last_reload_ms; /* wall clock of the last reload, 0: none */
    uint32_t npools;
    struct stats_pool_snap *pools;
    /* the master/worker mode: the workers (master_collect fills it in) */
    uint32_t nworkers;
    struct stats_worker_snap *workers;
};

/* s's latency histogram; an empty one when none was recorded. */
const struct histo *stats_server_lat(const struct stats_server_snap *s);
/* The same to change: made when missing; NULL when out of memory. */
struct histo *stats_server_lat_mut(struct stats_server_snap *s);

/* All zero, in conf's layout (pools and servers in conf order, names,
 * addresses and modes from conf): what the master sums into. NULL when out of
 * memory. */
struct stats_snap *stats_snap_of_conf(const struct conf *conf);
/* Where the stats port and /metrics get their numbers: this process's pools,
 * or the sum over the workers of a master (process/). */
struct stats_source {
    struct stats_snap *(*collect)(void *ctx); /* NULL when out of memory */
    void *ctx;
    time_t start_time; /* uptime counts from it */
};
/* Append a server named name to p (a cluster node learned at run time): its
 * zeroed entry with its name as address, or NULL when out of memory. */
struct stats_server_snap *stats_pool_snap_add_server(struct stats_pool_snap *p, const char *name);
/* Add from into into, matching pools and servers by name (entries of from that
 * into does not have are ignored, except the servers of a cluster pool, which
 * are appended: its nodes are learned at run time). COUNTER and GAUGE fields are summed,
 * TIMESTAMP and MAX fields take the max, histograms merge, the connection
 * totals are summed; the generation is the lowest (every worker has it), reload
 * failures are the most any one counted and a failed last reload wins; a server's state is the
 * worst, its last error the latest, its address and replicas the first known. With counters_only,
 * GAUGE fields, curr_connections and the status fields are not added (the last counts of a worker
 * that died: sums never go backwards, but its connections are gone). */
void stats_snap_add(struct stats_snap *into, const struct stats_snap *from, bool counters_only);
/* Set *dst to a copy of src (NULL: ""). Returns 0, or -1 when out of memory. */
int stats_snap_set_str(char **dst, const char *src);
/* Append the binary form of s to out (workers are not part of it). Returns 0, or -1 when out of
 * memory. */
int stats_snap_encode(const struct stats_snap *s, struct buf *out);
/* Parse exactly len bytes of the binary form. Strict: anything malformed,
 * truncated, non-canonical or followed by extra bytes gives NULL (as does out
 * of memory). */
struct stats_snap *stats_snap_decode(const uint8_t *p, size_t len);
void stats_snap_free(struct stats_snap *s);

#endif
