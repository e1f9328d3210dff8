#include "stats/metrics_int.h"

#include <stdbool.h>

/* A sample's name and server labels, unclosed: metric{pool="..",server=".." */
static void state_labels(struct buf *out, const char *metric, const struct stats_pool_snap *p,
                         const struct stats_server_snap *s)
{
    buf_append_str(out, metric);
    metrics_server_labels(out, p, s);
}

/* One sample per state, 1 for the one it is in: an alert on
 * nutcracker_server_state{state="ejected"} == 1 needs no knowledge of codes. */
static void state_one_hot(struct buf *out, const char *metric, const struct stats_pool_snap *p,
                          const struct stats_server_snap *s, const char *replica, unsigned state)
{
    for (unsigned k = 0; k < STATS_STATE_COUNT; k++) {
        state_labels(out, metric, p, s);
        if (replica != NULL) {
            buf_append_str(out, ",replica=\"");
            metrics_label_value(out, replica);
            buf_append_str(out, "\"");
        }
        buf_printf(out, ",state=\"%s\"} %d\n", stats_state_name(k), k == state);
    }
}

static void render_server_info(const struct stats_snap *s, struct buf *out)
{
    buf_append_str(out, "# HELP nutcracker_server_info where a server is now (a sentinel group: "
                        "its master, \"\" while unknown) and its role\n"
                        "# TYPE nutcracker_server_info gauge\n");
    for (uint32_t p = 0; p < s->npools; p++) {
        const struct stats_pool_snap *pool = &s->pools[p];
        for (uint32_t j = 0; j < pool->nservers; j++) {
            state_labels(out, "nutcracker_server_info", pool, &pool->servers[j]);
            buf_append_str(out, ",addr=\"");
            metrics_label_value(out, pool->servers[j].addr != NULL ? pool->servers[j].addr : "");
            buf_printf(out, "\",role=\"%s\"} 1\n", stats_role_name(pool->servers[j].role));
        }
    }
}

static void render_server_state(const struct stats_snap *s, struct buf *out)
{
    buf_append_str(out, "# HELP nutcracker_server_state 1 for the state a server is in (live, "
                        "failing, ejected, no_reads: a replica left out of the reads), 0 for the "
                        "others; the worst over the workers\n"
                        "# TYPE nutcracker_server_state gauge\n");
    for (uint32_t p = 0; p < s->npools; p++) {
        const struct stats_pool_snap *pool = &s->pools[p];
        for (uint32_t j = 0; j < pool->nservers; j++) {
            state_one_hot(out, "nutcracker_server_state", pool, &pool->servers[j], NULL,
                          pool->servers[j].state);
        }
    }
    buf_append_str(out, "# HELP nutcracker_server_consecutive_failures connection failures in "
                        "a row (server_failure_limit of them eject a server)\n"
                        "# TYPE nutcracker_server_consecutive_failures gauge\n");
    for (uint32_t p = 0; p < s->npools; p++) {
        const struct stats_pool_snap *pool = &s->pools[p];
        for (uint32_t j = 0; j < pool->nservers; j++) {
            state_labels(out, "nutcracker_server_consecutive_failures", pool, &pool->servers[j]);
            buf_printf(out, "} %u\n", pool->servers[j].failures);
        }
    }
}

/* Sentinel groups read from replicas only: no family at all without one. */
static void render_replica_state(const struct stats_snap *s, struct buf *out)
{
    bool head = false;
    for (uint32_t p = 0; p < s->npools; p++) {
        const struct stats_pool_snap *pool = &s->pools[p];
        for (uint32_t j = 0; j < pool->nservers; j++) {
            const struct stats_server_snap *sv = &pool->servers[j];
            for (uint32_t k = 0; k < sv->nreplicas; k++) {
                if (!head) {
                    buf_append_str(out, "# HELP nutcracker_replica_state 1 for the state a "
                                        "sentinel group's replica is in, 0 for the others\n"
                                        "# TYPE nutcracker_replica_state gauge\n");
                    head = true;
                }
                state_one_hot(out, "nutcracker_replica_state", pool, sv, sv->replicas[k].addr,
                              sv->replicas[k].state);
            }
        }
    }
}

/* The master/worker mode only (the master fills the workers in). */
static void render_workers(const struct stats_snap *s, struct buf *out)
{
    if (s->nworkers == 0) {
        return;
    }
    buf_append_str(out, "# HELP nutcracker_worker_up 1 while the worker process runs, 0 while "
                        "the master waits to start it again\n"
                        "# TYPE nutcracker_worker_up gauge\n");
    for (uint32_t i = 0; i < s->nworkers; i++) {
        buf_printf(out, "nutcracker_worker_up{worker=\"%d\"} %d\n", s->workers[i].id,
                   s->workers[i].pid != 0);
    }
    buf_append_str(out, "# HELP nutcracker_worker_restarts_total times the master started the "
                        "worker again after it died\n"
                        "# TYPE nutcracker_worker_restarts_total counter\n");
    for (uint32_t i = 0; i < s->nworkers; i++) {
        buf_printf(out, "nutcracker_worker_restarts_total{worker=\"%d\"} %u\n", s->workers[i].id,
                   s->workers[i].restarts);
    }
}

void metrics_render_state(const struct stats_snap *s, struct buf *out)
{
    render_server_info(s, out);
    render_server_state(s, out);
    render_replica_state(s, out);
    render_workers(s, out);
}
