#include "process/upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "net/sock.h"
#include "process/notify.h"
#include "process/upgrade_chan.h"

#define UPGRADE_MAX_FDS 4096

/* ---- the registry of listening sockets ---- */

bool upgrade_addr_same(const struct sockaddr *a, socklen_t alen, const struct sockaddr *b,
                       socklen_t blen)
{
    if (a->sa_family != b->sa_family) {
        return false;
    }
    if (a->sa_family == AF_UNIX) {
        /* getsockname's length is the path's, the file's sizeof(sockaddr_un) */
        const struct sockaddr_un *x = (const void *)a, *y = (const void *)b;
        return alen > offsetof(struct sockaddr_un, sun_path) &&
               blen > offsetof(struct sockaddr_un, sun_path) &&
               strncmp(x->sun_path, y->sun_path, sizeof(x->sun_path)) == 0;
    }
    return sock_addr_same(a, b, alen < blen ? alen : blen);
}

int upgrade_add(struct upgrade *u, int fd, int worker)
{
    struct upgrade_fd *v = realloc(u->fds, (u->nfds + 1) * sizeof(*v));
    if (v == NULL) {
        return -1;
    }
    u->fds = v;
    struct upgrade_fd *f = &v[u->nfds];
    memset(f, 0, sizeof(*f));
    f->fd = fd;
    f->worker = worker;
    f->salen = sizeof(f->sa);
    if (getsockname(fd, (struct sockaddr *)&f->sa, &f->salen) != 0) {
        return -1;
    }
    u->nfds++;
    return 0;
}

int upgrade_take(struct upgrade *u, int worker, const struct sockaddr *sa, socklen_t salen)
{
    for (uint32_t i = 0; i < u->nfds; i++) {
        struct upgrade_fd *f = &u->fds[i];
        if (!f->taken && f->worker == worker &&
            upgrade_addr_same((const struct sockaddr *)&f->sa, f->salen, sa, salen)) {
            f->taken = true;
            return f->fd;
        }
    }
    return -1;
}

int upgrade_take_host(struct upgrade *u, int worker, const char *host, int port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (u->nfds == 0 || sock_resolve(host, port, SOCK_RESOLVE_PASSIVE, &ss, &len) != 0) {
        return -1;
    }
    return upgrade_take(u, worker, (const struct sockaddr *)&ss, len);
}

void upgrade_close_fds(struct upgrade *u, int worker,
                       bool (*keep)(void *ctx, const struct upgrade_fd *f), void *ctx)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < u->nfds; i++) {
        struct upgrade_fd *f = &u->fds[i];
        bool drop = keep != NULL ? !keep(ctx, f) : f->worker == worker && !f->taken;
        if (drop) {
            close(f->fd);
        } else {
            u->fds[n++] = *f;
        }
    }
    u->nfds = n;
}

