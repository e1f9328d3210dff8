#include "process/master.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "process/listeners.h"
#include "process/notify.h"
#include "net/sock.h"
#include "process/signals.h"
#include "process/upgrade.h"
#include "process/worker.h"
#include "stats/metrics.h"
#include "stats/slot.h"
#include "stats/snap.h"
#include "stats/stats.h"

#define SLOT_BYTES          (32u << 20) /* per worker; pages never written cost nothing */
#define START_WAIT_MS       10000       /* a first worker that is not serving by then failed */
#define RESTART_MIN_MS      100
#define RESTART_MAX_MS      10000
#define STABLE_MS           5000 /* a worker that lived this long restarts at once */
#define STOP_GRACE_EXTRA_MS 5000

struct master;

struct worker {
    struct master *m;
    int id;
    pid_t pid; /* 0: not running */
    uint64_t started_ms;
    int64_t started_wall_ms; /* for the status page */
    uint32_t restarts;
    uint64_t backoff_ms;
    bool paused; /* its sockets out of their groups while it waits (listeners.h) */
    struct ev_timer restart;
    struct stats_snap *last; /* the last consistent read of its slot */
};

struct master {
    struct options opts;
    struct conf *conf; /* the generation workers start with (a reference) */
    struct ev_loop *loop;
    pid_t pid;
    struct worker *workers;
    int nworkers;
    struct stats_slots *slots;
    struct stats_snap *gone; /* counters of exited workers: totals never go back */
    struct stats *stats;
    struct metrics *metrics;
    struct stats_source src;
    /* the generation the workers have once they applied the file the master
     * passed on (see instance.h); a file the master refused never reached them */
    uint64_t generation;
    uint64_t reload_failures;
    uint8_t last_reload;
    int64_t last_reload_ms;
    struct signals sig;
    bool stopping;
    struct ev_timer stop_timer;
    struct upgrade *up; /* the workers' listeners, and the binary upgrade */
};

