/*
 * test_ev_cio: completion I/O on the io_uring loop (ev.h, ev_cio_*), on real
 * socketpairs: received bytes reported level-triggered until read; sends
 * leaving with the next wait; no receive while the io does not watch EV_READ
 * (bytes stay in the socket); bytes that arrive while earlier ones are held
 * unread, queued in order; the end and errors; a closed connection's
 * staged bytes still delivered before the loop closes its fd; large values read
 * and written in one call, not a ring buffer per loop turn; more
 * connections holding data than the shared ring has buffers (ENOBUFS, the
 * starved list, spilling for connections that stopped reading; a buffer given
 * back reaching a starved connection that still reads); detaching a
 * connection (its fd given back open, nothing it held lost), or calling that
 * off; a half-close (the peer gets every staged byte, then EOF, and can still
 * send). Skipped where
 * io_uring or provided buffer rings are missing; epoll has no completion I/O.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "event/ev.h"
#include "unit.h"

struct conn {
    struct ev_io io;
    struct ev_cio *cio;
    int peer;
    unsigned events; /* all events reported so far */
    size_t got;      /* bytes read by the callback */
    bool reads;      /* the callback reads what is reported */
    size_t cap;      /* at most this much per event (0: all) */
    int last_rc;
    char seen[64]; /* the first bytes read */
};

static void conn_on_io(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct conn *c = io->data;
    (void)loop;
    c->events |= events;
    if (!(events & EV_READ) || !c->reads) {
        return;
    }
    char buf[64 * 1024];
    size_t cap = c->cap ? c->cap : sizeof(buf);
    size_t got = 0;
    int err = 0;
    c->last_rc = ev_cio_read(c->cio, buf, cap, &got, &err);
    if (c->last_rc == EV_CIO_OK) {
        for (size_t i = 0; i < got && c->got + i < sizeof(c->seen); i++) {
            c->seen[c->got + i] = buf[i];
        }
        c->got += got;
    }
}

static bool conn_open(struct ev_loop *loop, struct conn *c)
{
    int sv[2];
    memset(c, 0, sizeof(*c));
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0) {
        return false;
    }
    c->cio = ev_cio_open(loop, sv[0]);
    if (c->cio == NULL) {
        close(sv[0]);
        close(sv[1]);
        return false;
    }
    c->peer = sv[1];
    c->reads = true;
    ev_io_init(&c->io, sv[0], conn_on_io, c);
    return true;
}

static void conn_close(struct ev_loop *loop, struct conn *c)
{
    ev_io_stop(loop, &c->io);
    ev_cio_close(c->cio);
    close(c->peer);
}

static void turns(struct ev_loop *loop, int n)
{
    for (int i = 0; i < n; i++) {
        ev_loop_poll(loop, 5);
    }
}

static void test_read_write(struct ev_loop *loop)
{
    struct conn c;
    CHECK(conn_open(loop, &c));
    CHECK_EQ_INT(ev_io_set(loop, &c.io, EV_READ), 0);
    turns(loop, 2);
    CHECK_EQ_INT(c.events, 0);
    CHECK_EQ_INT(write(c.peer, "hello world", 11), 11);
    /* read 4 bytes per event: the rest is reported again without new bytes */
    c.cap = 4;
    turns(loop, 1);
    CHECK(c.events & EV_READ);
    CHECK_EQ_INT(c.got, 4);
    CHECK_EQ_INT(ev_cio_pending(c.cio), 7);
    turns(loop, 2);
    CHECK_EQ_INT(c.got, 11);
    CHECK_EQ_INT(ev_cio_pending(c.cio), 0);
    c.events = 0;
    turns(loop, 2);
    CHECK_EQ_INT(c.events, 0); /* all read: nothing more */

    /* writes are staged and leave with the next wait */
    size_t put = 0;
    int err = 0;
    CHECK_EQ_INT(ev_cio_write(c.cio, "abc", 3, &put, &err), EV_CIO_OK);
    CHECK_EQ_INT(put, 3);
    CHECK_EQ_INT(ev_cio_write(c.cio, "def", 3, &put, &err), EV_CIO_OK);
    char buf[16];
    CHECK_EQ_INT(read(c.peer, buf, sizeof(buf)), -1); /* nothing sent yet */
    turns(loop, 1);
    CHECK_EQ_INT(read(c.peer, buf, sizeof(buf)), 6);
    CHECK_MEM(buf, 6, "abcdef");

    /* the peer closes: EOF after the last bytes */
    CHECK_EQ_INT(write(c.peer, "z", 1), 1);
    shutdown(c.peer, SHUT_WR);
    c.cap = 0;
    turns(loop, 3);
    CHECK_EQ_INT(c.got, 12);
    CHECK_EQ_INT(c.last_rc, EV_CIO_EOF);
    conn_close(loop, &c);
    turns(loop, 2);
}

