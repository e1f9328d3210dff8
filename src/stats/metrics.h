/*
 * metrics: the same counters as the stats port, plus latency summaries, in the
 * Prometheus text format over HTTP (GET /metrics) on --metrics-port.
 */
#ifndef NC_METRICS_H
#define NC_METRICS_H

#include "core/buf.h"

struct instance;
struct metrics;

/* Returns NULL and logs when the port cannot be bound. */
struct metrics *metrics_create(struct instance *in, const char *addr, int port);
void metrics_destroy(struct metrics *m);
void metrics_render(struct instance *in, struct buf *out);

#endif