int master_workers(const struct conf_global *g)
{
    if (g->worker_processes >= 0) {
        return g->worker_processes;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static int64_t master_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The workers as the status page lists them. */
static void master_collect_workers(struct master *m, struct stats_snap *sum)
{
    sum->workers = calloc((size_t)m->nworkers, sizeof(*sum->workers));
    if (sum->workers == NULL) {
        return;
    }
    sum->nworkers = (uint32_t)m->nworkers;
    for (int i = 0; i < m->nworkers; i++) {
        const struct worker *w = &m->workers[i];
        sum->workers[i] = (struct stats_worker_snap){.id = w->id,
                                                     .pid = (int)w->pid,
                                                     .started_ms = w->started_wall_ms,
                                                     .restarts = w->restarts};
    }
}

/* The stats port's numbers: what every worker published, plus the past. */
static struct stats_snap *master_collect(void *ctx)
{
    struct master *m = ctx;
    struct stats_snap *sum = stats_snap_of_conf(m->conf);
    if (sum == NULL) {
        return NULL;
    }
    stats_snap_add(sum, m->gone, true);
    if (m->up->base != NULL) {
        stats_snap_add(sum, m->up->base, true); /* the replaced binary's counts go on */
    }
    for (int i = 0; i < m->nworkers; i++) {
        struct worker *w = &m->workers[i];
        struct stats_snap *s = stats_slot_read(m->slots, (uint32_t)i);
        if (s != NULL) {
            stats_snap_free(w->last);
            w->last = s;
        }
        if (w->last != NULL) {
            stats_snap_add(sum, w->last, false);
        }
    }
    /* a file the master refused never reached a worker */
    sum->reload_failures += m->reload_failures;
    if (m->last_reload == STATS_RELOAD_FAILED || sum->generation == 0) {
        sum->last_reload = m->last_reload;
        sum->generation = sum->generation == 0 ? m->generation : sum->generation;
    }
    if (m->last_reload_ms > sum->last_reload_ms) {
        sum->last_reload_ms = m->last_reload_ms;
    }
    master_collect_workers(m, sum);
    return sum;
}

/* Keep the counters of a worker that is gone, then empty its slot for the next.
 * A worker killed in the middle of a publish leaves a torn slot: then the last
 * consistent snapshot read from it stands in. */
static void master_fold_slot(struct master *m, struct worker *w)
{
    struct stats_snap *s = stats_slot_read(m->slots, (uint32_t)w->id);
    if (s != NULL) {
        stats_snap_free(w->last);
        w->last = s;
    }
    if (w->last != NULL) {
        stats_snap_add(m->gone, w->last, true);
        stats_snap_free(w->last);
        w->last = NULL;
    }
    stats_slot_clear(m->slots, (uint32_t)w->id);
}

static int master_int_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* In the child: nothing of the master's but the log, the ready pipe and the
 * worker's own listeners stays open. */
static void master_child_close_fds(struct master *m, int id, int ready_fd)
{
    int *keep = malloc((m->up->nfds + 2) * sizeof(*keep));
    int n = 0;
    if (keep == NULL) {
        _exit(1);
    }
    keep[n++] = log_fd();
    keep[n++] = ready_fd;
    for (uint32_t i = 0; i < m->up->nfds; i++) {
        if (m->up->fds[i].worker == id) {
            keep[n++] = m->up->fds[i].fd;
        }
    }
    qsort(keep, (size_t)n, sizeof(*keep), master_int_cmp);
    unsigned from = 3;
    for (int i = 0; i < n; i++) {
        if (keep[i] >= (int)from) {
            if ((unsigned)keep[i] > from) {
                close_range(from, (unsigned)keep[i] - 1, 0);
            }
            from = (unsigned)keep[i] + 1;
        }
    }
    close_range(from, ~0u, 0);
    free(keep);
}

static void master_child(struct master *m, struct worker *w, int ready_fd)
{
    /* a master that dies takes its workers with it */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != m->pid) {
        _exit(1);
    }
    master_child_close_fds(m, w->id, ready_fd);
    upgrade_in_worker(m->up);
    /* the master's signals stay blocked: one sent before the worker reads its
     * own signalfd waits there instead of killing it */
    /* the parent's memory is ours too but none of it is used: _exit, no cleanup */
    _exit(worker_main(&m->opts, m->conf, m->generation, w->id, m->slots, ready_fd, m->up));
}

static int master_spawn(struct master *m, struct worker *w, int ready_fd)
{
    pid_t pid = fork();
    if (pid < 0) {
        log_error("cannot start worker %d: %s", w->id, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        master_child(m, w, ready_fd);
    }
    if (w->started_ms != 0) {
        w->restarts++;
    }
    w->pid = pid;
    w->started_ms = ev_now_update(m->loop);
    w->started_wall_ms = master_wall_ms();
    log_notice("worker %d started on pid %d", w->id, (int)pid);
    return 0;
}

static int master_running(const struct master *m)
{
    int n = 0;
    for (int i = 0; i < m->nworkers; i++) {
        n += m->workers[i].pid != 0;
    }
    return n;
}

/* Worker w's sockets listen in their groups again (see listeners.h). */
static void master_resume(struct master *m, struct worker *w)
{
    if (w->paused) {
        listeners_resume(m->up, m->conf, w->id);
        w->paused = false;
    }
}

static void master_on_restart(struct ev_loop *loop, struct ev_timer *t)
{
    struct worker *w = t->data;
    (void)loop;
    master_resume(w->m, w);
    if (!w->m->stopping && w->pid == 0 && master_spawn(w->m, w, -1) != 0) {
        ev_timer_start(loop, t, w->backoff_ms);
    }
}

static void master_schedule_restart(struct master *m, struct worker *w)
{
    uint64_t lived = ev_now_update(m->loop) - w->started_ms;
    if (lived >= STABLE_MS || w->backoff_ms == 0) {
        w->backoff_ms = RESTART_MIN_MS;
    } else if (w->backoff_ms < RESTART_MAX_MS) {
        w->backoff_ms = w->backoff_ms * 2 > RESTART_MAX_MS ? RESTART_MAX_MS : w->backoff_ms * 2;
    }
    /* the first restart is at once, and serves what waits in the queue; a
     * worker that keeps dying leaves its new connections to the others */
    bool unix_waits = false;
    if (w->backoff_ms > RESTART_MIN_MS && master_running(m) > 0) {
        unix_waits = listeners_pause(m->up, w->id);
        w->paused = true;
    }
    log_warn("worker %d restarts in %llu ms%s%s", w->id, (unsigned long long)w->backoff_ms,
             w->paused ? "; the other workers take its new TCP connections meanwhile" : "",
             unix_waits ? "; clients of its unix sockets wait for it" : "");
    ev_timer_start(m->loop, &w->restart, w->backoff_ms);
}

static struct worker *master_worker_of(struct master *m, pid_t pid)
{
    for (int i = 0; i < m->nworkers; i++) {
        if (m->workers[i].pid == pid) {
            return &m->workers[i];
        }
    }
    return NULL;
}

static void master_log_exit(const struct worker *w, pid_t pid, int status)
{
    if (WIFSIGNALED(status)) {
        log_warn("worker %d (pid %d) killed by signal %d", w->id, (int)pid, WTERMSIG(status));
    } else {
        log_notice("worker %d (pid %d) exited with status %d", w->id, (int)pid,
                   WEXITSTATUS(status));
    }
}

static void master_reap(struct master *m)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct worker *w = master_worker_of(m, pid);
        if (w == NULL) {
            upgrade_reap(m->up, pid, status); /* the new binary, if it was that */
            continue;
        }
        master_log_exit(w, pid, status);
        w->pid = 0;
        master_fold_slot(m, w);
        if (!m->stopping) {
            master_schedule_restart(m, w);
        }
    }
    if (m->stopping && master_running(m) == 0) {
        ev_loop_stop(m->loop);
    }
}

