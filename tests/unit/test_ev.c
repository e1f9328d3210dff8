/*
 * test_ev: the event loop on real descriptors (socketpairs): readiness
 * callbacks, changing and removing watched events, timers firing in deadline
 * order (and stopped, restarted, started from a callback), the before-sleep
 * hook running once per turn before the wait, and a descriptor closed, or a
 * watcher stopped and freed, by an earlier callback of the same batch being
 * skipped. Every test runs on each
 * backend (epoll, io_uring), which must behave alike: level-triggered, and
 * nothing reported for a descriptor closed and reused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "event/ev.h"
#include "unit.h"

struct probe {
    struct ev_io io;
    int reads, writes;
    struct probe *closes; /* closes this one's peer probe when it fires */
    bool one_byte;        /* reads one byte per event instead of draining */
};

static const char *backend = "epoll";

static struct ev_loop *loop_new(void)
{
    struct ev_loop *loop = ev_loop_create_backend(backend);
    CHECK(loop != NULL && strcmp(ev_loop_backend(loop), backend) == 0);
    return loop;
}

static void probe_on_io(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct probe *p = io->data;
    char buf[64];
    if (events & EV_READ) {
        p->reads++;
        while (read(io->fd, buf, p->one_byte ? 1 : sizeof(buf)) > 0 && !p->one_byte) {
        }
    }
    if (events & EV_WRITE) {
        p->writes++;
    }
    if (p->closes != NULL) {
        ev_io_stop(loop, &p->closes->io);
        close(p->closes->io.fd);
        p->closes->io.fd = -1; /* the loop skips it for the rest of the batch */
    }
}

static void test_io(void)
{
    struct ev_loop *loop = loop_new();
    int sv[2];
    CHECK(loop != NULL && socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    struct probe a = {0};
    ev_io_init(&a.io, sv[0], probe_on_io, &a);
    CHECK_EQ_INT(ev_io_set(loop, &a.io, EV_READ), 0);
    /* nothing to read: the turn times out */
    CHECK_EQ_INT(ev_loop_poll(loop, 10), 0);
    CHECK_EQ_INT(a.reads, 0);
    CHECK_EQ_INT(write(sv[1], "x", 1), 1);
    CHECK_EQ_INT(ev_loop_poll(loop, 1000), 1);
    CHECK_EQ_INT(a.reads, 1);
    /* level-triggered: drained, so no second event */
    CHECK_EQ_INT(ev_loop_poll(loop, 10), 0);
    /* writable at once when asked for */
    CHECK_EQ_INT(ev_io_set(loop, &a.io, EV_READ | EV_WRITE), 0);
    CHECK_EQ_INT(ev_loop_poll(loop, 1000), 1);
    CHECK_EQ_INT(a.writes, 1);
    /* removed: data waits unseen */
    CHECK_EQ_INT(ev_io_set(loop, &a.io, 0), 0);
    CHECK(!a.io.registered);
    CHECK_EQ_INT(write(sv[1], "y", 1), 1);
    CHECK_EQ_INT(ev_loop_poll(loop, 10), 0);
    CHECK_EQ_INT(a.reads, 1);
    /* watched again: the waiting byte is reported */
    CHECK_EQ_INT(ev_io_set(loop, &a.io, EV_READ), 0);
    CHECK_EQ_INT(ev_loop_poll(loop, 1000), 1);
    CHECK_EQ_INT(a.reads, 2);
    /* the peer hangs up: reported as readable (the reader sees EOF) */
    close(sv[1]);
    CHECK_EQ_INT(ev_loop_poll(loop, 1000), 1);
    CHECK_EQ_INT(a.reads, 3);
    ev_io_stop(loop, &a.io);
    close(sv[0]);
    ev_loop_destroy(loop);
}

static void test_closed_in_batch(void)
{
    struct ev_loop *loop = loop_new();
    int s1[2], s2[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s1) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s2) == 0);
    struct probe a = {0}, b = {0};
    ev_io_init(&a.io, s1[0], probe_on_io, &a);
    ev_io_init(&b.io, s2[0], probe_on_io, &b);
    ev_io_set(loop, &a.io, EV_READ);
    ev_io_set(loop, &b.io, EV_READ);
    a.closes = &b;
    b.closes = &a;
    /* both ready in one batch: whichever runs first closes the other */
    CHECK_EQ_INT(write(s1[1], "x", 1), 1);
    CHECK_EQ_INT(write(s2[1], "x", 1), 1);
    CHECK_EQ_INT(ev_loop_poll(loop, 1000), 2);
    CHECK_EQ_INT(a.reads + b.reads, 1);
    close(s1[1]);
    close(s2[1]);
    if (a.io.fd >= 0) {
        close(a.io.fd);
    }
    if (b.io.fd >= 0) {
        close(b.io.fd);
    }
    ev_loop_destroy(loop);
}

