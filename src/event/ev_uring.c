/*
 * ev_uring: a readiness backend on io_uring. Each watched fd has one poll in
 * flight; every arm and cancel of a loop turn goes to the kernel with the wait
 * itself, in one io_uring_enter (epoll needs one epoll_ctl per change).
 *
 * The polls are one-shot and armed again after they fire, not multishot: a
 * multishot poll reports wake-ups (edges), so a connection that left bytes
 * unread would never hear of them again, while a fresh poll reports what is
 * already there at once. That keeps epoll's level-triggered contract, which
 * the proxy relies on (it reads and writes in bounded slices).
 *
 * A completion names its fd and a generation: cancelling a poll bumps the
 * generation, so a completion of a poll that was cancelled, or of an fd closed
 * and opened again, is dropped instead of reaching an ev_io that is gone.
 *
 * A connected socket can also skip readiness altogether (ev_cio_open): its
 * receives and sends are ring operations (ev_uring_cio.c), prepared during the
 * turn and submitted here with the wait; this file hands their completions over
 * and adds the connections they made ready to what the wait reports.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "event/ev_uring_int.h"

#define URING_ENTRIES 1024u

static int uring_ring_init(struct io_uring *ring)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    /* One thread submits and reaps; completions' work runs when we wait. */
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    p.cq_entries = URING_ENTRIES * 4;
    if (io_uring_queue_init_params(URING_ENTRIES, ring, &p) == 0) {
        return 0;
    }
    memset(&p, 0, sizeof(p)); /* an older kernel: plain flags */
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = URING_ENTRIES * 4;
    int rc = io_uring_queue_init_params(URING_ENTRIES, ring, &p);
    if (rc < 0) {
        errno = -rc;
        return -1;
    }
    return 0;
}

static void *uring_create(void)
{
    struct uring_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return NULL;
    }
    if (uring_ring_init(&st->ring) != 0) {
        int e = errno;
        free(st);
        errno = e;
        return NULL;
    }
    return st;
}

int uring_reap(struct uring_state *st, uint64_t ms, uring_reap_fn *fn, void *arg)
{
    struct __kernel_timespec ts = {(long long)(ms / 1000), (long long)(ms % 1000) * 1000000};
    struct io_uring_cqe *cqe = NULL;
    int rc = io_uring_submit_and_wait_timeout(&st->ring, &cqe, 1, &ts, NULL);
    if (rc < 0 && rc != -ETIME && rc != -EINTR) {
        return -1;
    }
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&st->ring, head, cqe)
    {
        seen++;
        fn(st, cqe, arg);
    }
    io_uring_cq_advance(&st->ring, seen);
    return 0;
}

static void uring_drain_seen(struct uring_state *st, const struct io_uring_cqe *cqe, void *arg)
{
    (void)st;
    bool *done = arg;
    *done = *done || cqe->user_data == URING_DRAIN;
}

/* Every request in flight holds its file, and a ring closed with requests in
 * flight is torn down by a kernel worker some time after the process is gone:
 * a listener whose poll was still armed took connections after a stop (45 of
 * 50 connects right after the exit) and kept a restart from binding. So the
 * loop's end cancels everything and reaps that cancel before the ring closes;
 * the last reference to each file then goes back in this process. */
static void uring_drain(struct uring_state *st)
{
    struct io_uring_sqe *sqe = uring_sqe(st);
    if (sqe == NULL) {
        return;
    }
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, URING_DRAIN);
    bool done = false;
    for (int turn = 0; turn < 10 && !done; turn++) {
        if (uring_reap(st, 100, uring_drain_seen, &done) != 0) {
            return;
        }
    }
    /* the cancelled requests complete in task work; run it */
    (void)io_uring_get_events(&st->ring);
}

static void uring_destroy(void *state)
{
    struct uring_state *st = state;
    uring_cio_finish(st);
    uring_drain(st);
    io_uring_queue_exit(&st->ring);
    uring_cio_destroy(st);
    free(st->slots);
    free(st->pending);
    free(st);
}

struct uring_slot *uring_slot(struct uring_state *st, int fd)
{
    if ((size_t)fd >= st->nslots) {
        size_t n = st->nslots ? st->nslots : 256;
        while (n <= (size_t)fd) {
            n *= 2;
        }
        struct uring_slot *s = realloc(st->slots, n * sizeof(*s));
        if (s == NULL) {
            return NULL;
        }
        memset(s + st->nslots, 0, (n - st->nslots) * sizeof(*s));
        st->slots = s;
        st->nslots = n;
    }
    return &st->slots[fd];
}

/* A free submission entry; a full queue is submitted first. */
struct io_uring_sqe *uring_sqe(struct uring_state *st)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&st->ring);
    if (sqe == NULL && io_uring_submit(&st->ring) >= 0) {
        sqe = io_uring_get_sqe(&st->ring);
    }
    return sqe;
}

static uint64_t uring_tag(int fd, uint32_t gen)
{
    return (uint64_t)gen << 32 | (uint32_t)fd; /* gen < 2^31: URING_CIO_BIT stays clear */
}

static int uring_cancel(struct uring_state *st, int fd, struct uring_slot *sl)
{
    struct io_uring_sqe *sqe = uring_sqe(st);
    if (sqe == NULL) {
        return -1;
    }
    io_uring_prep_poll_remove(sqe, uring_tag(fd, sl->gen));
    io_uring_sqe_set_data64(sqe, URING_CANCEL);
    sl->gen = (sl->gen + 1) & 0x7fffffffu;
    sl->armed = 0;
    return 0;
}

