/*
 * reply: a document written to a socket of the stats or metrics port without
 * blocking the loop. A scraper that reads slowly, or not at all, holds its
 * own reply only: the proxy's clients are served meanwhile (a blocking write
 * with a send timeout froze every pool for seconds per such scraper).
 */
#ifndef NC_STATS_REPLY_H
#define NC_STATS_REPLY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "event/ev.h"

/* At most this many replies wait for their readers per port: a further one is
 * not answered (its connection closed), so scrapers cannot pile up memory. */
#define REPLY_MAX_PENDING 64

/* A rendered document is reused while it is young: rendering the pools of
 * thousands of servers takes 100 ms and more, and readers that came together
 * each held the loop (the proxy's clients) for their own. It stays young for
 * ten times what it took to render, so rendering takes at most about a tenth
 * of the loop however many read; one rendered in under REPLY_RENDER_CHEAP_US
 * is rendered for every reader (exact counters, as twemproxy's). */
#define REPLY_RENDER_CHEAP_US 200
#define REPLY_RENDER_YOUTH    10

/* CLOCK_MONOTONIC in microseconds, to time renders. */
uint64_t reply_clock_us(void);
/* Whether a document rendered at at_us in took_us may still be served at now_us. */
bool reply_render_young(uint64_t now_us, uint64_t at_us, uint64_t took_us);

/* A document several replies write at once (a rendered /metrics every scraper
 * of the moment gets): counted references, read-only while shared. */
struct reply_doc {
    unsigned refs;
    struct buf buf;
};

/* A new document with one reference (NULL: out of memory). */
struct reply_doc *reply_doc_new(void);
/* Drop a reference; the last frees it. NULL: nothing. */
void reply_doc_put(struct reply_doc *d);

struct reply;
struct reply_port {
    unsigned pending;    /* replies not yet written */
    struct reply *first; /* they, to end with the port */
};

/* Send doc (taken: doc is left empty) on fd (taken: non-blocking from now on),
 * then close it; a reply not written within timeout_ms is dropped, its
 * connection closed. */
void reply_send(struct ev_loop *loop, struct reply_port *port, int fd, struct buf *doc,
                uint64_t timeout_ms);
/* The same, with body written after doc: body's reference is taken (dropped
 * when the reply ends), its bytes are not copied. */
void reply_send_doc(struct ev_loop *loop, struct reply_port *port, int fd, struct buf *doc,
                    struct reply_doc *body, uint64_t timeout_ms);

/* Whether a reply would be taken now (fewer than REPLY_MAX_PENDING wait): a
 * caller checks before it renders one. */
static inline bool reply_port_open(const struct reply_port *port)
{
    return port->pending < REPLY_MAX_PENDING;
}

/* The port closes: every reply still waiting is dropped, its connection closed. */
void reply_port_close(struct ev_loop *loop, struct reply_port *port);

#endif
