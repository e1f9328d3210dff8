/*
 * upgrade_chan: the frames on the socketpair between the replaced process and
 * the new one (upgrade.h has the whole exchange). Old side: its counters, and
 * its clients' sockets (SCM_RIGHTS) with their state; new side: reading them
 * back, each socket matched with the frame it came with.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "process/upgrade.h"
#include "process/upgrade_int.h"

#define UPGRADE_CLIENT 0x80000000u /* a frame's length word: a client's state */

/* ---- the new process ---- */

/* The oldest client socket received whose frame was not read yet, or -1. */
static int upgrade_parent_fd(struct upgrade *u)
{
    if (u->parent_fd_head == u->nparent_fds) {
        return -1;
    }
    int fd = u->parent_fds[u->parent_fd_head++];
    if (u->parent_fd_head == u->nparent_fds) {
        u->parent_fd_head = u->nparent_fds = 0; /* all matched: start over */
    }
    return fd;
}

static void upgrade_parent_client(struct upgrade *u, const uint8_t *p, size_t n)
{
    int fd = upgrade_parent_fd(u);
    if (fd < 0) {
        log_warn("binary upgrade: a client's state came without its socket");
    } else if (u->hooks.client != NULL) {
        u->hooks.client(u->hooks.ctx, fd, p, n);
    } else {
        close(fd);
    }
}

/* Each frame: a 4-byte big-endian length, then an encoded snapshot, or with
 * the length's top bit a client's state. */
void upgrade_parent_frames(struct upgrade *u)
{
    struct buf *in = &u->parent_in;
    size_t off = 0;
    while (in->len - off >= 4) {
        const uint8_t *p = in->data + off;
        uint32_t word = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        uint32_t n = word & ~UPGRADE_CLIENT;
        if (n > UPGRADE_MAX_FRAME) {
            off = in->len; /* nonsense: drop it all */
            break;
        }
        if (in->len - off - 4 < n) {
            break;
        }
        if (word & UPGRADE_CLIENT) {
            upgrade_parent_client(u, p + 4, n);
        } else {
            struct stats_snap *s = stats_snap_decode(p + 4, n);
            if (s != NULL) {
                stats_snap_free(u->base);
                u->base = s;
            }
        }
        off += 4 + (size_t)n;
    }
    buf_consume(in, off);
}

static void upgrade_keep_fd(struct upgrade *u, int fd)
{
    if (u->nparent_fds == u->cparent_fds) {
        uint32_t cap = u->cparent_fds ? 2 * u->cparent_fds : 16;
        int *v = realloc(u->parent_fds, cap * sizeof(int));
        if (v == NULL) {
            close(fd); /* its client sees the connection closed */
            return;
        }
        u->parent_fds = v;
        u->cparent_fds = cap;
    }
    u->parent_fds[u->nparent_fds++] = fd;
}

/* read() from the channel, keeping the client sockets that come with it. */
ssize_t upgrade_parent_read(struct upgrade *u, uint8_t *p, size_t cap)
{
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(8 * sizeof(int))];
    } cm;
    struct iovec iov = {p, cap};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof(cm.b)};
    ssize_t n = recvmsg(u->parent, &m, MSG_CMSG_CLOEXEC);
    for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&m) : NULL; c != NULL; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < nfd; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            upgrade_keep_fd(u, fd);
        }
    }
    return n;
}

void upgrade_parent_fds_close(struct upgrade *u)
{
    int fd;
    while ((fd = upgrade_parent_fd(u)) >= 0) {
        close(fd);
    }
}

/* ---- the old process ---- */

/* The channel to the new process, blocking: what goes there is small and the
 * new process reads it on its loop, so blocking is fine, bounded by a send
 * timeout should it hang. */
static int upgrade_child_blocking(struct upgrade *u)
{
    int fd = u->child_fd;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

static void upgrade_put_len(uint8_t *p, uint32_t word)
{
    p[0] = (uint8_t)(word >> 24);
    p[1] = (uint8_t)(word >> 16);
    p[2] = (uint8_t)(word >> 8);
    p[3] = (uint8_t)word;
}

/* Send all of b from off on (the first bytes may have gone already). */
static int upgrade_send_rest(int fd, const struct buf *b, size_t off)
{
    while (off < b->len) {
        ssize_t w = send(fd, b->data + off, b->len - off, MSG_NOSIGNAL);
        if (w <= 0) {
            return -1;
        }
        off += (size_t)w;
    }
    return 0;
}

void upgrade_send_counters(struct upgrade *u, const struct stats_snap *s)
{
    if (u->child_fd < 0 || s == NULL) {
        return;
    }
    struct buf b;
    buf_init(&b);
    uint8_t len[4] = {0};
    buf_append(&b, len, 4);
    if (stats_snap_encode(s, &b) == 0 && b.len - 4 <= UPGRADE_MAX_FRAME) {
        upgrade_put_len(b.data, (uint32_t)(b.len - 4));
        upgrade_send_rest(upgrade_child_blocking(u), &b, 0);
    }
    buf_free(&b);
}

bool upgrade_takes_clients(const struct upgrade *u)
{
    return u->handed_over && u->child_fd >= 0 && u->child_adopts;
}

int upgrade_pass_client(struct upgrade *u, int fd, const struct buf *state)
{
    if (!upgrade_takes_clients(u) || state->len > UPGRADE_MAX_FRAME) {
        return -1;
    }
    struct buf b;
    buf_init(&b);
    uint8_t len[4];
    upgrade_put_len(len, (uint32_t)state->len | UPGRADE_CLIENT);
    buf_append(&b, len, 4);
    buf_append(&b, state->data, state->len);
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
    int chan = upgrade_child_blocking(u);
    ssize_t w = sendmsg(chan, &m, MSG_NOSIGNAL);
    if (w < 0 && (errno == ETOOMANYREFS || errno == ENOBUFS || errno == ENOMEM)) {
        /* too many sockets in flight (RLIMIT_NOFILE) until the new process
         * has read them: nothing went, the next turn tries again */
        buf_free(&b);
        return 1;
    }
    /* the socket went with the first byte: the rest of the frame must follow,
     * or the channel is no use for anything more */
    int rc = w <= 0 ? -1 : upgrade_send_rest(chan, &b, (size_t)w) == 0 ? 0 : 2;
    buf_free(&b);
    if (rc != 0) {
        log_warn("binary upgrade: a client could not be handed over: %s", strerror(errno));
        u->child_adopts = false; /* the others are closed behind their replies */
    }
    return rc < 0 ? -1 : 0;
}