static void master_signal_workers(struct master *m, int sig)
{
    for (int i = 0; i < m->nworkers; i++) {
        if (m->workers[i].pid != 0) {
            kill(m->workers[i].pid, sig);
        }
    }
}

static void master_on_stop_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    struct master *m = t->data;
    (void)loop;
    log_warn("workers still running after the shutdown timeout: killing them");
    master_signal_workers(m, SIGKILL);
}

static void master_stop(struct master *m)
{
    if (m->stopping) {
        return;
    }
    m->stopping = true;
    notify_send("STOPPING=1\nSTATUS=stopping: workers finish their clients");
    upgrade_abandon(m->up);
    /* the workers close theirs: with ours closed too a connect is refused at
     * once rather than left waiting in a queue nobody serves */
    listeners_close(m->up);
    for (int i = 0; i < m->nworkers; i++) {
        ev_timer_stop(m->loop, &m->workers[i].restart);
    }
    master_signal_workers(m, SIGTERM);
    uint64_t grace = (uint64_t)m->conf->global.worker_shutdown_timeout * 1000u;
    ev_timer_start(m->loop, &m->stop_timer, grace + STOP_GRACE_EXTRA_MS);
    if (master_running(m) == 0) {
        ev_loop_stop(m->loop);
    }
}

/* Whether path is a unix listen path of conf (its listener is kept). */
static bool master_has_path(const struct conf *conf, const char *path)
{
    for (uint32_t i = 0; i < conf->npools; i++) {
        const struct conf_pool *cp = &conf->pools[i];
        if ((cp->listen.path != NULL && strcmp(cp->listen.path, path) == 0) ||
            (cp->listen_tls_addr.path != NULL && strcmp(cp->listen_tls_addr.path, path) == 0)) {
            return true;
        }
    }
    return false;
}

/* Every listen address of next can be bound by the workers (a port another
 * program holds cannot): else the workers would refuse the file one by one,
 * and a worker restarted later could not start with it. A new unix path is
 * worker 0's alone to bind: the others would apply a file worker 0 refused
 * (and retire the pool it names, closing its clients), so its directory is
 * checked here. */
