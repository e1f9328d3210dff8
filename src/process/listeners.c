#include "process/listeners.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "net/sock.h"

struct listeners_want {
    const struct conf *conf;
    int nworkers;
};

/* The pool of conf listening where f does (listen or listen_tls_addr), and
 * that address in *addr; NULL when none does. */
static const struct conf_pool *listeners_pool_of(const struct conf *conf,
                                                 const struct upgrade_fd *f,
                                                 const struct conf_addr **addr)
{
    for (uint32_t i = 0; i < conf->npools; i++) {
        const struct conf_pool *cp = &conf->pools[i];
        const struct conf_addr *addrs[2] = {&cp->listen, &cp->listen_tls_addr};
        for (int k = 0; k < 2; k++) {
            const struct conf_addr *a = addrs[k];
            if (a->salen > 0 && upgrade_addr_same((const struct sockaddr *)&f->sa, f->salen,
                                                  (const struct sockaddr *)&a->sa, a->salen)) {
                *addr = a;
                return cp;
            }
        }
    }
    return NULL;
}

/* Whether f listens where worker f->worker should, per the configuration. */
static bool listeners_keep(void *ctx, const struct upgrade_fd *f)
{
    const struct listeners_want *w = ctx;
    if (f->taken) {
        return true;
    }
    if (f->worker < 0 || f->worker >= w->nworkers) {
        return false;
    }
    const struct conf_addr *a;
    return listeners_pool_of(w->conf, f, &a) != NULL && (a->path == NULL || f->worker == 0);
}

static bool listeners_has(const struct upgrade *up, int worker, const struct conf_addr *a)
{
    for (uint32_t i = 0; i < up->nfds; i++) {
        const struct upgrade_fd *f = &up->fds[i];
        if (f->worker == worker && upgrade_addr_same((const struct sockaddr *)&f->sa, f->salen,
                                                     (const struct sockaddr *)&a->sa, a->salen)) {
            return true;
        }
    }
    return false;
}

/* Whether f is a TCP socket of worker (a unix path is worker 0's alone: no
 * other worker would take its connections). */
static bool listeners_pausable(const struct upgrade_fd *f, int worker)
{
    return f->worker == worker && (f->sa.ss_family == AF_INET || f->sa.ss_family == AF_INET6);
}

bool listeners_pause(struct upgrade *up, int worker)
{
    bool unix_waits = false;
    for (uint32_t i = 0; i < up->nfds; i++) {
        const struct upgrade_fd *f = &up->fds[i];
        if (listeners_pausable(f, worker)) {
            shutdown(f->fd, SHUT_RD);
        } else if (f->worker == worker && f->sa.ss_family == AF_UNIX) {
            unix_waits = true;
        }
    }
    return unix_waits;
}

void listeners_resume(struct upgrade *up, const struct conf *conf, int worker)
{
    for (uint32_t i = 0; i < up->nfds; i++) {
        const struct upgrade_fd *f = &up->fds[i];
        const struct conf_addr *a;
        const struct conf_pool *cp = listeners_pool_of(conf, f, &a);
        if (listeners_pausable(f, worker) &&
            listen(f->fd, cp != NULL ? cp->backlog : SOMAXCONN) != 0) {
            log_warn("worker %d: cannot listen again on a socket of its: %s", worker,
                     strerror(errno));
        }
    }
}

void listeners_prune(struct upgrade *up, const struct conf *conf, int nworkers)
{
    struct listeners_want w = {conf, nworkers};
    upgrade_close_fds(up, 0, listeners_keep, &w);
}

/* A master replacing a single process: that process's socket on a becomes
 * worker 0's, with the connections waiting in it (whether the other workers
 * can bind beside it depends on its SO_REUSEPORT: the pool's reuseport). */
static bool listeners_adopt_single(struct upgrade *up, const struct conf_addr *a)
{
    for (uint32_t i = 0; i < up->nfds; i++) {
        struct upgrade_fd *f = &up->fds[i];
        if (f->worker < 0 && !f->taken &&
            upgrade_addr_same((const struct sockaddr *)&f->sa, f->salen,
                              (const struct sockaddr *)&a->sa, a->salen)) {
            f->worker = 0;
            return true;
        }
    }
    return false;
}

/* Worker w's socket on a, bound unless it has one; -1 when it cannot be. */
static int listeners_bind_one(struct upgrade *up, const struct conf_pool *cp,
                              const struct conf_addr *a, int w)
{
    if (a->salen == 0 || (a->path != NULL && w > 0) || listeners_has(up, w, a) ||
        (w == 0 && listeners_adopt_single(up, a))) {
        return 0;
    }
    int fd = sock_listen((const struct sockaddr *)&a->sa, a->salen, cp->backlog, true, a->perm);
    if (fd < 0 || upgrade_add(up, fd, w) != 0) {
        log_error("failed to listen on '%s' for pool '%s': %s", a->text, cp->name, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return 0;
}

int listeners_bind(struct upgrade *up, const struct conf *conf, int nworkers)
{
    for (int w = 0; w < nworkers; w++) {
        for (uint32_t i = 0; i < conf->npools; i++) {
            const struct conf_pool *cp = &conf->pools[i];
            if (listeners_bind_one(up, cp, &cp->listen, w) != 0 ||
                listeners_bind_one(up, cp, &cp->listen_tls_addr, w) != 0) {
                return -1;
            }
        }
    }
    listeners_prune(up, conf, nworkers);
    return 0;
}

static bool listeners_keep_taken(void *ctx, const struct upgrade_fd *f)
{
    (void)ctx;
    return f->taken; /* the stats and metrics sockets: owned by their servers */
}

void listeners_close(struct upgrade *up)
{
    upgrade_close_fds(up, 0, listeners_keep_taken, NULL);
}
