/*
 * ev_uring_int: the io_uring backend's state, shared by its readiness half
 * (ev_uring.c: polls) and its completion half (ev_uring_cio.c: receives into
 * a ring of provided buffers and sends from per-connection staging). Private
 * to src/event.
 */
#ifndef NC_EV_URING_INT_H
#define NC_EV_URING_INT_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event/ev_backend.h"

/* user_data of our own cancels: nothing to report */
#define URING_CANCEL UINT64_MAX
/* user_data of the cancel of everything when the loop ends */
#define URING_DRAIN (UINT64_MAX - 1)
/* user_data of a completion-I/O operation: the ev_cio's address with this bit
 * (never set in a user-space address) and the operation in the low bits; a
 * poll's user_data has a 31-bit generation in its high half, so never this bit */
#define URING_CIO_BIT (1ull << 63)

struct uring_slot {
    struct ev_io *io;   /* NULL: the fd is not watched */
    struct ev_cio *cio; /* non-NULL: the fd moves its bytes through the ring */
    uint32_t gen;       /* tag of the poll in flight (31 bits) */
    unsigned want;      /* EV_READ | EV_WRITE asked for */
    unsigned armed;     /* the events of the poll in flight; 0: none */
    bool queued;        /* in the list of fds to arm before the next wait */
};

/* The lists an ev_cio can be on, each doubly linked through cio->link[k]. */
enum { CIO_READY, CIO_STARVED, CIO_LINGER, CIO_ALL, CIO_NLISTS };

struct uring_state {
    struct io_uring ring;
    struct uring_slot *slots; /* indexed by fd */
    size_t nslots;
    int *pending; /* fds whose poll must be (re)armed */
    size_t npending;
    size_t pending_cap;
    /* completion I/O, set up at the first ev_cio_open */
    bool cio_tried, cio_ok;
    struct io_uring_buf_ring *br; /* the provided receive buffers' ring */
    uint8_t *rxmem;               /* the buffers themselves */
    struct cio_rxq *rxq;          /* per buffer id: the receive queues' links */
    unsigned rx_free;             /* buffers in the ring, as far as completions tell */
    bool recv_multishot;          /* false: the kernel has no multishot receive */
    struct ev_cio *dirty;         /* to arm or send before the next wait */
    struct ev_cio *list[CIO_NLISTS];
    void **txfree; /* staging chunks kept for reuse */
    unsigned ntxfree;
    unsigned nsending; /* sends in flight */
};

struct io_uring_sqe *uring_sqe(struct uring_state *st);
/* At the loop's end: submit, wait at most ms for a completion, and hand each
 * completion there is to fn; -1 when the ring failed. */
typedef void uring_reap_fn(struct uring_state *st, const struct io_uring_cqe *cqe, void *arg);
int uring_reap(struct uring_state *st, uint64_t ms, uring_reap_fn *fn, void *arg);
struct uring_slot *uring_slot(struct uring_state *st, int fd);

/* The completion half, called by the readiness half's wait. */
/* Arm receives, start sends, prune the ready list; returns whether some
 * connection has events to report now (then the wait must not sleep), or -1
 * when the ring failed. */
int uring_cio_prepare(struct uring_state *st);
/* A completion of a completion-I/O operation (user_data has URING_CIO_BIT). */
void uring_cio_complete(struct uring_state *st, const struct io_uring_cqe *cqe);
/* Fill out[0..max) with the connections that have events; returns how many. */
int uring_cio_report(struct uring_state *st, struct ev_fired *out, int max);
/* io's watched events on a completion-I/O fd. */
void uring_cio_set(struct uring_state *st, struct ev_cio *c, struct ev_io *io, unsigned mask);
/* The longest the wait may sleep while closed connections still send (ms; -1
 * none), and their sends given up when past due. */
int uring_cio_linger_ms(struct uring_state *st);
struct ev_cio *uring_cio_open(void *state, int fd);
/* The loop ends: staged bytes still leave, as write() would have put them in
 * the socket before the exit; sends not done within a second are cut off. */
void uring_cio_finish(struct uring_state *st);
void uring_cio_destroy(struct uring_state *st);

#endif
