#include "net/accept.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/sock.h"

static void accept_on_rested(struct ev_loop *loop, struct ev_timer *t)
{
    struct accept_rest *r = t->data;
    if (r->io->fd < 0) {
        return;
    }
    ev_io_set(loop, r->io, EV_READ);
    if (r->parked >= 0) {
        r->io->fn(loop, r->io, EV_READ); /* it waits even if the backlog is empty */
    }
}

void accept_rest_init(struct accept_rest *r, struct ev_io *io)
{
    memset(r, 0, sizeof(*r));
    ev_timer_init(&r->timer, accept_on_rested, r);
    r->io = io;
    r->parked = -1;
}

void accept_rest_stop(struct ev_loop *loop, struct accept_rest *r)
{
    ev_timer_stop(loop, &r->timer);
    if (r->parked >= 0) {
        close(r->parked);
        r->parked = -1;
    }
}

/* The listener rests; the log says why (at most once a gap). */
static void accept_rest_start(struct ev_loop *loop, struct accept_rest *r, const char *why,
                              const char *what)
{
    uint64_t quiet = 0;
    ev_io_set(loop, r->io, 0);
    ev_timer_start(loop, &r->timer, ACCEPT_REST_MS);
    if (!log_gap_due(&r->log, ev_now(loop), ACCEPT_LOG_GAP_MS, &quiet)) {
        return;
    }
    char more[64];
    log_error("accept on %s %s; it rests %d ms at a time until it succeeds%s", what, why,
              ACCEPT_REST_MS, log_gap_more(more, sizeof(more), quiet));
}

/* Whether the lowest free descriptor is under cap (the kernel gives the
 * lowest: a socket opened now would get it). */
static bool accept_fd_free_under(int lfd, int cap)
{
    int probe = fcntl(lfd, F_DUPFD_CLOEXEC, 0);
    if (probe < 0) {
        return false;
    }
    close(probe);
    return probe < cap;
}

/* fd reached the cap: it waits, and the listener rests until a descriptor
 * under the cap is free. */
static void accept_park(struct ev_loop *loop, struct accept_rest *r, int fd,
                        const struct sockaddr_storage *peer, socklen_t peer_len, const char *what)
{
    char why[160];
    r->parked = fd;
    r->parked_len = peer != NULL ? peer_len : 0;
    if (peer != NULL) {
        memcpy(&r->parked_peer, peer, peer_len);
    }
    snprintf(why, sizeof(why),
             "waits: descriptor %d reached %d, and the rest of the open files limit is kept "
             "for server connections",
             fd, r->fd_cap);
    accept_rest_start(loop, r, why, what);
}

/* The parked connection, once a descriptor under the cap (as the listener sets
 * it now) is free; else -1 and the listener rests on. */
static int accept_unpark(struct ev_loop *loop, struct accept_rest *r, const char *what,
                         struct sockaddr_storage *peer, socklen_t *peer_len)
{
    if (r->fd_cap > 0 && !accept_fd_free_under(r->io->fd, r->fd_cap)) {
        char why[160];
        snprintf(why, sizeof(why), "waits: the descriptors under %d are all in use", r->fd_cap);
        accept_rest_start(loop, r, why, what);
        return -1;
    }
    int fd = r->parked;
    r->parked = -1;
    if (peer != NULL) {
        memcpy(peer, &r->parked_peer, r->parked_len);
        *peer_len = r->parked_len;
    }
    return fd;
}

int accept_next(struct ev_loop *loop, struct accept_rest *r, int flags, const char *what,
                struct sockaddr_storage *peer, socklen_t *peer_len)
{
    if (r->parked >= 0) {
        return accept_unpark(loop, r, what, peer, peer_len);
    }
    for (;;) {
        if (peer != NULL) {
            *peer_len = sizeof(*peer);
        }
        int fd = accept4(r->io->fd, (struct sockaddr *)peer, peer_len, flags);
        if (fd >= 0 && r->fd_cap > 0 && fd >= r->fd_cap) {
            accept_park(loop, r, fd, peer, peer != NULL ? *peer_len : 0, what);
            return -1;
        }
        if (fd >= 0) {
            return fd;
        }
        if (errno == EINTR || errno == ECONNABORTED) {
            continue;
        }
        if (sock_err_is_shortage(errno)) {
            char why[160];
            snprintf(why, sizeof(why), "failed: %s", strerror(errno));
            accept_rest_start(loop, r, why, what);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            log_error("accept on %s failed: %s", what, strerror(errno));
        }
        return -1;
    }
}
