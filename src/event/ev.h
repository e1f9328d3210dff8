/*
 * ev: a small event loop (redis ae style): file events embedded in the objects
 * that own the fd, timers in a binary heap, and a before-sleep hook where the
 * proxy flushes every connection it wrote to during the iteration, so that
 * requests from many clients leave in one write per server connection. The
 * readiness mechanism is a backend (ev_backend.h): epoll, or io_uring.
 */
#ifndef NC_EV_H
#define NC_EV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EV_READ  1u
#define EV_WRITE 2u

struct ev_loop;
struct ev_io;
struct ev_timer;

typedef void (*ev_io_fn)(struct ev_loop *loop, struct ev_io *io, unsigned events);
typedef void (*ev_timer_fn)(struct ev_loop *loop, struct ev_timer *t);
typedef void (*ev_hook_fn)(struct ev_loop *loop, void *data);

struct ev_io {
    int fd;
    unsigned mask; /* EV_READ | EV_WRITE currently registered */
    bool registered;
    ev_io_fn fn;
    void *data;
};

struct ev_timer {
    uint64_t when_ms; /* monotonic deadline */
    size_t heap_idx;  /* 0: not armed; else 1-based position in the heap */
    ev_timer_fn fn;
    void *data;
};

/* A loop on epoll. */
struct ev_loop *ev_loop_create(void);
/* A loop on the backend named "epoll" or "io_uring"; where io_uring cannot be
 * set up (old kernel, disabled, no memory for the ring) the loop runs on epoll:
 * compare ev_loop_backend() with the name to tell. NULL with errno EINVAL for
 * another name. */
struct ev_loop *ev_loop_create_backend(const char *name);
void ev_loop_destroy(struct ev_loop *loop);
/* Run until ev_loop_stop(); returns 0, or -1 if the backend failed. */
int ev_loop_run(struct ev_loop *loop);
/* One turn: the before-sleep hook, a wait of at most limit_ms (-1: until an
 * event or the next timer), the events, the timers due. Returns the number of
 * events, or -1 if the backend failed (tests drive a loop with it). */
int ev_loop_poll(struct ev_loop *loop, int limit_ms);
/* The backend's name ("epoll" or "io_uring"), for the start-up banner. */
const char *ev_loop_backend(const struct ev_loop *loop);
void ev_loop_stop(struct ev_loop *loop);
void ev_loop_set_before_sleep(struct ev_loop *loop, ev_hook_fn fn, void *data);
/* Milliseconds of CLOCK_MONOTONIC, cached once per iteration. */
uint64_t ev_now(const struct ev_loop *loop);
/* Microseconds of the same clock and instant (latency figures). */
uint64_t ev_now_us(const struct ev_loop *loop);
uint64_t ev_now_update(struct ev_loop *loop);

void ev_io_init(struct ev_io *io, int fd, ev_io_fn fn, void *data);
/* Set the events watched (0 removes the fd from epoll). */
int ev_io_set(struct ev_loop *loop, struct ev_io *io, unsigned mask);
void ev_io_stop(struct ev_loop *loop, struct ev_io *io);

void ev_timer_init(struct ev_timer *t, ev_timer_fn fn, void *data);
void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t after_ms);
void ev_timer_start_at(struct ev_loop *loop, struct ev_timer *t, uint64_t when_ms);
void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t);
static inline bool ev_timer_armed(const struct ev_timer *t)
{
    return t->heap_idx != 0;
}

#endif