struct stopper {
    struct ev_io io;
    int calls;
    struct stopper *other; /* stopped (and freed when free_other) by this one's callback */
    bool free_other;
};

static struct stopper *stopper_first; /* the one whose callback ran first */

static void stopper_on_io(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct stopper *p = io->data;
    (void)events;
    p->calls++;
    if (p->other != NULL) {
        stopper_first = p;
        struct stopper *o = p->other;
        ev_io_stop(loop, &o->io);
        o->other = NULL;
        p->other = NULL;
        if (p->free_other) {
            free(o); /* its descriptor stays open: only the stop protects it */
        }
    }
}

/* Both ready in one batch, the first to run stops the other's watcher (its
 * descriptor still open) and, in the second round, frees it: the other's
 * event of the batch is not dispatched (ASan: nothing reads the freed one). */
static void test_stopped_in_batch(bool free_other)
{
    struct ev_loop *loop = loop_new();
    int s1[2], s2[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s1) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s2) == 0);
    struct stopper *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    ev_io_init(&a->io, s1[0], stopper_on_io, a);
    ev_io_init(&b->io, s2[0], stopper_on_io, b);
    a->other = b;
    b->other = a;
    a->free_other = b->free_other = free_other;
    ev_io_set(loop, &a->io, EV_READ);
    ev_io_set(loop, &b->io, EV_READ);
    CHECK_EQ_INT(write(s1[1], "x", 1), 1);
    CHECK_EQ_INT(write(s2[1], "x", 1), 1);
    stopper_first = NULL;
    CHECK_EQ_INT(ev_loop_poll(loop, 1000), 2);
    struct stopper *ran = stopper_first;
    CHECK(ran == a || ran == b);
    CHECK_EQ_INT(ran->calls, 1);
    if (!free_other) {
        struct stopper *stopped = ran == a ? b : a;
        CHECK_EQ_INT(stopped->calls, 0);
        CHECK(!stopped->io.registered);
        free(stopped);
    }
    /* the stopped one's byte waits unseen: nothing more is reported */
    ev_io_stop(loop, &ran->io);
    CHECK_EQ_INT(ev_loop_poll(loop, 10), 0);
    free(ran);
    for (int i = 0; i < 2; i++) {
        close(s1[i]);
        close(s2[i]);
    }
    ev_loop_destroy(loop);
}

static void test_undrained_reported_again(void)
{
    struct ev_loop *loop = loop_new();
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    struct probe a = {0};
    a.one_byte = true;
    ev_io_init(&a.io, sv[0], probe_on_io, &a);
    ev_io_set(loop, &a.io, EV_READ);
    CHECK_EQ_INT(write(sv[1], "xyz", 3), 3);
    /* a byte per turn, and the bytes left are reported again without new ones */
    for (int i = 1; i <= 3; i++) {
        CHECK_EQ_INT(ev_loop_poll(loop, 1000), 1);
        CHECK_EQ_INT(a.reads, i);
    }
    CHECK_EQ_INT(ev_loop_poll(loop, 10), 0);
    ev_io_stop(loop, &a.io);
    close(sv[0]);
    close(sv[1]);
    ev_loop_destroy(loop);
}

static void test_fd_reused(void)
{
    struct ev_loop *loop = loop_new();
    int s1[2], s2[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s1) == 0);
    struct probe a = {0}, b = {0};
    ev_io_init(&a.io, s1[0], probe_on_io, &a);
    ev_io_set(loop, &a.io, EV_READ);
    CHECK_EQ_INT(ev_loop_poll(loop, 10), 0); /* a's wait is in the kernel now */
    int fd = s1[0];
    ev_io_stop(loop, &a.io);
    close(s1[0]);
    close(s1[1]);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s2) == 0);
    CHECK_EQ_INT(s2[0], fd); /* the lowest free number comes back */
    ev_io_init(&b.io, s2[0], probe_on_io, &b);
    ev_io_set(loop, &b.io, EV_READ);
    CHECK_EQ_INT(write(s2[1], "x", 1), 1);
    CHECK_EQ_INT(ev_loop_poll(loop, 1000), 1);
    CHECK_EQ_INT(b.reads, 1);
    CHECK_EQ_INT(a.reads, 0);
    CHECK_EQ_INT(ev_loop_poll(loop, 10), 0);
    ev_io_stop(loop, &b.io);
    close(s2[0]);
    close(s2[1]);
    ev_loop_destroy(loop);
}