/* Not watching EV_READ, a connection has no receive: bytes stay in the socket
 * (the client's buffer limit relies on it); watched again, they are reported. */
static void test_no_read_no_receive(struct ev_loop *loop)
{
    struct conn c;
    CHECK(conn_open(loop, &c));
    CHECK_EQ_INT(ev_io_set(loop, &c.io, EV_WRITE), 0);
    turns(loop, 1);
    CHECK_EQ_INT(c.events, EV_WRITE); /* room to write */
    c.events = 0;
    CHECK_EQ_INT(write(c.peer, "ping", 4), 4);
    CHECK_EQ_INT(ev_io_set(loop, &c.io, 0), 0);
    turns(loop, 2);
    char b[8];
    CHECK_EQ_INT(recv(c.io.fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT), 4);
    CHECK_EQ_INT(ev_io_set(loop, &c.io, EV_READ), 0);
    turns(loop, 2);
    CHECK_EQ_INT(c.got, 4);
    conn_close(loop, &c);
    turns(loop, 1);
}

/* The receive stays armed while the connection holds bytes it has not read:
 * what arrives later is queued behind them. Once it stops reading, what it
 * holds is copied out of the ring, its receive is cancelled, and later bytes
 * stay in the socket. Read again, everything comes in the order it was sent. */
static void test_held_bytes_queue_in_order(struct ev_loop *loop)
{
    struct conn c;
    CHECK(conn_open(loop, &c));
    c.reads = false;
    CHECK_EQ_INT(ev_io_set(loop, &c.io, EV_READ), 0);
    const char *parts[] = {"abc", "def", "ghi"};
    size_t want = 0;
    for (int k = 0; k < 3; k++) {
        CHECK_EQ_INT(write(c.peer, parts[k], 3), 3);
        want += 3;
        for (int i = 0; i < 50 && ev_cio_pending(c.cio) < want; i++) {
            turns(loop, 1);
        }
        CHECK_EQ_INT(ev_cio_pending(c.cio), want); /* the last part taken while holding */
    }
    CHECK_EQ_INT(ev_io_set(loop, &c.io, 0), 0);
    turns(loop, 2);
    CHECK_EQ_INT(write(c.peer, "jkl", 3), 3);
    turns(loop, 2);
    char b[8];
    CHECK_EQ_INT(recv(c.io.fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT), 3); /* not received */
    CHECK_EQ_INT(ev_cio_pending(c.cio), 9);
    c.reads = true;
    c.cap = 4; /* reads cross from one part to the next */
    CHECK_EQ_INT(ev_io_set(loop, &c.io, EV_READ), 0);
    for (int i = 0; i < 50 && c.got < 12; i++) {
        turns(loop, 1);
    }
    CHECK_EQ_INT(c.got, 12);
    CHECK_MEM(c.seen, 12, "abcdefghijkl");
    conn_close(loop, &c);
    turns(loop, 1);
}

/* Staging fills at EV_CIO_TX_MAX (AGAIN, then EV_WRITE once sent); a
 * connection closed with bytes staged still delivers them, then its fd closes. */
