/*
 * metrics: the same counters as the stats port, plus latency summaries, in the
 * Prometheus text format over HTTP (GET /metrics) on --metrics-port.
 */
#ifndef NC_METRICS_H
#define NC_METRICS_H

#include "core/buf.h"
#include "event/ev.h"
#include "stats/snap.h"

struct metrics;

/* Returns NULL and logs when the port cannot be bound. */
struct metrics *metrics_create(struct ev_loop *loop, const char *addr, int port,
                               const struct stats_source *src);
/* The same on fd, a socket already listening there (handed over by a binary
 * upgrade); fd -1: bind. */
struct metrics *metrics_create_on(struct ev_loop *loop, const char *addr, int port,
                                  const struct stats_source *src, int fd);
/* The listening socket (to hand over to a new binary). */
int metrics_fd(const struct metrics *m);
void metrics_destroy(struct metrics *m);
void metrics_render(const struct stats_source *src, struct buf *out);

#endif
