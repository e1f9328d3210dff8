#include "event/ev.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define EV_BATCH 1024

struct ev_loop {
    int epfd;
    bool stop;
    uint64_t now_ms;
    uint64_t now_us;
    struct ev_timer **heap; /* heap[1..nheap] */
    size_t nheap;
    size_t heap_cap;
    ev_hook_fn before_sleep;
    void *before_sleep_data;
    struct epoll_event events[EV_BATCH];
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

struct ev_loop *ev_loop_create(void)
{
    struct ev_loop *loop = calloc(1, sizeof(*loop));
    if (loop == NULL) {
        return NULL;
    }
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        free(loop);
        return NULL;
    }
    ev_now_update(loop);
    return loop;
}

void ev_loop_destroy(struct ev_loop *loop)
{
    if (loop == NULL) {
        return;
    }
    close(loop->epfd);
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
    struct epoll_event ev = {0};
    ev.events = ((mask & EV_READ) ? EPOLLIN : 0u) | ((mask & EV_WRITE) ? EPOLLOUT : 0u);
    ev.data.ptr = io;
    int op = io->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(loop->epfd, op, io->fd, &ev) < 0) {
        return -1;
    }
    io->registered = true;
    io->mask = mask;
    return 0;
}

void ev_io_stop(struct ev_loop *loop, struct ev_io *io)
{
    if (io->registered) {
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    }
    io->registered = false;
    io->mask = 0;
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

static int ev_wait_ms(const struct ev_loop *loop)
{
    if (loop->nheap == 0) {
        return -1;
    }
    uint64_t when = loop->heap[1]->when_ms;
    return when <= loop->now_ms ? 0 : (int)(when - loop->now_ms);
}

int ev_loop_run(struct ev_loop *loop)
{
    loop->stop = false;
    while (!loop->stop) {
        if (loop->before_sleep) {
            loop->before_sleep(loop, loop->before_sleep_data);
            if (loop->stop) {
                break; /* the hook decided we are done: do not sleep first */
            }
        }
        int n = epoll_wait(loop->epfd, loop->events, EV_BATCH, ev_wait_ms(loop));
        if (n < 0 && errno != EINTR) {
            return -1;
        }
        ev_now_update(loop);
        for (int i = 0; i < n; i++) {
            struct ev_io *io = loop->events[i].data.ptr;
            if (io->fd < 0) {
                continue; /* closed by an earlier callback of this batch; freed after it */
            }
            uint32_t e = loop->events[i].events;
            unsigned got = 0;
            if (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
                got |= EV_READ;
            }
            if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
                got |= EV_WRITE;
            }
            io->fn(loop, io, got);
        }
        ev_timers_run(loop);
    }
    return 0;
}