static bool master_can_listen(const struct conf *cur, const struct conf *next)
{
    for (uint32_t k = 0; k < 2 * next->npools; k++) {
        const struct conf_pool *cp = &next->pools[k / 2];
        const struct conf_addr *a = k % 2 == 0 ? &cp->listen : &cp->listen_tls_addr;
        if (k % 2 == 1 && a->text == NULL) {
            continue;
        }
        int rc;
        if (a->path != NULL) {
            rc = master_has_path(cur, a->path) ? 0 : sock_path_probe(a->path);
        } else {
            rc = a->salen == 0 ? -1 : sock_bind_probe((const struct sockaddr *)&a->sa, a->salen);
        }
        if (rc != 0) {
            log_error("reload: cannot listen on '%s' for pool '%s': %s; the running "
                      "configuration stays",
                      a->text, cp->name,
                      a->path == NULL && a->salen == 0 ? "cannot resolve it" : strerror(errno));
            return false;
        }
    }
    return true;
}

static void master_reload_failed(struct master *m)
{
    m->reload_failures++;
    m->last_reload = STATS_RELOAD_FAILED;
    m->last_reload_ms = master_wall_ms();
}

static void master_notify_status(struct master *m, const char *head)
{
    char status[256];
    notify_status_text(status, sizeof(status), m->generation, m->last_reload,
                       m->last_reload ? m->last_reload_ms : (int64_t)m->src.start_time * 1000,
                       m->conf->npools, m->nworkers);
    notify_send("%sSTATUS=%s", head, status);
}

/* SIGHUP: only a file that loads goes to the workers; each applies it in place. */
static void master_reload(void *ctx)
{
    struct master *m = ctx;
    const char *path = m->opts.conf_file;
    if (m->stopping) {
        return;
    }
    notify_send("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the configuration",
                (unsigned long long)notify_monotonic_us());
    struct conf_errors errs;
    conf_errors_init(&errs);
    struct conf *next = conf_reload(path, &errs);
    for (uint32_t i = 0; i < errs.n; i++) {
        log_error("%s", errs.msgs[i]);
    }
    conf_errors_free(&errs);
    if (next != NULL && !master_can_listen(m->conf, next)) {
        conf_unref(next);
        master_reload_failed(m);
        return;
    }
    struct stats_snap *gone = next != NULL ? stats_snap_of_conf(next) : NULL;
    if (gone == NULL) {
        log_error("reload: configuration file '%s' is invalid; the running configuration stays",
                  path);
        if (next != NULL) {
            conf_unref(next);
        }
        master_reload_failed(m);
        master_notify_status(m, "READY=1\n");
        return;
    }
    stats_snap_add(gone, m->gone, true);
    stats_snap_free(m->gone);
    m->gone = gone;
    if (master_workers(&next->global) != m->nworkers) {
        log_warn("reload: worker_processes changes only with a restart or a binary upgrade: "
                 "keeping %d workers",
                 m->nworkers);
    }
    conf_unref(m->conf);
    m->conf = next; /* workers restarted from now on start with it */
    m->generation++;
    m->last_reload = STATS_RELOAD_OK;
    m->last_reload_ms = master_wall_ms();
    log_notice("reload: '%s' is valid, passing it to %d workers", path, master_running(m));
    master_signal_workers(m, SIGHUP);
    /* listeners of addresses no longer in the file go; workers bind new ones
     * themselves (they were forked before the master could bind them) */
    listeners_prune(m->up, m->conf, m->nworkers);
    master_notify_status(m, "READY=1\n");
}

/* The new master serves: our workers hand over, we exit after them. */
static void master_on_handed_over(void *ctx)
{
    struct master *m = ctx;
    stats_destroy(m->stats);
    m->stats = NULL;
    metrics_destroy(m->metrics);
    m->metrics = NULL;
    struct stats_snap *s = master_collect(m);
    upgrade_send_counters(m->up, s);
    stats_snap_free(s);
    m->stopping = true; /* no restart from now on */
    for (int i = 0; i < m->nworkers; i++) {
        ev_timer_stop(m->loop, &m->workers[i].restart);
    }
    master_signal_workers(m, SIGUSR2);
    listeners_close(m->up); /* the new master has them */
    uint64_t grace = (uint64_t)m->conf->global.worker_shutdown_timeout * 1000u;
    ev_timer_start(m->loop, &m->stop_timer, grace + STOP_GRACE_EXTRA_MS);
    if (master_running(m) == 0) {
        ev_loop_stop(m->loop);
    }
}