static void test_close_delivers(struct ev_loop *loop)
{
    struct conn c;
    CHECK(conn_open(loop, &c));
    CHECK_EQ_INT(ev_io_set(loop, &c.io, EV_READ), 0);
    static char big[EV_CIO_TX_MAX + 100];
    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (char)('a' + i % 26);
    }
    size_t put = 0;
    int err = 0;
    /* a small write first: what follows it is staged, not sent directly */
    CHECK_EQ_INT(ev_cio_write(c.cio, big, 100, &put, &err), EV_CIO_OK);
    CHECK_EQ_INT(ev_cio_write(c.cio, big + 100, sizeof(big) - 100, &put, &err), EV_CIO_OK);
    CHECK_EQ_INT(put, EV_CIO_TX_MAX - 100);
    CHECK_EQ_INT(ev_cio_write(c.cio, big + EV_CIO_TX_MAX, 100, &put, &err), EV_CIO_AGAIN);
    CHECK_EQ_INT(ev_io_set(loop, &c.io, EV_READ | EV_WRITE), 0);
    turns(loop, 1);
    size_t total = 0;
    char buf[256 * 1024];
    for (int i = 0; i < 50 && !(c.events & EV_WRITE); i++) {
        ssize_t n = read(c.peer, buf + total, sizeof(buf) - total);
        total += n > 0 ? (size_t)n : 0;
        turns(loop, 1);
    }
    CHECK(c.events & EV_WRITE);
    CHECK_EQ_INT(ev_cio_write(c.cio, big + EV_CIO_TX_MAX, 100, &put, &err), EV_CIO_OK);
    int fd = c.io.fd;
    ev_io_stop(loop, &c.io);
    ev_cio_close(c.cio);
    CHECK(fcntl(fd, F_GETFD) != -1); /* still open: bytes to send */
    for (int i = 0; i < 200; i++) {
        ssize_t n = read(c.peer, buf + total, sizeof(buf) - total);
        if (n == 0) {
            break; /* the loop closed its end after the last byte */
        }
        total += n > 0 ? (size_t)n : 0;
        turns(loop, 1);
    }
    CHECK_EQ_INT(total, sizeof(big));
    CHECK(memcmp(buf, big, sizeof(big)) == 0);
    CHECK_EQ_INT(read(c.peer, buf, 1), 0);
    CHECK(fcntl(fd, F_GETFD) == -1 && errno == EBADF);
    close(c.peer);
}

/* A large value: the first read gets more than one ring buffer of it (a
 * multishot receive queues buffer after buffer; after a one-shot receive that
 * filled its buffer, the rest is read with recv in the same call). A large
 * reply with nothing staged goes out with one send, before any loop turn. The
 * bytes arrive whole and in order either way. */
static void test_large_transfers(struct ev_loop *loop)
{
    enum { BIG = 100 * 1024 };
    static char out[BIG], in[BIG];
    for (size_t i = 0; i < sizeof(out); i++) {
        out[i] = (char)(i * 7 + i / 251);
    }
    struct conn c;
    CHECK(conn_open(loop, &c));
    CHECK_EQ_INT(ev_io_set(loop, &c.io, EV_READ), 0);
    CHECK_EQ_INT(write(c.peer, out, sizeof(out)), sizeof(out));
    turns(loop, 1);
    CHECK(c.got > 16 * 1024); /* more than one ring buffer in the first read */
    turns(loop, 4);
    CHECK_EQ_INT(c.got, sizeof(out));

    size_t put = 0;
    int err = 0;
    CHECK_EQ_INT(ev_cio_write(c.cio, out, sizeof(out), &put, &err), EV_CIO_OK);
    CHECK(put > EV_CIO_TX_MAX);
    size_t total = 0;
    ssize_t n;
    while ((n = read(c.peer, in + total, sizeof(in) - total)) > 0) {
        total += (size_t)n; /* no loop turn: the bytes are in the socket already */
    }
    CHECK_EQ_INT(total, put);
    if (put < sizeof(out)) {
        CHECK_EQ_INT(ev_cio_write(c.cio, out + put, sizeof(out) - put, &put, &err), EV_CIO_OK);
        turns(loop, 2);
        while ((n = read(c.peer, in + total, sizeof(in) - total)) > 0) {
            total += (size_t)n;
        }
    }
    CHECK_EQ_INT(total, sizeof(out));
    CHECK(memcmp(in, out, sizeof(out)) == 0);
    conn_close(loop, &c);
    turns(loop, 1);
}

/* More connections with bytes waiting than the ring has buffers: those that
 * find it empty wait and get one as others are read or spilled. */
