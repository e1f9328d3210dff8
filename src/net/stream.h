/*
 * stream: the byte transport under a client or server connection.
 *
 * A connection reads and writes through its stream and never calls read() or
 * write() itself, so a transport other than a plain socket (TLS) is one more
 * ops table with the same contract: non-blocking, and errors returned as
 * values (an errno code in *err), never left in errno for a caller to find.
 */
#ifndef NC_STREAM_H
#define NC_STREAM_H

#include <stddef.h>

#include "core/buf.h"

enum stream_rc {
    STREAM_OK = 0, /* read: *got bytes (> 0); write: all of it went */
    STREAM_AGAIN,  /* nothing can move now: wait for readiness */
    STREAM_EOF,    /* read: the peer closed its side */
    STREAM_ERROR,  /* *err says why; the stream is unusable */
};

struct stream;

struct stream_ops {
    int (*read)(struct stream *s, void *p, size_t cap, size_t *got, int *err);
    /* Write some of p[0..n): *put bytes went (STREAM_OK with *put < n is a short write). */
    int (*write)(struct stream *s, const void *p, size_t n, size_t *put, int *err);
    void (*close)(struct stream *s);
};

struct stream {
    int fd; /* -1: closed */
    const struct stream_ops *ops;
};

/* A plain socket stream over fd (which it owns from now on). */
void stream_open_plain(struct stream *s, int fd);
/* Close the transport (and its fd); s can be opened again. */
void stream_close(struct stream *s);

static inline int stream_read(struct stream *s, void *p, size_t cap, size_t *got, int *err)
{
    return s->ops->read(s, p, cap, got, err);
}

/* Write b->data[*pos, b->len), advancing *pos: the one write loop of clients and
 * servers. STREAM_OK: everything went; STREAM_AGAIN: the socket is full;
 * STREAM_ERROR: *err. */
int stream_write_buf(struct stream *s, const struct buf *b, size_t *pos, int *err);

#endif
