/*
 * ev_uring_cio: completion I/O on io_uring (ev.h, ev_cio_*), so that a
 * connection's reads and writes cost no system call of their own.
 *
 * Receiving: a connection whose io watches EV_READ has one multishot receive
 * in flight with IOSQE_BUFFER_SELECT: it stays armed, and each time bytes
 * arrive the kernel takes a buffer of the shared ring and posts a completion,
 * so a request costs no receive to arm again. The connection holds its buffers
 * in arrival order (the first one being read, the rest queued) until it has
 * read them (ev_cio_read copies out); each then goes back to the ring. A
 * connection that stops reading (its client at the buffer limit) has its
 * receive cancelled, and what it still holds is copied to memory of its own
 * ("spilled") so that connections which do not read cannot empty the shared
 * ring. An empty ring ends a receive with ENOBUFS: the connection waits on the
 * starved list until a buffer comes back. A kernel without multishot receives
 * (before 6.0) refuses the first with EINVAL; the loop then arms one-shot
 * receives, again after each completion.
 *
 * Sending: ev_cio_write copies into the connection's staging chunk (from a free
 * list, given back once sent). Before each wait every connection with staged
 * bytes and no send in flight gets one send of all of them, so the sends of a
 * whole turn leave in the wait's io_uring_enter. Bytes staged while a send is
 * in flight follow it; a short send continues where it stopped.
 *
 * Large transfers: a multishot receive posts one buffer after another while
 * bytes keep coming, with no loop turn between them. Where no receive is in
 * flight (one-shot receives), a receive that filled its buffer is followed by
 * a plain recv() for the rest. A large reply with nothing staged before it
 * goes out with a plain send() first. So a megabyte value costs a call or two,
 * not one loop turn per buffer.
 *
 * Closing: the fd stays ours until every operation on it has completed (its
 * receive cancelled, staged bytes sent or given up after EV_CIO_LINGER_MS), so
 * its number cannot be reused under an operation still in flight. A half-close
 * (ev_cio_shutdown) likewise waits for the bytes staged before it to be sent.
 *
 * Detaching (a socket handed to another process): the receive is cancelled and
 * none is armed again; once it has completed with nothing received, the fd is
 * given back open. Bytes the cancelled receive did take are read as usual, and
 * detaching starts over once they are answered.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "event/ev_uring_int.h"

#define CIO_RXBUF     (16u * 1024u)
#define CIO_NRXBUF    256u /* the receive ring's size: a power of two */
#define CIO_BGID      1
#define CIO_TXKEEP    64u /* staging chunks kept for reuse */
#define CIO_RECV      1u
#define CIO_SEND      2u
#define CIO_OPMASK    7u
#define CIO_FINISH_MS 1000 /* how long the loop's end waits for sends in flight */

/* A received buffer queued behind the one its connection is reading, by
 * buffer id (st->rxq[bid]): queues take no memory of their own. */
struct cio_rxq {
    int next; /* the buffer after it; -1: none */
    uint32_t len;
};

struct cio_link {
    struct ev_cio *prev, *next;
    bool on;
};

struct ev_cio {
    struct uring_state *st;
    int fd;
    struct ev_io *io; /* whom events go to; NULL: none watched */
    unsigned want;    /* EV_READ | EV_WRITE */
    int err;          /* the first receive or send error (errno code); 0: none */
    bool eof;
    bool recv_armed;
    bool closed;
    bool dirty;
    bool send_cancelled;
    bool recv_cancelled; /* a cancel of the receive in flight was asked for */
    bool detaching;      /* no new receive: ev_cio_detach gives the fd back */
    bool shut_wr;        /* ev_cio_shutdown: shut the write side once all is sent */
    uint8_t *rx;         /* received, not read: a ring buffer (rx_bid >= 0) or our copy */
    int rx_bid;
    uint32_t rx_off, rx_len;
    int rxq_head, rxq_tail;   /* ring buffers received after rx; -1: none */
    uint32_t rxq_bytes;       /* their bytes */
    uint8_t *tx;              /* staging chunk of EV_CIO_TX_MAX bytes; NULL: none held */
    uint32_t tx_sent, tx_len; /* tx[tx_sent, tx_len) is not sent yet */
    uint32_t tx_flight;       /* bytes of the send in flight; 0: none */
    uint64_t linger_until_ms;
    struct ev_cio *turn_next;
    struct cio_link link[CIO_NLISTS];
};