/* SIGUSR2: start the new binary with the stats, metrics and every worker's listeners. */
static void master_upgrade(void *ctx)
{
    struct master *m = ctx;
    if (m->stopping) {
        log_warn("binary upgrade refused: this master is stopping");
        return;
    }
    struct upgrade_fd *fds = calloc(m->up->nfds + 2, sizeof(*fds));
    uint32_t n = 0;
    if (fds == NULL) {
        return;
    }
    for (int i = 0; i < m->nworkers; i++) {
        master_resume(m, &m->workers[i]); /* the new binary's workers take them as they are */
    }
    if (m->stats != NULL) {
        fds[n++] = (struct upgrade_fd){.fd = stats_fd(m->stats), .worker = -1};
    }
    if (m->metrics != NULL) {
        fds[n++] = (struct upgrade_fd){.fd = metrics_fd(m->metrics), .worker = -1};
    }
    for (uint32_t i = 0; i < m->up->nfds; i++) {
        if (m->up->fds[i].worker >= 0) {
            fds[n++] = m->up->fds[i];
        }
    }
    upgrade_start(m->up, fds, n, m->generation);
    free(fds);
}

static void master_on_stop(void *ctx)
{
    master_stop(ctx);
}

static void master_on_child(void *ctx)
{
    master_reap(ctx);
}

static void master_on_reopen(void *ctx)
{
    master_signal_workers(ctx, SIGUSR1);
}

static void master_on_level(void *ctx, int sig)
{
    master_signal_workers(ctx, sig);
}

/* The replaced master's counters came: the stats port shows them at once. */
static void master_on_counters(void *ctx)
{
    struct master *m = ctx;
    if (m->stats != NULL) {
        stats_refresh_now(m->stats);
    }
}

static int master_signals(struct master *m)
{
    struct signal_actions act = {
        .stop = master_on_stop,
        .reload = master_reload,
        .reopen = master_on_reopen,
        .level = master_on_level,
        .child = master_on_child,
        .upgrade = master_upgrade,
        .ctx = m,
    };
    struct upgrade_hooks hooks = {
        .handed_over = master_on_handed_over, .counters = master_on_counters, .ctx = m};
    upgrade_attach(m->up, m->loop, &hooks);
    return signals_open(&m->sig, m->loop, &act);
}

static int master_init(struct master *m, const struct options *o, struct conf *conf, int n,
                       struct upgrade *up)
{
    memset(m, 0, sizeof(*m));
    m->pid = getpid();
    m->sig.io.fd = -1;
    m->opts = *o;
    m->conf = conf_ref(conf);
    m->up = up;
    m->generation = up->parent_generation + 1;
    m->src = (struct stats_source){master_collect, m, time(NULL)};
    m->loop = ev_loop_create();
    m->nworkers = n;
    m->workers = calloc((size_t)n, sizeof(*m->workers));
    m->slots = stats_slots_create((uint32_t)n, SLOT_BYTES);
    m->gone = stats_snap_of_conf(conf);
    if (m->loop == NULL || m->workers == NULL || m->slots == NULL || m->gone == NULL) {
        log_error("master: cannot set up: %s", strerror(errno));
        return -1;
    }
    ev_timer_init(&m->stop_timer, master_on_stop_timeout, m);
    for (int i = 0; i < n; i++) {
        m->workers[i] = (struct worker){.m = m, .id = i};
        ev_timer_init(&m->workers[i].restart, master_on_restart, &m->workers[i]);
    }
    if (master_signals(m) != 0) {
        log_error("master: cannot set up signal handling: %s", strerror(errno));
        return -1;
    }
    int fd = upgrade_take_host(up, -1, o->stats_addr, o->stats_port);
    m->stats = stats_create_on(m->loop, o, &m->src, fd);
    if (m->stats == NULL) {
        return -1;
    }
    if (o->metrics_port != 0) {
        const char *addr = o->metrics_addr ? o->metrics_addr : o->stats_addr;
        fd = upgrade_take_host(up, -1, addr, o->metrics_port);
        m->metrics = metrics_create_on(m->loop, addr, o->metrics_port, &m->src, fd);
        if (m->metrics == NULL) {
            return -1;
        }
    }
    return listeners_bind(m->up, m->conf, m->nworkers);
}

