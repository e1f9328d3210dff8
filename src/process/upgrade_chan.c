/*
 * upgrade_chan: the frames on a unix stream socket from a process being
 * replaced to its successor (upgrade.h has the whole exchange): its counters,
 * and its clients' sockets (SCM_RIGHTS) with their state. The single process
 * uses the socketpair of the upgrade; in worker mode old worker i sends its
 * clients to new worker i over a connection of their own (adopt.c).
 *
 *   frame: u32 big-endian length word, then that many bytes: an encoded stats
 *   snapshot, or with the word's top bit set a client's state, whose socket
 *   came with the frame's first byte
 */
#include "process/upgrade_chan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"

#define CHAN_CLIENT 0x80000000u /* a frame's length word: a client's state */

/* ---- the receiving end ---- */

/* The oldest socket received whose frame was not read yet, or -1. */
static int chan_fds_pop(struct chan_fds *fq)
{
    if (fq->head == fq->count) {
        return -1;
    }
    int fd = fq->fd[fq->head++];
    if (fq->head == fq->count) {
        fq->head = fq->count = 0; /* all matched: start over */
    }
    return fd;
}

static void chan_fds_push(struct chan_fds *fq, int fd)
{
    if (fq->count == fq->cap) {
        uint32_t cap = fq->cap ? 2 * fq->cap : 16;
        int *v = realloc(fq->fd, cap * sizeof(int));
        if (v == NULL) {
            close(fd); /* its client sees the connection closed */
            return;
        }
        fq->fd = v;
        fq->cap = cap;
    }
    fq->fd[fq->count++] = fd;
}

void chan_fds_close(struct chan_fds *fq)
{
    int fd;
    while ((fd = chan_fds_pop(fq)) >= 0) {
        close(fd);
    }
    free(fq->fd);
    memset(fq, 0, sizeof(*fq));
}

ssize_t chan_recv(int fd, uint8_t *p, size_t cap, struct chan_fds *fq)
{
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(8 * sizeof(int))];
    } cm;
    struct iovec iov = {p, cap};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof(cm.b)};
    ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
    for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&m) : NULL; c != NULL; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int sfd;
            memcpy(&sfd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            chan_fds_push(fq, sfd);
        }
    }
    return n;
}

static void chan_client(struct chan_fds *fq, const struct chan_sink *sink, const uint8_t *p,
                        size_t n)
{
    int fd = chan_fds_pop(fq);
    if (fd < 0) {
        log_warn("binary upgrade: a client's state came without its socket");
    } else if (sink->client != NULL) {
        sink->client(sink->ctx, fd, p, n);
    } else {
        close(fd);
    }
}

void chan_frames(struct buf *in, struct chan_fds *fq, const struct chan_sink *sink)
{
    size_t off = 0;
    while (in->len - off >= 4) {
        const uint8_t *p = in->data + off;
        uint32_t word = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        uint32_t n = word & ~CHAN_CLIENT;
        if (n > CHAN_MAX_FRAME) {
            off = in->len; /* nonsense: drop it all */
            break;
        }
        if (in->len - off - 4 < n) {
            break;
        }
        if (word & CHAN_CLIENT) {
            chan_client(fq, sink, p + 4, n);
        } else if (sink->snapshot != NULL) {
            sink->snapshot(sink->ctx, p + 4, n);
        }
        off += 4 + (size_t)n;
    }
    buf_consume(in, off);
}

int chan_read_all(int fd, struct buf *in, struct chan_fds *fq, const struct chan_sink *sink)
{
    uint8_t tmp[65536];
    ssize_t n;
    while ((n = chan_recv(fd, tmp, sizeof(tmp), fq)) > 0) {
        buf_append(in, tmp, (size_t)n);
    }
    chan_frames(in, fq, sink);
    return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
}

/* ---- the sending end ---- */

void chan_blocking(int chan)
{
    /* what goes there is small and the other side reads it on its loop:
     * blocking is fine, bounded by a send timeout should it hang */
    fcntl(chan, F_SETFL, fcntl(chan, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {2, 0};
    setsockopt(chan, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Send all of b from off on (the first bytes may have gone already). */
static int chan_send_rest(int chan, const struct buf *b, size_t off)
{
    while (off < b->len) {
        ssize_t w = send(chan, b->data + off, b->len - off, MSG_NOSIGNAL);
        if (w <= 0) {
            return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

/* One frame of payload p (n bytes) into b: its length word, then p. */
static void chan_frame(struct buf *b, const uint8_t *p, size_t n, bool client)
{
    uint32_t word = (uint32_t)n | (client ? CHAN_CLIENT : 0);
    uint8_t len[4] = {(uint8_t)(word >> 24), (uint8_t)(word >> 16), (uint8_t)(word >> 8),
                      (uint8_t)word};
    buf_append(b, len, 4);
    buf_append(b, p, n);
}

int chan_send_snapshot(int chan, const struct buf *snap)
{
    if (snap->len > CHAN_MAX_FRAME) {
        return -1;
    }
    struct buf b;
    buf_init(&b);
    chan_frame(&b, snap->data, snap->len, false);
    int rc = chan_send_rest(chan, &b, 0);
    buf_free(&b);
    return rc;
}

int chan_send_client(int chan, int fd, const struct buf *state)
{
    if (state->len > CHAN_MAX_FRAME) {
        return CHAN_FAILED;
    }
    struct buf b;
    buf_init(&b);
    chan_frame(&b, state->data, state->len, true);
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } cm;
    memset(&cm, 0, sizeof(cm));
    struct iovec iov = {b.data, b.len};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof(cm.b)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t w = sendmsg(chan, &m, MSG_NOSIGNAL);
    int err = errno;
    if (w < 0 && (err == ETOOMANYREFS || err == ENOBUFS || err == ENOMEM)) {
        /* too many sockets in flight (RLIMIT_NOFILE) until the other side has
         * read them: nothing went, the next turn tries again */
        buf_free(&b);
        return CHAN_LATER;
    }
    /* the socket went with the first byte: the rest of the frame must follow,
     * or the channel is no use for anything more */
    int rc = w <= 0                                     ? CHAN_FAILED
             : chan_send_rest(chan, &b, (size_t)w) == 0 ? CHAN_SENT
                                                        : CHAN_SENT_FAILED;
    err = errno;
    buf_free(&b);
    if (rc != CHAN_SENT) {
        log_warn("binary upgrade: a client could not be handed over: %s", strerror(err));
    }
    return rc;
}