static void cio_list_add(struct uring_state *st, struct ev_cio *c, int k)
{
    struct cio_link *l = &c->link[k];
    if (l->on) {
        return;
    }
    l->on = true;
    l->prev = NULL;
    l->next = st->list[k];
    if (l->next != NULL) {
        l->next->link[k].prev = c;
    }
    st->list[k] = c;
}

static void cio_list_del(struct uring_state *st, struct ev_cio *c, int k)
{
    struct cio_link *l = &c->link[k];
    if (!l->on) {
        return;
    }
    if (l->prev != NULL) {
        l->prev->link[k].next = l->next;
    } else {
        st->list[k] = l->next;
    }
    if (l->next != NULL) {
        l->next->link[k].prev = l->prev;
    }
    l->on = false;
    l->prev = l->next = NULL;
}

static uint64_t cio_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t cio_tag(const struct ev_cio *c, unsigned op)
{
    return URING_CIO_BIT | (uint64_t)(uintptr_t)c | op;
}

static void cio_dirty(struct ev_cio *c)
{
    if (!c->dirty) {
        c->dirty = true;
        c->turn_next = c->st->dirty;
        c->st->dirty = c;
    }
}

/* ---- receive buffers ---- */

static bool cio_setup(struct uring_state *st)
{
    if (st->cio_tried) {
        return st->cio_ok;
    }
    st->cio_tried = true;
    size_t ringsz = CIO_NRXBUF * sizeof(struct io_uring_buf);
    void *br = mmap(NULL, ringsz, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (br == MAP_FAILED) {
        return false;
    }
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)br;
    reg.ring_entries = CIO_NRXBUF;
    reg.bgid = CIO_BGID;
    st->rxmem = malloc((size_t)CIO_NRXBUF * CIO_RXBUF);
    st->txfree = calloc(CIO_TXKEEP, sizeof(*st->txfree));
    st->rxq = calloc(CIO_NRXBUF, sizeof(*st->rxq));
    if (st->rxmem == NULL || st->txfree == NULL || st->rxq == NULL ||
        io_uring_register_buf_ring(&st->ring, &reg, 0) != 0) {
        munmap(br, ringsz); /* an older kernel (< 5.19): readiness only */
        return false;
    }
    st->br = br;
    io_uring_buf_ring_init(st->br);
    int mask = io_uring_buf_ring_mask(CIO_NRXBUF);
    for (unsigned i = 0; i < CIO_NRXBUF; i++) {
        io_uring_buf_ring_add(st->br, st->rxmem + (size_t)i * CIO_RXBUF, CIO_RXBUF,
                              (unsigned short)i, mask, (int)i);
    }
    io_uring_buf_ring_advance(st->br, (int)CIO_NRXBUF);
    st->recv_multishot = true; /* until the kernel refuses one */
    st->rx_free = CIO_NRXBUF;
    st->cio_ok = true;
    return true;
}

/* A buffer goes back to the ring (the turn's end gives it to a starved
 * connection: uring_cio_prepare). */
static void cio_buf_recycle(struct uring_state *st, int bid)
{
    io_uring_buf_ring_add(st->br, st->rxmem + (size_t)bid * CIO_RXBUF, CIO_RXBUF,
                          (unsigned short)bid, io_uring_buf_ring_mask(CIO_NRXBUF), 0);
    io_uring_buf_ring_advance(st->br, 1);
    st->rx_free++;
}

/* Received bytes in ring buffer bid: read next if nothing is held, else queued. */
static void cio_rx_push(struct ev_cio *c, int bid, uint32_t len)
{
    struct uring_state *st = c->st;
    if (c->rx == NULL) {
        c->rx = st->rxmem + (size_t)bid * CIO_RXBUF;
        c->rx_bid = bid;
        c->rx_off = 0;
        c->rx_len = len;
        return;
    }
    st->rxq[bid].next = -1;
    st->rxq[bid].len = len;
    if (c->rxq_tail >= 0) {
        st->rxq[c->rxq_tail].next = bid;
    } else {
        c->rxq_head = bid;
    }
    c->rxq_tail = bid;
    c->rxq_bytes += len;
}