/* Wait for worker w's ready byte: it is serving, or (EOF, timeout) it failed. */
static int master_wait_ready(struct worker *w, int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c = 0;
    int rc;
    do {
        rc = poll(&p, 1, START_WAIT_MS);
    } while (rc < 0 && errno == EINTR);
    if (rc == 1 && read(fd, &c, 1) == 1 && c == 'R') {
        return 0;
    }
    log_error("worker %d (pid %d) did not start", w->id, (int)w->pid);
    return -1;
}

/* All first workers serve, or none does: a taken address fails the start. */
static int master_start_workers(struct master *m)
{
    int rc = 0;
    for (int i = 0; i < m->nworkers && rc == 0; i++) {
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) != 0) {
            log_error("cannot start worker %d: pipe: %s", i, strerror(errno));
            return -1;
        }
        rc = master_spawn(m, &m->workers[i], pipefd[1]);
        close(pipefd[1]);
        if (rc == 0) {
            rc = master_wait_ready(&m->workers[i], pipefd[0]);
        }
        close(pipefd[0]);
    }
    return rc;
}

/* Stop whatever was started and wait for it (start-up failure, or exit). */
static void master_kill_all(struct master *m)
{
    master_signal_workers(m, SIGTERM);
    for (int i = 0; i < m->nworkers; i++) {
        if (m->workers[i].pid != 0) {
            waitpid(m->workers[i].pid, NULL, 0);
            m->workers[i].pid = 0;
        }
    }
}

static void master_deinit(struct master *m)
{
    if (m->loop != NULL) {
        for (int i = 0; m->workers != NULL && i < m->nworkers; i++) {
            ev_timer_stop(m->loop, &m->workers[i].restart);
        }
        ev_timer_stop(m->loop, &m->stop_timer);
    }
    stats_destroy(m->stats);
    metrics_destroy(m->metrics);
    stats_snap_free(m->gone);
    stats_slots_destroy(m->slots);
    for (int i = 0; m->workers != NULL && i < m->nworkers; i++) {
        stats_snap_free(m->workers[i].last);
    }
    free(m->workers);
    if (m->loop != NULL) {
        upgrade_detach(m->up);
        signals_close(&m->sig, m->loop);
        ev_loop_destroy(m->loop);
    }
    conf_unref(m->conf);
}

/* Every first worker serves: tell the service manager, and the old binary. */
static void master_ready(struct master *m)
{
    log_notice("master on pid %d: %d workers serving", (int)m->pid, m->nworkers);
    if (upgrade_is_child(m->up)) {
        /* systemd first: it must know the new main pid before the old one exits */
        char head[64];
        snprintf(head, sizeof(head), "MAINPID=%d\nREADY=1\n", (int)m->pid);
        master_notify_status(m, head);
        upgrade_serving(m->up, false); /* its clients are its workers' */
    } else {
        master_notify_status(m, "READY=1\n");
    }
}

int master_run(const struct options *o, struct conf *conf, int nworkers, struct upgrade *up)
{
    struct master m;
    int rc = 1;
    if (master_init(&m, o, conf, nworkers, up) == 0) {
        if (master_start_workers(&m) == 0) {
            master_ready(&m);
            rc = ev_loop_run(m.loop) == 0 ? 0 : 1;
        }
        master_kill_all(&m);
        if (up->handed_over) {
            struct stats_snap *s = master_collect(&m); /* the final counts */
            upgrade_send_counters(up, s);
            stats_snap_free(s);
        }
    }
    master_deinit(&m);
    return rc;
}
