/*
 * pool_stats: a stats snapshot (stats/snap.h) of a proxy's pools, the value
 * the stats port, /metrics and a worker's shared-memory slot are made from.
 */
#ifndef NC_POOL_STATS_H
#define NC_POOL_STATS_H

struct proxy;
struct stats_snap;

/* Pools in px->pools order, servers in pool order, the connection counts;
 * NULL when out of memory. The process fills in its own fields (generation). */
struct stats_snap *pool_stats_snap(const struct proxy *px);

#endif