/* The buffer being read is done with; the first queued one is read next. */
static void cio_rx_release(struct ev_cio *c)
{
    if (c->rx == NULL) {
        return;
    }
    if (c->rx_bid >= 0) {
        cio_buf_recycle(c->st, c->rx_bid);
    } else {
        free(c->rx);
    }
    c->rx = NULL;
    c->rx_bid = -1;
    c->rx_off = c->rx_len = 0;
    int bid = c->rxq_head;
    if (bid >= 0) {
        const struct cio_rxq *q = &c->st->rxq[bid];
        c->rxq_head = q->next;
        if (c->rxq_head < 0) {
            c->rxq_tail = -1;
        }
        c->rxq_bytes -= q->len;
        cio_rx_push(c, bid, q->len);
    }
}

static void cio_rx_release_all(struct ev_cio *c)
{
    while (c->rx != NULL) {
        cio_rx_release(c);
    }
}

/* Copy what a connection that stopped reading holds out of the shared ring. */
static void cio_rx_spill(struct ev_cio *c)
{
    uint32_t n = c->rx_len - c->rx_off + c->rxq_bytes;
    uint8_t *copy = malloc(n);
    if (copy == NULL) {
        return; /* it keeps the ring's buffers */
    }
    uint32_t at = 0;
    while (c->rx != NULL) {
        memcpy(copy + at, c->rx + c->rx_off, c->rx_len - c->rx_off);
        at += c->rx_len - c->rx_off;
        cio_rx_release(c);
    }
    c->rx = copy;
    c->rx_bid = -1;
    c->rx_off = 0;
    c->rx_len = n;
}

/* ---- staging chunks ---- */

static uint8_t *cio_tx_get(struct uring_state *st)
{
    if (st->ntxfree > 0) {
        return st->txfree[--st->ntxfree];
    }
    return malloc(EV_CIO_TX_MAX);
}

static void cio_tx_put(struct uring_state *st, struct ev_cio *c)
{
    if (c->tx != NULL) {
        if (st->ntxfree < CIO_TXKEEP) {
            st->txfree[st->ntxfree++] = c->tx;
        } else {
            free(c->tx);
        }
    }
    c->tx = NULL;
    c->tx_sent = c->tx_len = 0;
}

/* ---- operations ---- */

static int cio_arm_recv(struct ev_cio *c)
{
    struct io_uring_sqe *sqe = uring_sqe(c->st);
    if (sqe == NULL) {
        return -1;
    }
    if (c->st->recv_multishot) {
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    } else {
        io_uring_prep_recv(sqe, c->fd, NULL, CIO_RXBUF, 0);
    }
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = CIO_BGID;
    io_uring_sqe_set_data64(sqe, cio_tag(c, CIO_RECV));
    c->recv_armed = true;
    return 0;
}

static int cio_send(struct ev_cio *c)
{
    struct io_uring_sqe *sqe = uring_sqe(c->st);
    if (sqe == NULL) {
        return -1;
    }
    c->tx_flight = c->tx_len - c->tx_sent;
    c->st->nsending++;
    io_uring_prep_send(sqe, c->fd, c->tx + c->tx_sent, c->tx_flight, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, cio_tag(c, CIO_SEND));
    return 0;
}

static int cio_cancel(struct ev_cio *c, unsigned op)
{
    struct io_uring_sqe *sqe = uring_sqe(c->st);
    if (sqe == NULL) {
        return -1;
    }
    io_uring_prep_cancel64(sqe, cio_tag(c, op), 0);
    io_uring_sqe_set_data64(sqe, URING_CANCEL);
    return 0;
}

static bool cio_tx_waiting(const struct ev_cio *c)
{
    return c->err == 0 && c->tx_flight == 0 && c->tx_len > c->tx_sent;
}

static bool cio_writable(const struct ev_cio *c)
{
    return c->tx == NULL || c->tx_len < EV_CIO_TX_MAX || (c->tx_flight == 0 && c->tx_sent > 0);
}

