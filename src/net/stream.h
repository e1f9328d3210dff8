/*
 * stream: the byte transport under a client or server connection.
 *
 * A connection reads and writes through its stream and never calls read() or
 * write() itself, so a transport other than a plain socket (TLS, net/tls.h) is
 * one more ops table with the same contract: non-blocking, and errors returned
 * as values (an errno code, or STREAM_ETLS, in *err; stream_strerror says it),
 * never left in errno for a caller to find.
 *
 * What a TLS transport adds to the contract, and every connection honours:
 *  - a handshake (stream_handshake) before the first byte; on a plain socket
 *    it is done at once;
 *  - a read may need the socket writable and a write may need it readable:
 *    after STREAM_AGAIN, rd_want / wr_want say which readiness that direction
 *    waits for (stream_mask builds the event mask, stream_can_* test events);
 *  - bytes already decrypted raise no readiness event: stream_pending says
 *    more can be read now, without waiting.
 */
#ifndef NC_STREAM_H
#define NC_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

enum stream_rc {
    STREAM_OK = 0, /* read: *got bytes (> 0); write: all of it went */
    STREAM_AGAIN,  /* nothing can move now: wait for rd_want / wr_want */
    STREAM_EOF,    /* read: the peer closed its side */
    STREAM_ERROR,  /* *err says why; the stream is unusable */
};

/* Readiness bits, equal to the event loop's EV_READ and EV_WRITE. */
#define STREAM_WANT_READ  1u
#define STREAM_WANT_WRITE 2u

/* *err of a TLS failure (protocol, certificate): stream_strerror has the text. */
#define STREAM_ETLS (-1)

struct stream;

struct stream_ops {
    int (*read)(struct stream *s, void *p, size_t cap, size_t *got, int *err);
    /* Write some of p[0..n): *put bytes went (STREAM_OK with *put < n is a short
     * write). After STREAM_AGAIN the same bytes must be offered again (they may
     * have moved in memory, and more may follow them). */
    int (*write)(struct stream *s, const void *p, size_t n, size_t *put, int *err);
    void (*close)(struct stream *s);
    /* Half-close: the peer reads what was written, then the end of the stream,
     * while this side can still read. 0, or -1 with *err. */
    int (*shutdown)(struct stream *s, int *err);
    int (*handshake)(struct stream *s, int *err);
    size_t (*pending)(const struct stream *s);
    /* Text of err for this stream (its TLS failure, else strerror). */
    const char *(*strerror)(const struct stream *s, int err, char *buf, size_t len);
};

struct stream {
    int fd; /* -1: closed */
    const struct stream_ops *ops;
    void *impl;      /* the transport's own state (TLS: the session) */
    uint8_t rd_want; /* STREAM_WANT_*: what a read waits for after STREAM_AGAIN */
    uint8_t wr_want; /* what a write waits for */
};

/* A plain socket stream over fd (which it owns from now on). */
void stream_open_plain(struct stream *s, int fd);
struct ev_loop;
/* A socket stream whose reads and writes are copies to and from the loop's
 * completion I/O (event/ev.h, ev_cio_open): no system call per read or write
 * (but for large transfers).
 * -1 when the loop's backend has none (epoll): open it plain instead. Call it
 * before the fd's ev_io is first set. */
int stream_open_ring(struct stream *s, int fd, struct ev_loop *loop);
/* Close the transport (and its fd); s can be opened again. */
void stream_close(struct stream *s);
/* A plain socket stream: the descriptor alone is the connection, with no
 * state of the transport's own (what TLS or the ring keep), so it can be
 * handed to another process. */
bool stream_is_plain(const struct stream *s);
/* A socket whose bytes move through the loop's ring (stream_open_ring). */
bool stream_is_ring(const struct stream *s);
/* A ring stream made plain again, to hand its socket over (ev_cio_detach):
 * 0 once it is plain (its io must be set again to be watched), -1 while the
 * ring still has an operation or unread bytes of it (try after a turn). */
int stream_unring(struct stream *s);
/* The socket stays in the ring after all: a stream_unring begun is called off. */
void stream_ring_keep(struct stream *s);

/* No more writing (ops->shutdown): what was written still arrives, then EOF. */
static inline int stream_shutdown(struct stream *s, int *err)
{
    return s->ops->shutdown(s, err);
}

static inline int stream_read(struct stream *s, void *p, size_t cap, size_t *got, int *err)
{
    return s->ops->read(s, p, cap, got, err);
}

/* STREAM_OK once the transport is ready for data; STREAM_AGAIN: wait for
 * stream_mask(s, true, false); STREAM_ERROR: *err. */
static inline int stream_handshake(struct stream *s, int *err)
{
    return s->ops->handshake(s, err);
}

/* Bytes that can be read at once though no readiness event will say so. */
static inline size_t stream_pending(const struct stream *s)
{
    return s->ops->pending(s);
}

static inline const char *stream_strerror(const struct stream *s, int err, char *buf, size_t len)
{
    return s->ops->strerror(s, err, buf, len);
}

/* The events to wait for when the caller wants to read and/or has bytes to write. */
static inline unsigned stream_mask(const struct stream *s, bool reading, bool writing)
{
    return (reading ? s->rd_want : 0u) | (writing ? s->wr_want : 0u);
}

static inline bool stream_can_read(const struct stream *s, unsigned events)
{
    return (events & s->rd_want) != 0;
}

static inline bool stream_can_write(const struct stream *s, unsigned events)
{
    return (events & s->wr_want) != 0;
}

/* Bytes written to s that the peer has not received yet: staged in the ring,
 * in the socket's send queue, or (TCP) sent and not acknowledged. Once it is 0,
 * closing the socket cannot destroy a reply, whatever the peer sends after. */
size_t stream_unsent(const struct stream *s);

/* Write b->data[*pos, b->len), advancing *pos: the one write loop of clients and
 * servers. STREAM_OK: everything went; STREAM_AGAIN: the socket is full;
 * STREAM_ERROR: *err. */
int stream_write_buf(struct stream *s, const struct buf *b, size_t *pos, int *err);

#endif