/* "fd[@worker],..." from the old process: each must be a listening socket. */
static void upgrade_parse_fds(struct upgrade *u, const char *list)
{
    const char *p = list;
    while (*p != '\0' && u->nfds < UPGRADE_MAX_FDS) {
        char *end;
        long fd = strtol(p, &end, 10);
        long worker = -1;
        if (*end == '@') {
            worker = strtol(end + 1, &end, 10);
        }
        int listening = 0;
        socklen_t len = sizeof(listening);
        if (end == p || fd < 3 || fd > INT_MAX || worker < -1 || worker > 100000 ||
            getsockopt((int)fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
            log_warn("%s: '%s' is not a listening socket, ignored", UPGRADE_ENV_FDS, p);
        } else {
            fcntl((int)fd, F_SETFD, FD_CLOEXEC);
            if (upgrade_add(u, (int)fd, (int)worker) != 0) {
                close((int)fd);
            }
        }
        p = *end == ',' ? end + 1 : end + strlen(end);
    }
}

void upgrade_init(struct upgrade *u, int argc, char **argv, const char *pid_file)
{
    memset(u, 0, sizeof(*u));
    u->parent = u->child_fd = -1;
    u->argv = argv;
    u->pid_file = pid_file;
    buf_init(&u->parent_in);
    buf_init(&u->child_in);
    ev_io_init(&u->parent_io, -1, NULL, u);
    ev_io_init(&u->child_io, -1, NULL, u);
    (void)argc;
    /* the path we were started from, resolved now: after a package upgrade
     * /proc/self/exe names the deleted old file, this path the new one */
    if (realpath("/proc/self/exe", u->exe) == NULL) {
        snprintf(u->exe, sizeof(u->exe), "%s", argv[0]);
    }
    const char *fds = getenv(UPGRADE_ENV_FDS);
    const char *chan = getenv(UPGRADE_ENV_CHAN);
    const char *gen = getenv(UPGRADE_ENV_GEN);
    if (fds != NULL) {
        upgrade_parse_fds(u, fds);
    }
    if (chan != NULL) {
        int fd = atoi(chan);
        if (fd > 2 && fcntl(fd, F_GETFD) >= 0) {
            fcntl(fd, F_SETFD, FD_CLOEXEC);
            u->parent = fd;
            u->parent_generation = gen != NULL ? strtoull(gen, NULL, 10) : 0;
            u->replaced = getppid(); /* it forked us */
        }
    }
    unsetenv(UPGRADE_ENV_FDS);
    unsetenv(UPGRADE_ENV_CHAN);
    unsetenv(UPGRADE_ENV_GEN);
}

void upgrade_in_worker(struct upgrade *u)
{
    u->parent = u->child_fd = -1;
    u->parent_io.fd = u->child_io.fd = -1;
    u->child = 0;
    u->handed_over = false;
    u->loop = NULL;
    stats_snap_free(u->base);
    u->base = NULL;
}

bool upgrade_is_child(const struct upgrade *u)
{
    return u->parent >= 0;
}

/* ---- the new process: the old one's word ---- */

static void upgrade_close_parent(struct upgrade *u)
{
    if (u->parent >= 0) {
        if (u->loop != NULL && u->parent_io.fd >= 0) {
            ev_io_stop(u->loop, &u->parent_io);
        }
        close(u->parent);
        u->parent = -1;
        u->parent_io.fd = -1;
    }
    chan_fds_close(&u->parent_fds); /* their frames never came */
}

static void upgrade_on_snapshot(void *ctx, const uint8_t *p, size_t n)
{
    struct upgrade *u = ctx;
    struct stats_snap *s = stats_snap_decode(p, n);
    if (s != NULL) {
        stats_snap_free(u->base);
        u->base = s;
        if (u->hooks.counters != NULL) {
            u->hooks.counters(u->hooks.ctx);
        }
    }
}

static void upgrade_on_client(void *ctx, int fd, const uint8_t *p, size_t n)
{
    struct upgrade *u = ctx;
    if (u->hooks.client != NULL) {
        u->hooks.client(u->hooks.ctx, fd, p, n);
    } else {
        close(fd);
    }
}

static void upgrade_on_parent(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct upgrade *u = io->data;
    const struct chan_sink sink = {upgrade_on_snapshot, upgrade_on_client, u};
    (void)loop;
    (void)events;
    if (chan_read_all(u->parent, &u->parent_in, &u->parent_fds, &sink) != 0) {
        /* the old process is gone: its last counters are the ones we keep */
        log_notice("the replaced process has exited; its counters are carried on");
        upgrade_close_parent(u);
    }
}

void upgrade_serving(struct upgrade *u, bool adopts)
{
    if (u->parent < 0) {
        return;
    }
    char msg[48];
    int n = snprintf(msg, sizeof(msg), "R %d%s\n", (int)getpid(), adopts ? " clients" : "");
    if (write(u->parent, msg, (size_t)n) != n) {
        log_warn("cannot tell the replaced process that we serve: %s", strerror(errno));
    }
}

/* ---- the old process: the new binary's word ---- */

static void upgrade_close_child(struct upgrade *u)
{
    if (u->child_fd >= 0) {
        if (u->loop != NULL) {
            ev_io_stop(u->loop, &u->child_io);
        }
        close(u->child_fd);
        u->child_fd = -1;
        u->child_io.fd = -1;
    }
    if (u->loop != NULL) {
        ev_timer_stop(u->loop, &u->child_timer);
    }
    buf_reset(&u->child_in);
}

/* alive: the new process has not been reaped (else its pid may be another's now). */
static void upgrade_failed(struct upgrade *u, const char *why, bool alive)
{
    log_error("binary upgrade failed: the new process %d %s; this process (pid %d) keeps serving",
              (int)u->child, why, (int)getpid());
    notify_send("STATUS=binary upgrade failed: the new process %s; pid %d keeps serving", why,
                (int)getpid());
    if (u->child > 0 && alive) {
        kill(u->child, SIGKILL); /* reaped by the SIGCHLD handler */
    }
    upgrade_close_child(u);
    u->child = 0;
}

void upgrade_abandon(struct upgrade *u)
{
    if (u->child <= 0 || u->handed_over || u->abandoned) {
        return;
    }
    log_notice("binary upgrade abandoned: pid %d stops before the new process %d said it serves, "
               "which is told to stop too",
               (int)getpid(), (int)u->child);
    u->abandoned = true;
    kill(u->child, SIGTERM); /* it finishes whatever clients it took, as we do */
    upgrade_close_child(u);
}

/* Point the -p file at the new process: -k and init scripts find it there. */
static void upgrade_write_pid(const struct upgrade *u, int pid)
{
    if (u->pid_file == NULL) {
        return;
    }
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.new", u->pid_file);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%d", pid) < 0 || fclose(f) != 0 || rename(tmp, u->pid_file) != 0) {
        log_warn("cannot write pid %d to '%s': %s", pid, u->pid_file, strerror(errno));
    }
}

