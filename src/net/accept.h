/*
 * accept: taking connections off a listening socket, for every listener of the
 * program (pools, stats, metrics and status page, the upgrade socket).
 *
 * When the process is out of descriptors or memory, the connection stays in
 * the backlog and the socket stays readable: a level-triggered loop would call
 * back at once for the same connection, forever, at full CPU. So the listener
 * rests instead (its watcher off for ACCEPT_REST_MS, then on again), and the
 * log says so at most once every ACCEPT_LOG_GAP_MS, with how many rests it
 * left unsaid. The clients already connected are served all the while.
 *
 * A pool's listener also rests before the shortage: descriptors from fd_cap on
 * are kept for server connections, or clients already served would get "Too
 * many open files" from a server whose connection dropped. The connection that
 * found the cap waits, parked, and is given first once a descriptor under the
 * cap is free; the others wait in the backlog.
 */
#ifndef NC_ACCEPT_H
#define NC_ACCEPT_H

#include <stdbool.h>
#include <sys/socket.h>

#include "core/log.h"
#include "event/ev.h"

#define ACCEPT_REST_MS    100
#define ACCEPT_LOG_GAP_MS 10000

struct accept_rest {
    struct ev_timer timer; /* armed while the listener rests */
    struct ev_io *io;      /* the listener's watcher: it reads again when the rest ends */
    struct log_gap log;
    int fd_cap; /* a connection given a descriptor from this on waits (0: none); its
                   listener sets it before each accept_next */
    int parked; /* -1, or the connection that did: given once the lowest free
                   descriptor is under fd_cap */
    socklen_t parked_len;
    struct sockaddr_storage parked_peer;
};

/* For the listener watched by io (its fd may come later). */
void accept_rest_init(struct accept_rest *r, struct ev_io *io);
/* The next connection on the listener (accept4 with flags), or -1: none waits
 * (EAGAIN), the listener now rests (a shortage, or a connection at fd_cap:
 * logged, naming `what`), or another error (logged). EINTR and ECONNABORTED are skipped over. peer
 * (may be NULL) gets the peer's address, *peer_len its length: taken here, it is known even when
 * the peer has already gone (getpeername would fail). */
int accept_next(struct ev_loop *loop, struct accept_rest *r, int flags, const char *what,
                struct sockaddr_storage *peer, socklen_t *peer_len);
/* Before the listener is closed or handed on: no rest ends on it (a parked
 * connection is closed: it was sent nothing). */
void accept_rest_stop(struct ev_loop *loop, struct accept_rest *r);

#endif
