#include "net/stream.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "event/ev.h"

static int plain_read(struct stream *s, void *p, size_t cap, size_t *got, int *err)
{
    for (;;) {
        ssize_t n = read(s->fd, p, cap);
        if (n > 0) {
            *got = (size_t)n;
            return STREAM_OK;
        }
        if (n == 0) {
            return STREAM_EOF;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return STREAM_AGAIN;
        }
        *err = errno;
        return STREAM_ERROR;
    }
}

static int plain_write(struct stream *s, const void *p, size_t n, size_t *put, int *err)
{
    for (;;) {
        ssize_t w = write(s->fd, p, n);
        if (w >= 0) {
            *put = (size_t)w;
            return STREAM_OK;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return STREAM_AGAIN;
        }
        *err = errno;
        return STREAM_ERROR;
    }
}

static void plain_close(struct stream *s)
{
    close(s->fd);
}

static int plain_shutdown(struct stream *s, int *err)
{
    if (shutdown(s->fd, SHUT_WR) != 0) {
        *err = errno;
        return -1;
    }
    return 0;
}

static int plain_handshake(struct stream *s, int *err)
{
    (void)s;
    (void)err;
    return STREAM_OK;
}

static size_t plain_pending(const struct stream *s)
{
    (void)s;
    return 0;
}

static const char *plain_strerror(const struct stream *s, int err, char *buf, size_t len)
{
    (void)s;
    snprintf(buf, len, "%s", err > 0 ? strerror(err) : "transport error");
    return buf;
}

static const struct stream_ops plain_ops = {plain_read,     plain_write,     plain_close,
                                            plain_shutdown, plain_handshake, plain_pending,
                                            plain_strerror};

void stream_open_plain(struct stream *s, int fd)
{
    s->fd = fd;
    s->ops = &plain_ops;
    s->impl = NULL;
    s->rd_want = STREAM_WANT_READ;
    s->wr_want = STREAM_WANT_WRITE;
}

/* ---- a socket whose bytes move through the loop's ring (ev.h, ev_cio_*) ---- */

static_assert((int)EV_CIO_OK == (int)STREAM_OK && (int)EV_CIO_AGAIN == (int)STREAM_AGAIN &&
                  (int)EV_CIO_EOF == (int)STREAM_EOF && (int)EV_CIO_ERROR == (int)STREAM_ERROR,
              "ev_cio results are stream results");

static int ring_read(struct stream *s, void *p, size_t cap, size_t *got, int *err)
{
    return ev_cio_read(s->impl, p, cap, got, err);
}

static int ring_write(struct stream *s, const void *p, size_t n, size_t *put, int *err)
{
    return ev_cio_write(s->impl, p, n, put, err);
}

static void ring_close(struct stream *s)
{
    ev_cio_close(s->impl); /* the loop closes the fd once its sends are done */
}

static int ring_shutdown(struct stream *s, int *err)
{
    (void)err;
    ev_cio_shutdown(s->impl); /* once the bytes staged before it have left */
    return 0;
}

static size_t ring_pending(const struct stream *s)
{
    return ev_cio_pending(s->impl);
}

static const struct stream_ops ring_ops = {ring_read,     ring_write,      ring_close,
                                           ring_shutdown, plain_handshake, ring_pending,
                                           plain_strerror};

int stream_open_ring(struct stream *s, int fd, struct ev_loop *loop)
{
    struct ev_cio *c = ev_cio_open(loop, fd);
    if (c == NULL) {
        return -1;
    }
    stream_open_plain(s, fd);
    s->ops = &ring_ops;
    s->impl = c;
    return 0;
}

size_t stream_unsent(const struct stream *s)
{
    size_t staged = s->ops == &ring_ops ? ev_cio_unsent(s->impl) : 0;
    int queued = 0;
    if (s->fd < 0 || ioctl(s->fd, SIOCOUTQ, &queued) != 0 || queued < 0) {
        queued = 0; /* not a socket (a test's pipe): nothing the kernel holds back */
    }
    return staged + (size_t)queued;
}

bool stream_is_plain(const struct stream *s)
{
    return s->ops == &plain_ops;
}

bool stream_is_ring(const struct stream *s)
{
    return s->ops == &ring_ops;
}

void stream_ring_keep(struct stream *s)
{
    if (s->ops == &ring_ops) {
        ev_cio_keep(s->impl);
    }
}

int stream_unring(struct stream *s)
{
    if (s->ops != &ring_ops) {
        return 0;
    }
    int fd = ev_cio_detach(s->impl);
    if (fd < 0) {
        return -1;
    }
    stream_open_plain(s, fd);
    return 0;
}

void stream_close(struct stream *s)
{
    if (s->fd >= 0) {
        s->ops->close(s);
    }
    s->fd = -1;
    s->impl = NULL;
}

int stream_write_buf(struct stream *s, const struct buf *b, size_t *pos, int *err)
{
    while (*pos < b->len) {
        size_t put = 0;
        int rc = s->ops->write(s, b->data + *pos, b->len - *pos, &put, err);
        if (rc != STREAM_OK) {
            return rc;
        }
        if (put == 0) {
            return STREAM_AGAIN; /* a transport that took nothing must be waited for */
        }
        *pos += put;
    }
    return STREAM_OK;
}
