#include "event/ev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event/ev_backend.h"

#define EV_BATCH 1024

struct ev_loop {
    const struct ev_backend *backend;
    void *state;
    bool stop;
    uint64_t now_ms;
    uint64_t now_us;
    struct ev_timer **heap; /* heap[1..nheap] */
    size_t nheap;
    size_t heap_cap;
    ev_hook_fn before_sleep;
    void *before_sleep_data;
    struct ev_fired fired[EV_BATCH];
    int nfired;   /* events of the batch being dispatched (0 between batches) */
    int fired_at; /* the one whose callback runs */
};

uint64_t ev_now_update(struct ev_loop *loop)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    loop->now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    loop->now_ms = loop->now_us / 1000u;
    return loop->now_ms;
}

uint64_t ev_now(const struct ev_loop *loop)
{
    return loop->now_ms;
}

uint64_t ev_now_us(const struct ev_loop *loop)
{
    return loop->now_us;
}

struct ev_loop *ev_loop_create_backend(const char *name)
{
    const struct ev_backend *be = &ev_backend_epoll;
    if (strcmp(name, ev_backend_uring.name) == 0) {
        be = &ev_backend_uring;
    } else if (strcmp(name, ev_backend_epoll.name) != 0) {
        errno = EINVAL;
        return NULL;
    }
    struct ev_loop *loop = calloc(1, sizeof(*loop));
    if (loop == NULL) {
        return NULL;
    }
    loop->backend = be;
    loop->state = be->create();
    if (loop->state == NULL && be != &ev_backend_epoll) {
        loop->backend = &ev_backend_epoll; /* io_uring unavailable here */
        loop->state = loop->backend->create();
    }
    if (loop->state == NULL) {
        free(loop);
        return NULL;
    }
    ev_now_update(loop);
    return loop;
}

struct ev_loop *ev_loop_create(void)
{
    return ev_loop_create_backend(ev_backend_epoll.name);
}

struct ev_cio *ev_cio_open(struct ev_loop *loop, int fd)
{
    return loop->backend->cio_open != NULL ? loop->backend->cio_open(loop->state, fd) : NULL;
}

bool ev_loop_has_cio(const struct ev_loop *loop)
{
    return loop->backend->cio_open != NULL;
}

const char *ev_loop_backend(const struct ev_loop *loop)
{
    return loop->backend->name;
}

void ev_loop_destroy(struct ev_loop *loop)
{
    if (loop == NULL) {
        return;
    }
    loop->backend->destroy(loop->state);
    free(loop->heap);
    free(loop);
}

void ev_loop_stop(struct ev_loop *loop)
{
    loop->stop = true;
}

void ev_loop_set_before_sleep(struct ev_loop *loop, ev_hook_fn fn, void *data)
{
    loop->before_sleep = fn;
    loop->before_sleep_data = data;
}

void ev_io_init(struct ev_io *io, int fd, ev_io_fn fn, void *data)
{
    io->fd = fd;
    io->mask = 0;
    io->registered = false;
    io->fn = fn;
    io->data = data;
}

int ev_io_set(struct ev_loop *loop, struct ev_io *io, unsigned mask)
{
    if (mask == io->mask && (mask == 0 || io->registered)) {
        return 0;
    }
    if (mask == 0) {
        ev_io_stop(loop, io);
        return 0;
    }
    if (loop->backend->set(loop->state, io, mask) < 0) {
        return -1;
    }
    io->registered = true;
    io->mask = mask;
    return 0;
}

void ev_io_stop(struct ev_loop *loop, struct ev_io *io)
{
    if (io->registered) {
        loop->backend->set(loop->state, io, 0);
    }
    io->registered = false;
    io->mask = 0;
    /* an event of this batch not dispatched yet must not reach it: its owner
     * may free it as soon as this returns */
    for (int i = loop->fired_at + 1; i < loop->nfired; i++) {
        if (loop->fired[i].io == io) {
            loop->fired[i].io = NULL;
        }
    }
}

/* ---- timers: a binary min-heap on when_ms ---- */

static void heap_set(struct ev_loop *loop, size_t i, struct ev_timer *t)
{
    loop->heap[i] = t;
    t->heap_idx = i;
}

