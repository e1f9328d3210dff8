#include "net/accept.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "net/sock.h"

static void accept_on_rested(struct ev_loop *loop, struct ev_timer *t)
{
    struct accept_rest *r = t->data;
    if (r->io->fd >= 0) {
        ev_io_set(loop, r->io, EV_READ);
    }
}

void accept_rest_init(struct accept_rest *r, struct ev_io *io)
{
    memset(r, 0, sizeof(*r));
    ev_timer_init(&r->timer, accept_on_rested, r);
    r->io = io;
}

void accept_rest_stop(struct ev_loop *loop, struct accept_rest *r)
{
    ev_timer_stop(loop, &r->timer);
}

static void accept_rest_start(struct ev_loop *loop, struct accept_rest *r, int err,
                              const char *what)
{
    uint64_t quiet = 0;
    ev_io_set(loop, r->io, 0);
    ev_timer_start(loop, &r->timer, ACCEPT_REST_MS);
    if (!log_gap_due(&r->log, ev_now(loop), ACCEPT_LOG_GAP_MS, &quiet)) {
        return;
    }
    char more[64];
    log_error("accept on %s failed: %s; it rests %d ms at a time until it succeeds%s", what,
              strerror(err), ACCEPT_REST_MS, log_gap_more(more, sizeof(more), quiet));
}

int accept_next(struct ev_loop *loop, struct accept_rest *r, int flags, const char *what,
                struct sockaddr_storage *peer, socklen_t *peer_len)
{
    for (;;) {
        if (peer != NULL) {
            *peer_len = sizeof(*peer);
        }
        int fd = accept4(r->io->fd, (struct sockaddr *)peer, peer_len, flags);
        if (fd >= 0) {
            return fd;
        }
        if (errno == EINTR || errno == ECONNABORTED) {
            continue;
        }
        if (sock_err_is_shortage(errno)) {
            accept_rest_start(loop, r, errno, what);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            log_error("accept on %s failed: %s", what, strerror(errno));
        }
        return -1;
    }
}
