/*
 * ev_epoll: the epoll backend. Level-triggered: a connection that could not
 * read or write everything is reported again, so nothing waits for an edge.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "event/ev_backend.h"

#define EPOLL_BATCH 1024

struct epoll_state {
    int epfd;
    struct epoll_event events[EPOLL_BATCH];
};

static void *epoll_create_state(void)
{
    struct epoll_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return NULL;
    }
    st->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (st->epfd < 0) {
        free(st);
        return NULL;
    }
    return st;
}

static void epoll_destroy_state(void *state)
{
    struct epoll_state *st = state;
    close(st->epfd);
    free(st);
}

static int epoll_set(void *state, struct ev_io *io, unsigned mask)
{
    struct epoll_state *st = state;
    if (mask == 0) {
        return io->registered ? epoll_ctl(st->epfd, EPOLL_CTL_DEL, io->fd, NULL) : 0;
    }
    struct epoll_event ev = {0};
    ev.events = ((mask & EV_READ) ? EPOLLIN : 0u) | ((mask & EV_WRITE) ? EPOLLOUT : 0u);
    ev.data.ptr = io;
    return epoll_ctl(st->epfd, io->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, io->fd, &ev);
}

static int epoll_wait_events(void *state, struct ev_fired *out, int max, int timeout_ms)
{
    struct epoll_state *st = state;
    int n = epoll_wait(st->epfd, st->events, max < EPOLL_BATCH ? max : EPOLL_BATCH, timeout_ms);
    if (n < 0) {
        return errno == EINTR ? 0 : -1;
    }
    for (int i = 0; i < n; i++) {
        uint32_t e = st->events[i].events;
        out[i].io = st->events[i].data.ptr;
        out[i].events = ((e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) ? EV_READ : 0u) |
                        ((e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) ? EV_WRITE : 0u);
    }
    return n;
}

const struct ev_backend ev_backend_epoll = {
    "epoll", epoll_create_state, epoll_destroy_state, epoll_set, epoll_wait_events, NULL,
};
