/*
 * status: the live status page on the metrics port (GET / and GET
 * /status.json). The page is one self-contained HTML file (status.html,
 * embedded at build time: no external asset, nothing to download) that asks
 * for /status.json every second and keeps the history for its charts in the
 * browser; the JSON is what a snapshot says (stats/snap.h), counters as they
 * are, so rates and interval quantiles are differences the page computes.
 */
#ifndef NC_STATUS_H
#define NC_STATUS_H

#include <time.h>

#include "core/buf.h"
#include "stats/snap.h"

/* The page (status.html), NUL-terminated. */
extern const char status_html[];

/* Render s as the status JSON; uptime counts from start_time. */
void status_render_json(const struct stats_snap *s, time_t start_time, struct buf *out);

#endif
