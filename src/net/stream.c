#include "net/stream.h"

#include <errno.h>
#include <unistd.h>

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

static const struct stream_ops plain_ops = {plain_read, plain_write, plain_close};

void stream_open_plain(struct stream *s, int fd)
{
    s->fd = fd;
    s->ops = &plain_ops;
}

void stream_close(struct stream *s)
{
    if (s->fd >= 0) {
        s->ops->close(s);
    }
    s->fd = -1;
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
