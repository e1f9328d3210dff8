/*
 * stats: twemproxy's stats port. Every interval (-i) the counters of all pools
 * and servers are rendered into one JSON document; each connection to the port
 * gets the latest document and is closed.
 */
#ifndef NC_STATS_H
#define NC_STATS_H

#include <stdio.h>

#include "core/buf.h"

struct instance;

struct stats *stats_create(struct instance *in);
void stats_destroy(struct stats *st);
/* Render the current counters (twemproxy's exact layout) into out. */
void stats_render_json(struct instance *in, struct buf *out);
/* The -D output. */
void stats_describe(FILE *out);

#endif