static void test_more_than_the_ring(struct ev_loop *loop)
{
    enum { N = 300 };
    static struct conn cs[N];
    int opened = 0;
    for (int i = 0; i < N; i++) {
        if (!conn_open(loop, &cs[i])) {
            break;
        }
        opened++;
        cs[i].reads = false; /* hold what arrives */
        ev_io_set(loop, &cs[i].io, EV_READ);
        CHECK_EQ_INT(write(cs[i].peer, "0123456789", 10), 10);
    }
    CHECK_EQ_INT(opened, N);
    turns(loop, 5);
    int reported = 0;
    for (int i = 0; i < N; i++) {
        reported += (cs[i].events & EV_READ) != 0;
    }
    CHECK(reported < N); /* the ring has 256 buffers */
    CHECK(reported >= 200);
    /* those holding one stop reading: their bytes are copied out of the ring */
    for (int i = 0; i < N; i++) {
        if (cs[i].events & EV_READ) {
            ev_io_set(loop, &cs[i].io, 0);
        }
    }
    turns(loop, 5);
    int late = 0;
    for (int i = 0; i < N; i++) {
        late += cs[i].io.mask != 0 && (cs[i].events & EV_READ) != 0;
    }
    CHECK_EQ_INT(late, N - reported);
    /* everyone reads now: every byte arrives, once */
    for (int i = 0; i < N; i++) {
        cs[i].reads = true;
        ev_io_set(loop, &cs[i].io, EV_READ);
    }
    turns(loop, 5);
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        total += cs[i].got;
        conn_close(loop, &cs[i]);
    }
    CHECK_EQ_INT(total, (size_t)N * 10);
    turns(loop, 2);
}

/* A buffer given back goes to a starved connection that still reads, not to
 * one that has stopped reading since it was starved. */
static void test_starved_reader_gets_the_buffer(struct ev_loop *loop)
{
    enum { N = 300 };
    static struct conn cs[N];
    for (int i = 0; i < N; i++) {
        CHECK(conn_open(loop, &cs[i]));
        cs[i].reads = false;
        ev_io_set(loop, &cs[i].io, EV_READ);
        CHECK_EQ_INT(write(cs[i].peer, "0123456789", 10), 10);
    }
    turns(loop, 5);
    static int starved[N];
    int holder = -1, nstarved = 0;
    for (int i = 0; i < N; i++) {
        if (cs[i].events & EV_READ) {
            holder = i;
        } else {
            starved[nstarved++] = i;
        }
    }
    CHECK(holder >= 0 && nstarved >= 20);
    /* one in the middle reads (neither end of a list of the starved), the other
     * starved stop reading */
    int reader = starved[nstarved / 2];
    for (int k = 0; k < nstarved; k++) {
        if (starved[k] != reader) {
            ev_io_set(loop, &cs[starved[k]].io, 0);
        }
    }
    turns(loop, 2);
    cs[reader].reads = true;
    cs[holder].reads = true;
    ev_io_set(loop, &cs[holder].io, EV_READ); /* reported again: it reads, one buffer back */
    for (int i = 0; i < 20 && cs[reader].got < 10; i++) {
        turns(loop, 1);
    }
    CHECK_EQ_INT(cs[holder].got, 10);
    CHECK_EQ_INT(cs[reader].got, 10);
    for (int i = 0; i < N; i++) {
        conn_close(loop, &cs[i]);
    }
    turns(loop, 2);
}

/* The fd goes back open once nothing of it is in the ring: not while bytes are
 * received unread or staged, and only after its receive's cancel completed.
 * What the peer sends next is in the socket for whoever has the fd then. */