static unsigned cio_events(const struct ev_cio *c)
{
    unsigned ev = 0;
    if (c->io == NULL) {
        return 0;
    }
    if ((c->want & EV_READ) && (c->rx != NULL || c->eof || c->err != 0)) {
        ev |= EV_READ;
    }
    if ((c->want & EV_WRITE) && (c->err != 0 || cio_writable(c))) {
        ev |= EV_WRITE;
    }
    return ev;
}

/* A closed connection goes once nothing of it is in flight or to be sent. */
static void cio_maybe_free(struct ev_cio *c)
{
    if (!c->closed || c->dirty || c->recv_armed || c->tx_flight != 0 ||
        (c->err == 0 && c->tx_len > c->tx_sent)) {
        return;
    }
    struct uring_state *st = c->st;
    for (int k = 0; k < CIO_NLISTS; k++) {
        cio_list_del(st, c, k);
    }
    cio_rx_release_all(c);
    cio_tx_put(st, c);
    close(c->fd);
    free(c);
}

static void cio_recv_done(struct uring_state *st, struct ev_cio *c, const struct io_uring_cqe *cqe)
{
    int res = cqe->res;
    bool more = (cqe->flags & IORING_CQE_F_MORE) != 0; /* the receive stays armed */
    if (!more) {
        c->recv_armed = false;
        c->recv_cancelled = false;
    }
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        int bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
        st->rx_free--;
        if (res > 0 && !c->closed) {
            c->detaching = false; /* a request came first: it is answered here */
            cio_rx_push(c, bid, (uint32_t)res);
            if (!more) {
                cio_dirty(c); /* the next receive */
            }
            return;
        }
        cio_buf_recycle(st, bid);
    }
    if (c->closed || res > 0 || more) {
        return;
    }
    if (res == 0) {
        c->eof = true;
    } else if (res == -ENOBUFS) {
        cio_list_add(st, c, CIO_STARVED);
    } else if (res == -EINVAL && st->recv_multishot) {
        st->recv_multishot = false; /* a kernel before 6.0: one-shot receives */
        cio_dirty(c);
    } else if (res == -EINTR || res == -EAGAIN || res == -ECANCELED) {
        cio_dirty(c); /* try again */
    } else {
        c->err = -res;
    }
}

/* ev_cio_shutdown's half-close, once nothing staged is left to send. */
static void cio_shut_if_sent(struct ev_cio *c)
{
    if (c->shut_wr && c->tx_flight == 0 && c->tx_len == c->tx_sent) {
        c->shut_wr = false;
        if (shutdown(c->fd, SHUT_WR) != 0 && c->err == 0) {
            c->err = errno;
        }
    }
}

static void cio_send_done(struct uring_state *st, struct ev_cio *c, int res)
{
    c->tx_flight = 0;
    st->nsending--;
    if (res == -EINTR || res == -EAGAIN) {
        cio_dirty(c);
        return;
    }
    if (res <= 0) {
        if (c->err == 0) {
            c->err = res == -ECANCELED ? ETIMEDOUT : res == 0 ? EPIPE : -res;
        }
        cio_tx_put(st, c);
        return;
    }
    c->tx_sent += (uint32_t)res;
    if (c->tx_sent == c->tx_len) {
        cio_tx_put(st, c);
        cio_shut_if_sent(c);
    } else {
        cio_dirty(c);
    }
}

void uring_cio_complete(struct uring_state *st, const struct io_uring_cqe *cqe)
{
    struct ev_cio *c = (struct ev_cio *)(uintptr_t)(cqe->user_data & ~(URING_CIO_BIT | CIO_OPMASK));
    if ((cqe->user_data & CIO_OPMASK) == CIO_RECV) {
        cio_recv_done(st, c, cqe);
    } else {
        cio_send_done(st, c, cqe->res);
    }
    if (c->closed) {
        cio_maybe_free(c);
    } else if (cio_events(c) != 0) {
        cio_list_add(st, c, CIO_READY);
    }
}

