/*
 * ev_backend: what an I/O notification mechanism gives the loop (ev.c): epoll
 * (ev_epoll.c) or io_uring (ev_uring.c), one table each with the same
 * level-triggered contract. Private to src/event.
 */
#ifndef NC_EV_BACKEND_H
#define NC_EV_BACKEND_H

#include "event/ev.h"

/* One readiness the backend reported. */
struct ev_fired {
    struct ev_io *io;
    unsigned events; /* EV_READ | EV_WRITE; errors and hang-ups count as both */
};

struct ev_backend {
    const char *name;
    void *(*create)(void);
    void (*destroy)(void *state);
    /* io's watched events go from io->mask to mask (0: stop watching). */
    int (*set)(void *state, struct ev_io *io, unsigned mask);
    /* Wait up to timeout_ms (-1: no limit) and fill out[0..max); returns how
     * many, 0 on a timeout or an interrupted wait, -1 on failure. */
    int (*wait)(void *state, struct ev_fired *out, int max, int timeout_ms);
    /* Completion I/O for a connected socket (ev.h, ev_cio_open); NULL: the
     * backend has none. */
    struct ev_cio *(*cio_open)(void *state, int fd);
};

extern const struct ev_backend ev_backend_epoll;
extern const struct ev_backend ev_backend_uring;

#endif
