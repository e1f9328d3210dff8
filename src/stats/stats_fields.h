/*
 * stats_fields: every counter twemproxy 0.5 reports, in its order, with its
 * description (the -D output). Kept as X-macros so the enum, the JSON and the
 * descriptions can never disagree. Kinds: COUNTER only grows, GAUGE goes up
 * and down, TIMESTAMP is a point in time and MAX the largest value seen (both
 * summed across workers as a max).
 */
#ifndef NC_STATS_FIELDS_H
#define NC_STATS_FIELDS_H

#define STATS_POOL_FIELDS(X)                                                                       \
    X(client_eof, COUNTER, "# eof on client connections")                                          \
    X(client_err, COUNTER, "# errors on client connections")                                       \
    X(client_connections, GAUGE, "# active client connections")                                    \
    X(server_ejects, COUNTER, "# times backend server was ejected")                                \
    X(forward_error, COUNTER, "# times we encountered a forwarding error")                         \
    X(fragments, COUNTER, "# fragments created from a multi-vector request")

#define STATS_SERVER_FIELDS(X)                                                                     \
    X(server_eof, COUNTER, "# eof on server connections")                                          \
    X(server_err, COUNTER, "# errors on server connections")                                       \
    X(server_timedout, COUNTER, "# timeouts on server connections")                                \
    X(server_connections, GAUGE, "# active server connections")                                    \
    X(server_ejected_at, TIMESTAMP, "timestamp when server was ejected in usec since epoch")       \
    X(requests, COUNTER, "# requests")                                                             \
    X(request_bytes, COUNTER, "total request bytes")                                               \
    X(responses, COUNTER, "# responses")                                                           \
    X(response_bytes, COUNTER, "total response bytes")                                             \
    X(in_queue, GAUGE, "# requests in incoming queue")                                             \
    X(in_queue_bytes, GAUGE, "current request bytes in incoming queue")                            \
    X(out_queue, GAUGE, "# requests in outgoing queue")                                            \
    X(out_queue_bytes, GAUGE, "current request bytes in outgoing queue")

/* Ours, rendered after twemproxy's keys (so -D and the JSON keep twemproxy's
 * list first) and in /metrics. */
#define STATS_POOL_EXTRA_FIELDS(X)                                                                 \
    X(cross_server_refused, COUNTER,                                                               \
      "# requests refused (CROSSSLOT) because their keys are on several servers")                  \
    X(auth_failed, COUNTER, "# logins refused (AUTH or HELLO AUTH with a wrong user or password)")

/* Ours, for each group of a sentinel pool and each server of a pool that holds
 * through restarts (failover_hold_on_crash) only (other pools keep twemproxy's
 * exact keys), rendered after twemproxy's server keys, server_failover first. */
#define STATS_GROUP_FIELDS(X)                                                                      \
    X(server_failover, COUNTER, "# master switches of a sentinel group")                           \
    X(failover_held, COUNTER,                                                                      \
      "# requests held while their master changed or their server restarted")                      \
    X(failover_hold_us, MAX, "longest time a request was held for a failover, in usec")            \
    X(failover_released, COUNTER, "# held requests sent on to a master")                           \
    X(failover_expired, COUNTER, "# held requests answered with an error instead")

/* Ours, for each redis_cluster pool only, rendered after the pool's other keys. */
#define STATS_CLUSTER_FIELDS(X)                                                                    \
    X(moved, COUNTER, "# MOVED replies followed (the slot map was updated)")                       \
    X(ask, COUNTER, "# ASK replies followed (ASKING and the command sent to the target)")          \
    X(tryagain, COUNTER, "# TRYAGAIN replies (a multi-key command during a slot move): retried")   \
    X(cluster_down, COUNTER, "# CLUSTERDOWN replies: the request held and retried")                \
    X(cluster_refresh, COUNTER, "# slot maps learned from a node (CLUSTER SHARDS or SLOTS)")       \
    X(cluster_refresh_failed, COUNTER, "# slot map queries that failed")                           \
    X(cluster_held, COUNTER, "# requests held in the proxy for the cluster (redirect waits)")      \
    X(cluster_hold_us, MAX, "longest time a request waited for the cluster until answered, usec")  \
    X(cluster_released, COUNTER, "# held requests sent on to a node")                              \
    X(cluster_expired, COUNTER, "# held requests answered with an error after failover_hold")      \
    X(cluster_nodes, GAUGE, "# nodes of the cluster in the slot map")

enum stats_kind { STATS_COUNTER, STATS_GAUGE, STATS_TIMESTAMP, STATS_MAX };

#define STATS_ENUM_POOL(name, kind, desc)   SP_##name,
#define STATS_ENUM_SERVER(name, kind, desc) SS_##name,
enum stats_pool_field { STATS_POOL_FIELDS(STATS_ENUM_POOL) SP_COUNT };
enum stats_server_field { STATS_SERVER_FIELDS(STATS_ENUM_SERVER) SS_COUNT };
#define STATS_ENUM_POOLX(name, kind, desc) SPX_##name,
enum stats_pool_extra_field { STATS_POOL_EXTRA_FIELDS(STATS_ENUM_POOLX) SPX_COUNT };
#undef STATS_ENUM_POOLX
#define STATS_ENUM_GROUP(name, kind, desc) SG_##name,
enum stats_group_field { STATS_GROUP_FIELDS(STATS_ENUM_GROUP) SG_COUNT };
#undef STATS_ENUM_GROUP
#define STATS_ENUM_CLUSTER(name, kind, desc) SC_##name,
enum stats_cluster_field { STATS_CLUSTER_FIELDS(STATS_ENUM_CLUSTER) SC_COUNT };
#undef STATS_ENUM_CLUSTER
#undef STATS_ENUM_POOL
#undef STATS_ENUM_SERVER

#endif