static int fired[8], nfired;

static void timer_note(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    fired[nfired++] = (int)(intptr_t)t->data;
}

static struct ev_timer chained;

static void timer_chain(struct ev_loop *loop, struct ev_timer *t)
{
    timer_note(loop, t);
    ev_timer_start(loop, &chained, 0); /* due now: runs in this same turn */
}

static void test_timers(void)
{
    struct ev_loop *loop = loop_new();
    struct ev_timer t[4];
    nfired = 0;
    for (intptr_t i = 0; i < 4; i++) {
        ev_timer_init(&t[i], timer_note, (void *)i);
    }
    uint64_t now = ev_now(loop);
    ev_timer_start_at(loop, &t[2], now + 3);
    ev_timer_start_at(loop, &t[0], now + 1);
    ev_timer_start_at(loop, &t[3], now + 4);
    ev_timer_start_at(loop, &t[1], now + 2);
    ev_timer_stop(loop, &t[3]);
    CHECK(!ev_timer_armed(&t[3]));
    ev_timer_start_at(loop, &t[1], now + 5); /* restarting moves it */
    while (nfired < 3) {
        CHECK(ev_loop_poll(loop, 100) >= 0);
    }
    CHECK_EQ_INT(fired[0], 0);
    CHECK_EQ_INT(fired[1], 2);
    CHECK_EQ_INT(fired[2], 1);
    CHECK(ev_now(loop) >= now + 5);
    CHECK(!ev_timer_armed(&t[0]) && !ev_timer_armed(&t[1]));
    /* a timer started from a callback, due at once */
    nfired = 0;
    ev_timer_init(&t[0], timer_chain, (void *)(intptr_t)10);
    ev_timer_init(&chained, timer_note, (void *)(intptr_t)11);
    ev_timer_start(loop, &t[0], 0);
    CHECK(ev_loop_poll(loop, 100) >= 0);
    CHECK_EQ_INT(nfired, 2);
    CHECK_EQ_INT(fired[1], 11);
    ev_loop_destroy(loop);
}

struct hook_state {
    int calls;
    int stop_at;
};

static void hook(struct ev_loop *loop, void *data)
{
    struct hook_state *h = data;
    if (++h->calls == h->stop_at) {
        ev_loop_stop(loop);
    }
}

static void test_before_sleep_and_stop(void)
{
    struct ev_loop *loop = loop_new();
    struct hook_state h = {0, 3};
    struct ev_timer tick;
    ev_loop_set_before_sleep(loop, hook, &h);
    /* two turns wake on a timer each; the third turn's hook stops the loop
     * before it sleeps */
    ev_timer_init(&tick, timer_note, NULL);
    nfired = 0;
    ev_timer_start(loop, &tick, 1);
    CHECK(ev_loop_poll(loop, -1) >= 0);
    CHECK_EQ_INT(h.calls, 1);
    ev_timer_start(loop, &tick, 1);
    CHECK_EQ_INT(ev_loop_run(loop), 0);
    CHECK_EQ_INT(h.calls, 3);
    CHECK_EQ_INT(nfired, 2);
    CHECK(strcmp(ev_loop_backend(loop), backend) == 0);
    ev_loop_destroy(loop);
}

int main(void)
{
    static const char *const backends[] = {"epoll", "io_uring"};
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
        backend = backends[i];
        struct ev_loop *probe = ev_loop_create_backend(backend);
        bool here = probe != NULL && strcmp(ev_loop_backend(probe), backend) == 0;
        ev_loop_destroy(probe);
        if (!here) {
            printf("test_ev: no %s on this kernel, its tests skipped\n", backend);
            continue;
        }
        test_io();
        test_closed_in_batch();
        test_stopped_in_batch(false);
        test_stopped_in_batch(true);
        test_undrained_reported_again();
        test_fd_reused();
        test_timers();
        test_before_sleep_and_stop();
    }
    CHECK(ev_loop_create_backend("kqueue") == NULL);
    UNIT_DONE("test_ev");
}