static void test_detach(struct ev_loop *loop)
{
    struct conn c;
    char buf[16];
    size_t put = 0;
    int err = 0;
    CHECK(conn_open(loop, &c));
    int fd = c.io.fd;
    c.reads = false;
    CHECK_EQ_INT(ev_io_set(loop, &c.io, EV_READ), 0);
    turns(loop, 2);
    CHECK_EQ_INT(write(c.peer, "abc", 3), 3);
    for (int i = 0; i < 50 && ev_cio_pending(c.cio) == 0; i++) {
        turns(loop, 1);
    }
    CHECK_EQ_INT(ev_cio_pending(c.cio), 3);
    CHECK_EQ_INT(ev_cio_detach(c.cio), -1); /* received, not read */
    c.reads = true;
    for (int i = 0; i < 50 && c.got < 3; i++) {
        turns(loop, 1);
    }
    CHECK_EQ_INT(c.got, 3);
    CHECK_EQ_INT(ev_cio_write(c.cio, "out", 3, &put, &err), EV_CIO_OK);
    CHECK_EQ_INT(ev_cio_detach(c.cio), -1); /* staged, not sent */
    turns(loop, 2);
    CHECK_EQ_INT(read(c.peer, buf, sizeof(buf)), 3);
    CHECK_EQ_INT(ev_cio_detach(c.cio), -1); /* its receive is being cancelled */
    turns(loop, 2);
    /* called off: it receives again */
    ev_cio_keep(c.cio);
    CHECK_EQ_INT(write(c.peer, "kk", 2), 2);
    for (int i = 0; i < 50 && c.got < 5; i++) {
        turns(loop, 1);
    }
    CHECK_EQ_INT(c.got, 5);
    turns(loop, 2);                         /* its receive armed again */
    CHECK_EQ_INT(ev_cio_detach(c.cio), -1); /* cancelled first */
    int got = -1;
    for (int i = 0; i < 50 && got < 0; i++) {
        turns(loop, 1);
        got = ev_cio_detach(c.cio);
    }
    CHECK_EQ_INT(got, fd);
    ev_io_stop(loop, &c.io);
    CHECK_EQ_INT(write(c.peer, "xyz", 3), 3);
    turns(loop, 2); /* no receive of the ring takes them */
    CHECK_EQ_INT(read(fd, buf, sizeof(buf)), 3);
    CHECK_MEM(buf, 3, "xyz");
    close(fd);
    close(c.peer);
}

/* ev_cio_shutdown with bytes staged: nothing is shut before they are sent;
 * then the peer reads them and EOF, and what the peer sends after is still
 * received (a refused client lingers on it). */
static void test_shutdown(struct ev_loop *loop)
{
    struct conn c;
    CHECK(conn_open(loop, &c));
    CHECK_EQ_INT(ev_io_set(loop, &c.io, EV_READ), 0);
    size_t put = 0;
    int err = 0;
    CHECK_EQ_INT(ev_cio_write(c.cio, "-ERR no\r\n", 9, &put, &err), EV_CIO_OK);
    ev_cio_shutdown(c.cio);
    char buf[64];
    CHECK_EQ_INT(read(c.peer, buf, sizeof(buf)), -1); /* not sent, not shut yet */
    CHECK_EQ_INT(errno, EAGAIN);
    turns(loop, 2);
    CHECK_EQ_INT(read(c.peer, buf, sizeof(buf)), 9);
    CHECK_MEM(buf, 9, "-ERR no\r\n");
    CHECK_EQ_INT(read(c.peer, buf, sizeof(buf)), 0); /* then the end */
    CHECK_EQ_INT(write(c.peer, "more", 4), 4);
    for (int i = 0; i < 100 && c.got < 4; i++) {
        turns(loop, 1); /* the receive woken by the shutdown may come back late */
    }
    CHECK_EQ_INT(c.got, 4);
    /* nothing staged: the half-close is at once */
    struct conn d;
    CHECK(conn_open(loop, &d));
    ev_cio_shutdown(d.cio);
    CHECK_EQ_INT(read(d.peer, buf, sizeof(buf)), 0);
    conn_close(loop, &d);
    conn_close(loop, &c);
    turns(loop, 2);
}

int main(void)
{
    struct ev_loop *loop = ev_loop_create_backend("io_uring");
    struct conn probe;
    if (loop == NULL || strcmp(ev_loop_backend(loop), "io_uring") != 0 ||
        !conn_open(loop, &probe)) {
        printf("test_ev_cio: no io_uring completion I/O on this kernel, skipped\n");
        ev_loop_destroy(loop);
        return 0;
    }
    conn_close(loop, &probe);
    test_read_write(loop);
    test_no_read_no_receive(loop);
    test_held_bytes_queue_in_order(loop);
    test_close_delivers(loop);
    test_large_transfers(loop);
    test_detach(loop);
    test_more_than_the_ring(loop);
    test_starved_reader_gets_the_buffer(loop);
    test_shutdown(loop);
    ev_loop_destroy(loop);
    struct ev_loop *ep = ev_loop_create_backend("epoll");
    CHECK(ep != NULL && ev_cio_open(ep, 0) == NULL);
    ev_loop_destroy(ep);
    UNIT_DONE("test_ev_cio");
}
