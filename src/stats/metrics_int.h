/*
 * metrics_int: what the files of /metrics share (metrics.c renders the
 * counters and serves HTTP, metrics_state.c renders the states).
 */
#ifndef NC_METRICS_INT_H
#define NC_METRICS_INT_H

#include "core/buf.h"
#include "stats/snap.h"

/* Append s as the inside of a label value ("\\", "\"" and newline escaped). */
void metrics_label_value(struct buf *out, const char *s);
/* Append a server's labels, unclosed: {pool="..",server=".." */
void metrics_server_labels(struct buf *out, const struct stats_pool_snap *p,
                           const struct stats_server_snap *s);
/* The families of what the status page shows beside the counters: each
 * server's address, role and state, its failures in a row, the state of a
 * sentinel group's replicas, the workers. */
void metrics_render_state(const struct stats_snap *s, struct buf *out);

#endif
