#include "process/adopt.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"

struct adopt_conn {
    struct adopt *a;
    struct ev_io io;
    struct buf in;
    struct chan_fds fds;
    struct adopt_conn *next;
};

/* "\0nutcracker-adopt-<pid>-<worker>": abstract, so nothing is left on disk. */
static socklen_t adopt_name(struct sockaddr_un *sa, pid_t master, int worker)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    int n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "nutcracker-adopt-%d-%d",
                     (int)master, worker);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static void adopt_conn_close(struct adopt_conn *c)
{
    struct adopt *a = c->a;
    for (struct adopt_conn **p = &a->conns; *p != NULL; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    ev_io_stop(a->loop, &c->io);
    close(c->io.fd);
    chan_fds_close(&c->fds);
    buf_free(&c->in);
    free(c);
}

static void adopt_on_conn(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct adopt_conn *c = io->data;
    (void)loop;
    (void)events;
    if (chan_read_all(c->io.fd, &c->in, &c->fds, &c->a->sink) != 0) {
        adopt_conn_close(c); /* the old worker is done */
    }
}

/* A peer of another user could claim a logged-in client: it is not heard. */
static bool adopt_peer_ok(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == geteuid();
}

static void adopt_on_accept(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct adopt *a = io->data;
    (void)events;
    const char *what = "the socket that takes the replaced binary's clients";
    int fd;
    while ((fd = accept_next(loop, &a->rest, SOCK_NONBLOCK | SOCK_CLOEXEC, what, NULL, NULL)) >=
           0) {
        struct adopt_conn *c = adopt_peer_ok(fd) ? calloc(1, sizeof(*c)) : NULL;
        if (c == NULL) {
            log_warn("binary upgrade: a connection to take clients from refused");
            close(fd);
            continue;
        }
        c->a = a;
        buf_init(&c->in);
        ev_io_init(&c->io, fd, adopt_on_conn, c);
        ev_io_set(loop, &c->io, EV_READ);
        c->next = a->conns;
        a->conns = c;
    }
}

static void adopt_stop_listening(struct adopt *a)
{
    if (a->io.fd >= 0) {
        ev_io_stop(a->loop, &a->io);
        close(a->io.fd);
        a->io.fd = -1;
    }
    accept_rest_stop(a->loop, &a->rest);
    ev_timer_stop(a->loop, &a->expire);
}

static void adopt_on_expire(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    adopt_stop_listening(t->data); /* connections made go on */
}

int adopt_listen(struct adopt *a, struct ev_loop *loop, pid_t replaced, int worker,
                 const struct chan_sink *sink)
{
    memset(a, 0, sizeof(*a));
    a->loop = loop;
    a->sink = *sink;
    ev_io_init(&a->io, -1, adopt_on_accept, a);
    accept_rest_init(&a->rest, &a->io);
    ev_timer_init(&a->expire, adopt_on_expire, a);
    struct sockaddr_un sa;
    socklen_t len = adopt_name(&sa, replaced, worker);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, len) != 0 || listen(fd, 16) != 0) {
        log_warn("worker %d: cannot listen for the clients of the replaced binary: %s", worker,
                 strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    a->io.fd = fd;
    ev_io_set(loop, &a->io, EV_READ);
    ev_timer_start(loop, &a->expire, ADOPT_LISTEN_MS);
    return 0;
}

void adopt_close(struct adopt *a)
{
    if (a->loop == NULL) {
        return;
    }
    adopt_stop_listening(a);
    while (a->conns != NULL) {
        adopt_conn_close(a->conns);
    }
    a->loop = NULL;
}

int adopt_connect(pid_t master, int worker)
{
    struct sockaddr_un sa;
    socklen_t len = adopt_name(&sa, master, worker);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, len) != 0) {
        close(fd); /* an older binary, or no worker of that number */
        return -1;
    }
    chan_blocking(fd);
    return fd;
}
