/*
 * stats: twemproxy's stats port. Every interval (-i) the counters of all pools
 * and servers are rendered into one JSON document; each connection to the port
 * gets the latest document and is closed.
 */
#ifndef NC_STATS_H
#define NC_STATS_H

#include <stdio.h>
#include <time.h>

#include "core/buf.h"

struct instance;
struct stats_snap;

struct stats *stats_create(struct instance *in);
void stats_destroy(struct stats *st);
/* Render s (twemproxy's exact layout, pools and servers in s's order) into out;
 * uptime counts from start_time. */
void stats_render_json(const struct stats_snap *s, time_t start_time, struct buf *out);
/* The -D output. */
void stats_describe(FILE *out);

#endif
