/*
 * stats: twemproxy's stats port. Every interval (-i) the counters of all pools
 * and servers are rendered into one JSON document; each connection to the port
 * gets the latest document and is closed.
 */
#ifndef NC_STATS_H
#define NC_STATS_H

#include <stdio.h>
#include <time.h>

#include "conf/options.h"
#include "core/buf.h"
#include "event/ev.h"
#include "stats/snap.h"

/* Listen on the stats address and port of o (-a, -s) and render a document from
 * src every -i ms; NULL (logged) when the port cannot be bound. */
struct stats *stats_create(struct ev_loop *loop, const struct options *o,
                           const struct stats_source *src);
/* The same on fd, a socket already listening there (a binary upgrade handed it
 * over); fd -1: bind as stats_create does. */
struct stats *stats_create_on(struct ev_loop *loop, const struct options *o,
                              const struct stats_source *src, int fd);
/* Render the document now (a replaced binary's counters came): a reader in
 * the youth of the last render (reply.h) gets them too. */
void stats_refresh_now(struct stats *st);
/* The listening socket (to hand over to a new binary). */
int stats_fd(const struct stats *st);
void stats_destroy(struct stats *st);
/* Render s (twemproxy's exact layout, pools and servers in s's order) into out;
 * uptime counts from start_time. */
void stats_render_json(const struct stats_snap *s, time_t start_time, struct buf *out);
/* The -D output. */
void stats_describe(FILE *out);

#endif