static int uring_queue(struct uring_state *st, int fd, struct uring_slot *sl)
{
    if (sl->queued) {
        return 0;
    }
    if (st->npending == st->pending_cap) {
        size_t cap = st->pending_cap ? st->pending_cap * 2 : 256;
        int *p = realloc(st->pending, cap * sizeof(*p));
        if (p == NULL) {
            return -1;
        }
        st->pending = p;
        st->pending_cap = cap;
    }
    st->pending[st->npending++] = fd;
    sl->queued = true;
    return 0;
}

static int uring_set(void *state, struct ev_io *io, unsigned mask)
{
    struct uring_state *st = state;
    struct uring_slot *sl = uring_slot(st, io->fd);
    if (sl == NULL) {
        return -1;
    }
    if (sl->cio != NULL) {
        uring_cio_set(st, sl->cio, io, mask);
        return 0;
    }
    if (sl->armed != 0 && sl->armed != mask && uring_cancel(st, io->fd, sl) != 0) {
        return -1;
    }
    sl->io = mask ? io : NULL;
    sl->want = mask;
    return mask ? uring_queue(st, io->fd, sl) : 0;
}

static int uring_arm_pending(struct uring_state *st)
{
    for (size_t i = 0; i < st->npending; i++) {
        int fd = st->pending[i];
        struct uring_slot *sl = &st->slots[fd];
        if (sl->io == NULL || sl->want == 0 || sl->armed != 0) {
            sl->queued = false;
            continue;
        }
        struct io_uring_sqe *sqe = uring_sqe(st);
        if (sqe == NULL) {
            /* keep the rest queued for the next turn */
            memmove(st->pending, st->pending + i, (st->npending - i) * sizeof(int));
            st->npending -= i;
            return -1;
        }
        sl->queued = false;
        unsigned pm = ((sl->want & EV_READ) ? POLLIN | POLLRDHUP : 0u) |
                      ((sl->want & EV_WRITE) ? POLLOUT : 0u);
        io_uring_prep_poll_add(sqe, fd, pm);
        io_uring_sqe_set_data64(sqe, uring_tag(fd, sl->gen));
        sl->armed = sl->want;
    }
    st->npending = 0;
    return 0;
}

/* Submit what is queued and wait for one completion at most timeout_ms. */
static int uring_enter(struct uring_state *st, int timeout_ms)
{
    int rc;
    if (timeout_ms == 0) {
        rc = io_uring_submit_and_get_events(&st->ring);
    } else if (timeout_ms < 0) {
        rc = io_uring_submit_and_wait(&st->ring, 1);
    } else {
        struct __kernel_timespec ts = {timeout_ms / 1000, (long long)(timeout_ms % 1000) * 1000000};
        struct io_uring_cqe *cqe = NULL;
        rc = io_uring_submit_and_wait_timeout(&st->ring, &cqe, 1, &ts, NULL);
    }
    if (rc >= 0 || rc == -ETIME || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY) {
        return 0;
    }
    errno = -rc;
    return -1;
}

/* The readiness a completion reports, or 0 for one to drop. */
static unsigned uring_fired(struct uring_state *st, const struct io_uring_cqe *cqe,
                            struct ev_io **io)
{
    uint64_t ud = cqe->user_data;
    if (ud == URING_CANCEL) {
        return 0;
    }
    if (ud & URING_CIO_BIT) {
        uring_cio_complete(st, cqe);
        return 0;
    }
    int fd = (int)(uint32_t)ud;
    if ((size_t)fd >= st->nslots) {
        return 0;
    }
    struct uring_slot *sl = &st->slots[fd];
    if ((uint32_t)(ud >> 32) != sl->gen || sl->armed == 0) {
        return 0; /* a poll cancelled since, maybe of an fd closed and reused */
    }
    sl->armed = 0;
    if (sl->io == NULL || uring_queue(st, fd, sl) != 0 || cqe->res == -ECANCELED) {
        return 0;
    }
    *io = sl->io;
    if (cqe->res < 0) {
        return EV_READ | EV_WRITE; /* an error: both sides find out */
    }
    unsigned e = (unsigned)cqe->res;
    return ((e & (POLLIN | POLLERR | POLLHUP | POLLRDHUP)) ? EV_READ : 0u) |
           ((e & (POLLOUT | POLLERR | POLLHUP)) ? EV_WRITE : 0u);
}

static int uring_wait(void *state, struct ev_fired *out, int max, int timeout_ms)
{
    struct uring_state *st = state;
    int ready = uring_cio_prepare(st);
    if (ready < 0 || uring_arm_pending(st) != 0) {
        return -1;
    }
    int linger = uring_cio_linger_ms(st);
    if (ready) {
        timeout_ms = 0; /* bytes already received wait for their reader */
    } else if (linger >= 0 && (timeout_ms < 0 || timeout_ms > linger)) {
        timeout_ms = linger;
    }
    if (uring_enter(st, timeout_ms) != 0) {
        return -1;
    }
    int n = 0;
    unsigned seen = 0;
    unsigned head;
    struct io_uring_cqe *cqe;
    io_uring_for_each_cqe(&st->ring, head, cqe)
    {
        if (n == max) {
            break;
        }
        seen++;
        struct ev_io *io = NULL;
        unsigned ev = uring_fired(st, cqe, &io);
        if (ev != 0) {
            out[n].io = io;
            out[n].events = ev;
            n++;
        }
    }
    io_uring_cq_advance(&st->ring, seen);
    return n + uring_cio_report(st, out + n, max - n);
}

const struct ev_backend ev_backend_uring = {
    "io_uring", uring_create, uring_destroy, uring_set, uring_wait, uring_cio_open,
};