static void upgrade_on_child(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct upgrade *u = io->data;
    char tmp[256];
    (void)loop;
    (void)events;
    ssize_t n = read(u->child_fd, tmp, sizeof(tmp));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        upgrade_failed(u, "exited before serving (see its log)", true);
        return;
    }
    buf_append(&u->child_in, tmp, (size_t)n);
    const char *line = (const char *)u->child_in.data;
    const char *nl = memchr(line, '\n', u->child_in.len);
    if (nl == NULL) {
        return;
    }
    int pid = 0;
    if (sscanf(line, "R %d", &pid) != 1 || pid <= 0) {
        upgrade_failed(u, "said something else than that it serves", true);
        return;
    }
    /* an older binary says "R pid" alone: its clients are closed as before */
    u->child_adopts = memmem(line, (size_t)(nl - line), " clients", 8) != NULL;
    chan_blocking(u->child_fd); /* from now on it carries our counters and clients */
    ev_io_stop(u->loop, &u->child_io);
    ev_timer_stop(u->loop, &u->child_timer);
    u->handed_over = true;
    log_notice("binary upgrade: pid %d serves; pid %d stops accepting and finishes its clients",
               pid, (int)getpid());
    upgrade_write_pid(u, pid);
    u->hooks.handed_over(u->hooks.ctx);
}

static void upgrade_on_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    (void)loop;
    upgrade_failed(t->data, "did not say it serves in time", true);
}

void upgrade_attach(struct upgrade *u, struct ev_loop *loop, const struct upgrade_hooks *hooks)
{
    u->loop = loop;
    u->hooks = *hooks;
    ev_timer_init(&u->child_timer, upgrade_on_timeout, u);
    if (u->parent >= 0) {
        fcntl(u->parent, F_SETFL, fcntl(u->parent, F_GETFL) | O_NONBLOCK);
        ev_io_init(&u->parent_io, u->parent, upgrade_on_parent, u);
        ev_io_set(loop, &u->parent_io, EV_READ);
    }
}

/* In the forked child: only the sockets handed over and the channel survive exec. */
static void upgrade_exec(struct upgrade *u, const struct upgrade_fd *fds, uint32_t n, int chan,
                         uint64_t generation)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL); /* signalfd blocked them; exec keeps the mask */
    close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
    struct buf list;
    buf_init(&list);
    for (uint32_t i = 0; i < n; i++) {
        fcntl(fds[i].fd, F_SETFD, 0);
        if (fds[i].worker >= 0) {
            buf_printf(&list, "%s%d@%d", i ? "," : "", fds[i].fd, fds[i].worker);
        } else {
            buf_printf(&list, "%s%d", i ? "," : "", fds[i].fd);
        }
    }
    buf_append(&list, "", 1);
    fcntl(chan, F_SETFD, 0);
    char num[32];
    setenv(UPGRADE_ENV_FDS, (const char *)list.data, 1);
    snprintf(num, sizeof(num), "%d", chan);
    setenv(UPGRADE_ENV_CHAN, num, 1);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)generation);
    setenv(UPGRADE_ENV_GEN, num, 1);
    execv(u->exe, u->argv);
    fprintf(stderr, "nutcracker: upgrade: cannot execute '%s': %s\n", u->exe, strerror(errno));
    _exit(127);
}