/* What the turn asked of one connection: a receive, a send, a spill. */
static int cio_flush_one(struct ev_cio *c)
{
    if (c->closed) {
        if (cio_tx_waiting(c) && cio_send(c) != 0) {
            return -1;
        }
        cio_maybe_free(c);
        return 0;
    }
    if (!(c->want & EV_READ) || c->detaching) {
        cio_list_del(c->st, c, CIO_STARVED); /* a buffer for it would be wasted */
    }
    if (!(c->want & EV_READ)) {
        if (c->rx_bid >= 0 || c->rxq_head >= 0) {
            cio_rx_spill(c);
        }
        if (c->recv_armed && !c->recv_cancelled) {
            if (cio_cancel(c, CIO_RECV) != 0) {
                return -1;
            }
            c->recv_cancelled = true; /* what it still takes is spilled next turn */
        }
    }
    if ((c->want & EV_READ) && !c->recv_armed && !c->eof && c->err == 0 && !c->detaching &&
        !c->link[CIO_STARVED].on && cio_arm_recv(c) != 0) {
        return -1;
    }
    if (cio_tx_waiting(c) && cio_send(c) != 0) {
        return -1;
    }
    if (cio_events(c) != 0) {
        cio_list_add(c->st, c, CIO_READY); /* e.g. the end found by cio_read_more */
    }
    return 0;
}

/* Once the ring has buffers again, every starved connection gets another try.
 * Not one per buffer given back: a receive also fails with ENOBUFS when it has
 * nothing to receive, and such a connection, woken, would arm its receive and
 * leave the buffer unused while one with bytes waiting stayed starved. Those
 * that find the ring empty again are starved again, by a completion: this
 * cannot spin. */
static void cio_wake_starved(struct uring_state *st)
{
    struct ev_cio *w;
    while (st->rx_free > 0 && (w = st->list[CIO_STARVED]) != NULL) {
        cio_list_del(st, w, CIO_STARVED);
        cio_dirty(w);
    }
}

int uring_cio_prepare(struct uring_state *st)
{
    cio_wake_starved(st);
    while (st->dirty != NULL) {
        struct ev_cio *c = st->dirty;
        st->dirty = c->turn_next;
        c->dirty = false;
        c->turn_next = NULL;
        if (cio_flush_one(c) != 0) {
            cio_dirty(c);
            return -1;
        }
        if (st->dirty == NULL) {
            cio_wake_starved(st); /* buffers spilled this turn */
        }
    }
    int any = 0;
    struct ev_cio *next;
    for (struct ev_cio *c = st->list[CIO_READY]; c != NULL; c = next) {
        next = c->link[CIO_READY].next;
        if (cio_events(c) != 0) {
            any = 1;
        } else {
            cio_list_del(st, c, CIO_READY);
        }
    }
    return any;
}

int uring_cio_report(struct uring_state *st, struct ev_fired *out, int max)
{
    int n = 0;
    for (struct ev_cio *c = st->list[CIO_READY]; c != NULL && n < max;
         c = c->link[CIO_READY].next) {
        unsigned ev = cio_events(c);
        if (ev != 0) {
            out[n].io = c->io;
            out[n].events = ev;
            n++;
        }
    }
    return n;
}

void uring_cio_set(struct uring_state *st, struct ev_cio *c, struct ev_io *io, unsigned mask)
{
    c->io = mask ? io : NULL;
    c->want = mask;
    cio_dirty(c); /* arm a receive, or spill what is held if reading stopped */
    if (cio_events(c) != 0) {
        cio_list_add(st, c, CIO_READY);
    }
}

int uring_cio_linger_ms(struct uring_state *st)
{
    if (st->list[CIO_LINGER] == NULL) {
        return -1;
    }
    uint64_t now = cio_now_ms();
    struct ev_cio *next;
    for (struct ev_cio *c = st->list[CIO_LINGER]; c != NULL; c = next) {
        next = c->link[CIO_LINGER].next;
        if (now < c->linger_until_ms) {
            continue;
        }
        if (c->tx_flight != 0 && !c->send_cancelled) {
            if (cio_cancel(c, CIO_SEND) != 0) {
                continue; /* again next turn */
            }
            c->send_cancelled = true;
        }
        cio_list_del(st, c, CIO_LINGER);
        if (c->err == 0) {
            c->err = ETIMEDOUT; /* what was not sent is given up */
        }
        cio_maybe_free(c);
    }
    return st->list[CIO_LINGER] != NULL ? 1000 : -1;
}