static void heap_up(struct ev_loop *loop, size_t i)
{
    struct ev_timer *t = loop->heap[i];
    while (i > 1 && loop->heap[i / 2]->when_ms > t->when_ms) {
        heap_set(loop, i, loop->heap[i / 2]);
        i /= 2;
    }
    heap_set(loop, i, t);
}

static void heap_down(struct ev_loop *loop, size_t i)
{
    struct ev_timer *t = loop->heap[i];
    for (;;) {
        size_t c = i * 2;
        if (c > loop->nheap) {
            break;
        }
        if (c + 1 <= loop->nheap && loop->heap[c + 1]->when_ms < loop->heap[c]->when_ms) {
            c++;
        }
        if (loop->heap[c]->when_ms >= t->when_ms) {
            break;
        }
        heap_set(loop, i, loop->heap[c]);
        i = c;
    }
    heap_set(loop, i, t);
}

void ev_timer_init(struct ev_timer *t, ev_timer_fn fn, void *data)
{
    t->when_ms = 0;
    t->heap_idx = 0;
    t->fn = fn;
    t->data = data;
}

void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t)
{
    size_t i = t->heap_idx;
    if (i == 0) {
        return;
    }
    struct ev_timer *last = loop->heap[loop->nheap--];
    t->heap_idx = 0;
    if (last == t) {
        return;
    }
    heap_set(loop, i, last);
    heap_up(loop, i);
    heap_down(loop, last->heap_idx);
}

void ev_timer_start_at(struct ev_loop *loop, struct ev_timer *t, uint64_t when_ms)
{
    ev_timer_stop(loop, t);
    if (loop->nheap + 1 >= loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        struct ev_timer **h = realloc(loop->heap, cap * sizeof(*h));
        if (h == NULL) {
            abort(); /* a timer that silently never fires would hang requests */
        }
        loop->heap = h;
        loop->heap_cap = cap;
    }
    t->when_ms = when_ms;
    loop->nheap++;
    heap_set(loop, loop->nheap, t);
    heap_up(loop, loop->nheap);
}

void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t after_ms)
{
    ev_timer_start_at(loop, t, loop->now_ms + after_ms);
}

static void ev_timers_run(struct ev_loop *loop)
{
    while (loop->nheap > 0 && loop->heap[1]->when_ms <= loop->now_ms) {
        struct ev_timer *t = loop->heap[1];
        ev_timer_stop(loop, t);
        t->fn(loop, t);
    }
}

static int ev_wait_ms(const struct ev_loop *loop, int limit_ms)
{
    int ms = -1;
    if (loop->nheap > 0) {
        uint64_t when = loop->heap[1]->when_ms;
        ms = when <= loop->now_ms ? 0 : (int)(when - loop->now_ms);
    }
    if (limit_ms >= 0 && (ms < 0 || ms > limit_ms)) {
        ms = limit_ms;
    }
    return ms;
}

int ev_loop_poll(struct ev_loop *loop, int limit_ms)
{
    if (loop->before_sleep) {
        loop->before_sleep(loop, loop->before_sleep_data);
        if (loop->stop) {
            return 0; /* the hook decided we are done: do not sleep first */
        }
    }
    int n = loop->backend->wait(loop->state, loop->fired, EV_BATCH, ev_wait_ms(loop, limit_ms));
    if (n < 0) {
        return -1;
    }
    ev_now_update(loop);
    loop->nfired = n;
    for (loop->fired_at = 0; loop->fired_at < n; loop->fired_at++) {
        struct ev_io *io = loop->fired[loop->fired_at].io;
        if (io == NULL || io->fd < 0) {
            continue; /* stopped (maybe freed), or closed, by an earlier callback */
        }
        io->fn(loop, io, loop->fired[loop->fired_at].events);
    }
    loop->nfired = 0;
    loop->fired_at = 0;
    ev_timers_run(loop);
    return n;
}

int ev_loop_run(struct ev_loop *loop)
{
    loop->stop = false;
    while (!loop->stop) {
        if (ev_loop_poll(loop, -1) < 0) {
            return -1;
        }
    }
    return 0;
}
