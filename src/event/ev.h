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
/* Stop watching io. No event of the batch being dispatched reaches it after
 * this: its owner may free it at once, even from another watcher's callback. */
void ev_io_stop(struct ev_loop *loop, struct ev_io *io);

void ev_timer_init(struct ev_timer *t, ev_timer_fn fn, void *data);
void ev_timer_start(struct ev_loop *loop, struct ev_timer *t, uint64_t after_ms);
void ev_timer_start_at(struct ev_loop *loop, struct ev_timer *t, uint64_t when_ms);
void ev_timer_stop(struct ev_loop *loop, struct ev_timer *t);
static inline bool ev_timer_armed(const struct ev_timer *t)
{
    return t->heap_idx != 0;
}

/*
 * Completion I/O (io_uring backend only). A connected socket's bytes move
 * through the ring instead of read() and write(): the loop keeps one receive
 * armed while the io watches EV_READ (the kernel takes a buffer from a ring
 * shared by every connection only when bytes arrive, so idle connections hold
 * none), and what ev_cio_write staged leaves in sends submitted with the next
 * wait, for all connections in the same system call. ev_cio_read and
 * ev_cio_write copy memory; only a large transfer adds one plain recv or send
 * (the rest of a receive that filled its buffer, a large reply with nothing
 * staged before it). The io keeps the readiness contract: EV_READ
 * while received bytes, the end or an error wait to be read; EV_WRITE while
 * there is room to stage more. Return values are the EV_CIO_* below.
 */
struct ev_cio;

enum { EV_CIO_OK, EV_CIO_AGAIN, EV_CIO_EOF, EV_CIO_ERROR };

/* Bytes one connection may have staged and not yet sent; more waits (AGAIN). */
#define EV_CIO_TX_MAX (64u * 1024u)
/* How long a closed connection's staged bytes may still take to leave. */
#define EV_CIO_LINGER_MS 10000

/* Completion I/O for fd, opened before ev_io_set is first called for it; NULL
 * when the loop's backend has none (epoll) or it cannot be set up: use the fd. */
struct ev_cio *ev_cio_open(struct ev_loop *loop, int fd);
/* Whether the loop's backend has completion I/O (io_uring); ev_cio_open may
 * still fail (no memory, the ring's buffers could not be set up). */
bool ev_loop_has_cio(const struct ev_loop *loop);
/* Copy up to cap received bytes: EV_CIO_OK (*got > 0), AGAIN (none yet), EOF
 * (the peer closed, every byte read), ERROR (*err: an errno code). */
int ev_cio_read(struct ev_cio *c, void *p, size_t cap, size_t *got, int *err);
/* Stage up to n bytes for sending: EV_CIO_OK (*put of them, maybe fewer than n),
 * AGAIN (full: wait for EV_WRITE), ERROR (*err). */
int ev_cio_write(struct ev_cio *c, const void *p, size_t n, size_t *put, int *err);
/* Received bytes not read yet. */
size_t ev_cio_pending(const struct ev_cio *c);
/* Bytes staged or in flight, not handed to the kernel yet (1 for a half-close
 * still to be made). */
size_t ev_cio_unsent(const struct ev_cio *c);
/* Take fd back out of the ring, open (to hand it to another process): its fd
 * once nothing of it is in flight, -1 until then (nothing is received unread
 * or staged, and the receive in flight is cancelled: ask again after a loop
 * turn; bytes that receive took are read as usual first). c is gone once the
 * fd is returned; the io of fd must be set again to be watched. */
int ev_cio_detach(struct ev_cio *c);
/* c stays after all: a detach begun is called off (it receives again). */
void ev_cio_keep(struct ev_cio *c);
/* Half-close: the write side is shut once every byte staged so far has been
 * sent (the peer reads them, then EOF); receiving goes on. */
void ev_cio_shutdown(struct ev_cio *c);
/* The connection is done with fd: its receive is cancelled; staged bytes still
 * leave (for at most EV_CIO_LINGER_MS) and then the loop closes fd. Stop the
 * io first; never close fd yourself. */
void ev_cio_close(struct ev_cio *c);

#endif