struct ev_cio *uring_cio_open(void *state, int fd)
{
    struct uring_state *st = state;
    struct uring_slot *sl = uring_slot(st, fd);
    if (sl == NULL || sl->io != NULL || !cio_setup(st)) {
        return NULL; /* an fd already watched keeps its polls */
    }
    struct ev_cio *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    c->st = st;
    c->fd = fd;
    c->rx_bid = -1;
    c->rxq_head = c->rxq_tail = -1;
    sl->cio = c;
    cio_list_add(st, c, CIO_ALL);
    return c;
}

/* A receive that filled its whole buffer was likely cut short: a large value is
 * on its way. The reader has room for more and no receive is in flight (one-shot
 * receives, or a multishot one that ended), so read the rest at once instead of
 * one ring buffer per loop turn. With a receive in flight this would take bytes
 * before those the ring already holds. */
static size_t cio_read_more(struct ev_cio *c, uint8_t *p, size_t cap)
{
    ssize_t r = recv(c->fd, p, cap, MSG_DONTWAIT);
    if (r > 0) {
        return (size_t)r;
    }
    if (r == 0) {
        c->eof = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        c->err = errno;
    }
    return 0;
}

int ev_cio_read(struct ev_cio *c, void *p, size_t cap, size_t *got, int *err)
{
    if (c->rx != NULL && cap > 0) {
        size_t n = 0;
        bool cut = false;
        while (c->rx != NULL && n < cap) {
            size_t k = c->rx_len - c->rx_off;
            if (k > cap - n) {
                k = cap - n;
            }
            memcpy((uint8_t *)p + n, c->rx + c->rx_off, k);
            c->rx_off += (uint32_t)k;
            n += k;
            if (c->rx_off == c->rx_len) {
                cut = c->rx_bid >= 0 && c->rx_len == CIO_RXBUF;
                cio_rx_release(c);
            }
        }
        if (cut && c->rx == NULL && !c->recv_armed && cap - n >= CIO_RXBUF) {
            n += cio_read_more(c, (uint8_t *)p + n, cap - n);
        }
        *got = n;
        return EV_CIO_OK;
    }
    if (c->err != 0) {
        *err = c->err;
        return EV_CIO_ERROR;
    }
    return c->eof ? EV_CIO_EOF : EV_CIO_AGAIN;
}

int ev_cio_write(struct ev_cio *c, const void *p, size_t n, size_t *put, int *err)
{
    if (c->err != 0) {
        *err = c->err;
        return EV_CIO_ERROR;
    }
    if (n > EV_CIO_TX_MAX / 2 && c->tx_flight == 0 && c->tx_len == c->tx_sent) {
        /* a large reply, nothing before it staged or in flight: the socket
         * takes what it can at once, instead of a staging chunk per loop turn */
        ssize_t w = send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) {
            *put = (size_t)w;
            return EV_CIO_OK;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            c->err = errno;
            *err = c->err;
            return EV_CIO_ERROR;
        }
    }
    if (c->tx == NULL && (c->tx = cio_tx_get(c->st)) == NULL) {
        *err = ENOMEM;
        return EV_CIO_ERROR;
    }
    if (c->tx_flight == 0 && c->tx_sent > 0) {
        /* the rest of a short send moves down: no send reads it now */
        memmove(c->tx, c->tx + c->tx_sent, c->tx_len - c->tx_sent);
        c->tx_len -= c->tx_sent;
        c->tx_sent = 0;
    }
    size_t room = EV_CIO_TX_MAX - c->tx_len;
    if (room == 0) {
        return EV_CIO_AGAIN;
    }
    if (n > room) {
        n = room;
    }
    memcpy(c->tx + c->tx_len, p, n);
    c->tx_len += (uint32_t)n;
    *put = n;
    cio_dirty(c);
    return EV_CIO_OK;
}

size_t ev_cio_pending(const struct ev_cio *c)
{
    return c->rx != NULL ? c->rx_len - c->rx_off + c->rxq_bytes : 0;
}

/* fd's slot no longer names c: the fd is not watched through c any more. */
static void cio_unslot(struct ev_cio *c)
{
    struct uring_state *st = c->st;
    if ((size_t)c->fd < st->nslots && st->slots[c->fd].cio == c) {
        struct uring_slot *sl = &st->slots[c->fd];
        sl->cio = NULL;
        sl->io = NULL;
        sl->want = 0;
    }
}