int upgrade_start(struct upgrade *u, const struct upgrade_fd *fds, uint32_t n, uint64_t generation)
{
    if (u->child != 0 || u->handed_over) {
        log_warn("binary upgrade: %s", u->handed_over ? "this process has already handed over"
                                                      : "one is already under way");
        return -1;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        log_error("binary upgrade: socketpair: %s", strerror(errno));
        return -1;
    }
    /* before the fork: the new process may well say READY=1 before this one
     * runs again, and systemd must hear the two in this order */
    notify_send("STATUS=binary upgrade: starting %s", u->exe);
    pid_t pid = fork();
    if (pid < 0) {
        log_error("binary upgrade: fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        close(sv[0]);
        upgrade_exec(u, fds, n, sv[1], generation);
    }
    close(sv[1]);
    u->child = pid;
    u->child_fd = sv[0];
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    ev_io_init(&u->child_io, sv[0], upgrade_on_child, u);
    ev_io_set(u->loop, &u->child_io, EV_READ);
    ev_timer_start(u->loop, &u->child_timer, UPGRADE_WAIT_MS);
    log_notice("binary upgrade: started '%s' as pid %d with %u listening sockets", u->exe, (int)pid,
               n);
    return 0;
}

void upgrade_send_counters(struct upgrade *u, const struct stats_snap *s)
{
    struct buf b;
    buf_init(&b);
    if (u->child_fd >= 0 && s != NULL && stats_snap_encode(s, &b) == 0) {
        chan_send_snapshot(u->child_fd, &b);
    }
    buf_free(&b);
}

bool upgrade_takes_clients(const struct upgrade *u)
{
    return u->handed_over && u->child_fd >= 0 && u->child_adopts;
}

int upgrade_pass_client(struct upgrade *u, int fd, const struct buf *state)
{
    if (!upgrade_takes_clients(u)) {
        return CHAN_FAILED;
    }
    int rc = chan_send_client(u->child_fd, fd, state);
    if (rc == CHAN_FAILED || rc == CHAN_SENT_FAILED) {
        u->child_adopts = false; /* the others are closed behind their replies */
    }
    return rc;
}

bool upgrade_reap(struct upgrade *u, pid_t pid, int status)
{
    if (u->child == 0 || pid != u->child) {
        return false;
    }
    if (u->abandoned) {
        log_notice("binary upgrade: the new process %d has stopped", (int)pid);
        u->child = 0;
    } else if (!u->handed_over) {
        char why[64];
        snprintf(why, sizeof(why),
                 WIFSIGNALED(status) ? "was killed by signal %d" : "exited with %d",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        upgrade_failed(u, why, false);
    } else {
        log_warn("binary upgrade: the new process %d has exited", (int)pid);
        u->child = 0;
    }
    return true;
}

void upgrade_detach(struct upgrade *u)
{
    if (u->loop == NULL) {
        return;
    }
    ev_io_stop(u->loop, &u->child_io);
    ev_io_stop(u->loop, &u->parent_io);
    ev_timer_stop(u->loop, &u->child_timer);
    u->loop = NULL;
}

void upgrade_deinit(struct upgrade *u)
{
    upgrade_detach(u);
    if (u->child_fd >= 0) {
        close(u->child_fd);
        u->child_fd = -1;
    }
    upgrade_close_parent(u);
    for (uint32_t i = 0; i < u->nfds; i++) {
        if (!u->fds[i].taken) {
            close(u->fds[i].fd);
        }
    }
    free(u->fds);
    u->fds = NULL;
    u->nfds = 0;
    stats_snap_free(u->base);
    u->base = NULL;
    buf_free(&u->parent_in);
    buf_free(&u->child_in);
}