/* Off the turn's list (a cancelled receive put it there to be armed again). */
static void cio_undirty(struct ev_cio *c)
{
    for (struct ev_cio **p = &c->st->dirty; *p != NULL; p = &(*p)->turn_next) {
        if (*p == c) {
            *p = c->turn_next;
            break;
        }
    }
    c->dirty = false;
    c->turn_next = NULL;
}

int ev_cio_detach(struct ev_cio *c)
{
    if (c->closed || c->rx != NULL || c->tx_len > c->tx_sent || c->tx_flight != 0 || c->eof ||
        c->err != 0) {
        return -1; /* bytes to read or to send first, or nothing to hand over */
    }
    c->detaching = true;
    if (c->recv_armed) {
        if (!c->recv_cancelled && cio_cancel(c, CIO_RECV) == 0) {
            c->recv_cancelled = true;
        }
        return -1; /* its completion comes with a later wait */
    }
    struct uring_state *st = c->st;
    int fd = c->fd;
    if (c->dirty) {
        cio_undirty(c);
    }
    cio_unslot(c);
    for (int k = 0; k < CIO_NLISTS; k++) {
        cio_list_del(st, c, k);
    }
    cio_tx_put(st, c);
    free(c);
    return fd;
}

void ev_cio_keep(struct ev_cio *c)
{
    if (c->detaching) {
        c->detaching = false;
        cio_dirty(c); /* its receive is armed again */
    }
}

size_t ev_cio_unsent(const struct ev_cio *c)
{
    return (size_t)(c->tx_len - c->tx_sent) + c->tx_flight + (c->shut_wr ? 1 : 0);
}

void ev_cio_shutdown(struct ev_cio *c)
{
    c->shut_wr = true;
    cio_shut_if_sent(c);
}

void ev_cio_close(struct ev_cio *c)
{
    struct uring_state *st = c->st;
    cio_unslot(c);
    c->closed = true;
    c->io = NULL;
    c->want = 0;
    cio_list_del(st, c, CIO_READY);
    cio_list_del(st, c, CIO_STARVED);
    cio_rx_release_all(c);
    if (c->recv_armed && !c->recv_cancelled && cio_cancel(c, CIO_RECV) == 0) {
        c->recv_cancelled = true; /* fails only with a broken ring */
    }
    if (c->err == 0 && c->tx_len > c->tx_sent) {
        c->linger_until_ms = cio_now_ms() + EV_CIO_LINGER_MS;
        cio_list_add(st, c, CIO_LINGER);
        cio_dirty(c); /* its last bytes leave with the next wait */
        return;
    }
    cio_maybe_free(c);
}

static void cio_finish_one(struct uring_state *st, const struct io_uring_cqe *cqe, void *arg)
{
    (void)arg;
    if (cqe->user_data != URING_CANCEL && (cqe->user_data & URING_CIO_BIT)) {
        uring_cio_complete(st, cqe);
    }
}

void uring_cio_finish(struct uring_state *st)
{
    uint64_t until = cio_now_ms() + CIO_FINISH_MS;
    while (st->cio_ok && uring_cio_prepare(st) >= 0 && st->nsending > 0) {
        uint64_t now = cio_now_ms();
        if (now >= until || uring_reap(st, until - now, cio_finish_one, NULL) != 0) {
            return;
        }
    }
}

void uring_cio_destroy(struct uring_state *st)
{
    /* the ring is gone: nothing is in flight any more */
    struct ev_cio *c;
    while ((c = st->list[CIO_ALL]) != NULL) {
        for (int k = 0; k < CIO_NLISTS; k++) {
            cio_list_del(st, c, k);
        }
        if (c->rx != NULL && c->rx_bid < 0) {
            free(c->rx);
        }
        free(c->tx);
        if (c->closed) {
            close(c->fd); /* an open one's fd belongs to its stream */
        }
        free(c);
    }
    for (unsigned i = 0; i < st->ntxfree; i++) {
        free(st->txfree[i]);
    }
    free(st->txfree);
    free(st->rxq);
    if (st->br != NULL) {
        munmap(st->br, CIO_NRXBUF * sizeof(struct io_uring_buf));
    }
    free(st->rxmem);
}
