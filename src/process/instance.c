#include "process/instance.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "process/listeners.h"
#include "process/notify.h"
#include "process/reload.h"
#include "process/upgrade.h"
#include "proxy/client.h"
#include "proxy/pool.h"
#include "proxy/pool_stats.h"
#include "sentinel/sentinel.h"
#include "stats/metrics.h"
#include "stats/slot.h"
#include "stats/stats.h"

/* How long a client idle when the hand-over begins keeps its connection. */
#define HAND_OVER_IDLE_MS 1000

struct pool *instance_pool_create(struct instance *in, struct conf *conf, uint32_t idx)
{
    struct pool *p = pool_create(&in->px, conf, idx);
    if (p == NULL || p->mode != POOL_SENTINEL) {
        return p;
    }
    struct sentinel *sn = sentinel_create(in->loop, p->cp, pool_group_sink(p));
    if (sn == NULL) {
        pool_destroy(p);
        return NULL;
    }
    p->watcher = sentinel_watcher(sn);
    return p;
}

static void instance_on_stop_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    log_warn("shutdown timeout reached, closing the remaining clients");
    ev_loop_stop(loop);
}

/* Stop accepting and reading; every pending reply is still written, then exit. */
static void instance_shutdown(void *ctx)
{
    struct instance *in = ctx;
    if (in->stopping) {
        return;
    }
    in->stopping = true;
    if (in->worker_id < 0 && !in->handing_over) {
        notify_send("STOPPING=1\nSTATUS=stopping: finishing the clients' requests");
    }
    if (in->up != NULL && !in->handing_over) {
        upgrade_abandon(in->up);
    }
    proxy_drain(&in->px);
    ev_timer_start(in->loop, &in->stop_timer,
                   (uint64_t)in->conf->global.worker_shutdown_timeout * 1000u);
}

/* Handing over: every request it sent was read and answered, and nothing it
 * sent since waits unread in its socket. */
static bool instance_client_done(const struct client *c)
{
    char b;
    if (!client_answered(c) || stream_pending(&c->st) > 0) {
        return false; /* io_uring: a request may wait in the ring's buffer */
    }
    ssize_t n = recv(c->io.fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

/* A client goes right behind a reply made in this turn (not yet written): a
 * request/response client reads the reply and then finds the connection
 * closed, before it sends anything more on it. One idle since the hand-over
 * began goes after HAND_OVER_IDLE_MS: closing it at an arbitrary moment could
 * meet a request on its way. One in a transaction (MULTI, WATCH) that could
 * travel but for it is kept that long for the transaction to end: then it
 * travels, and a WATCH retry loop meets no closed connection. One still
 * sending then (a pipeline that never pauses, so never has nothing to
 * answer) is let go behind the replies to what was read: it stopped being
 * read, and lingers until they are delivered (it waited for the shutdown
 * timeout, then lost them). */
static void instance_release_pool_clients(struct instance *in, struct pool *p, bool passing)
{
    struct client *next;
    for (struct client *c = p->clients; c != NULL; c = next) {
        next = c->next;
        if (c->lingering && c->drained) {
            continue; /* let go already (counted): closed once its replies are delivered */
        }
        if (c->lingering) {
            client_drain(c); /* refused, its error written: closed now, not waited for */
            in->let_go++;
            continue;
        }
        if (c->drained) {
            continue; /* let go already (counted), its last replies being written */
        }
        if (passing && client_travels(c)) {
            if (in->hand_over_idle && !client_passable(c)) {
                client_drain(c); /* busy a second into the hand-over: let go */
                in->let_go++;
            }
            continue; /* handed over once its replies are written (instance_pass_clients) */
        }
        if (passing && !in->hand_over_idle && client_travels_after_txn(c)) {
            continue; /* in a transaction (a few ms, usually): it travels once that ends */
        }
        stream_ring_keep(&c->st); /* the hand-over broke off: it reads again */
        bool reply_now = c->out_pos < c->out.len;
        if ((reply_now || in->hand_over_idle) && instance_client_done(c)) {
            /* corked, the reply and the FIN leave in one segment: a client
             * that wakes on the reply already sees the close, and does not
             * send its next request into a socket about to be closed */
            int on = 1;
            setsockopt(c->io.fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
            client_drain(c); /* written and closed in this turn's flush */
            in->let_go++;
        } else if (in->hand_over_idle && !c->read_eof) {
            client_drain(c); /* busy a second into the hand-over: let go */
            in->let_go++;
        }
    }
}

/* No client left: the loop stops at the end of a turn (this one, or the
 * hand-over tick's). */
static void instance_check_empty(struct instance *in)
{
    if (!in->stopping && proxy_nclients(&in->px) == 0) {
        in->stopping = true;
        proxy_drain(&in->px);
    }
}

/* Whether clients that can travel go to the new binary (else they are let go):
 * a single process's successor said it takes them; a worker found its new
 * counterpart (adopt.h). */
static bool instance_passing(const struct instance *in)
{
    if (in->worker_id >= 0) {
        return in->pass_fd >= 0;
    }
    return in->up != NULL && upgrade_takes_clients(in->up);
}

/* Hand client socket fd over: an enum chan_sent. */
static int instance_send_client(struct instance *in, int fd, const struct buf *state)
{
    if (in->worker_id < 0) {
        return upgrade_pass_client(in->up, fd, state);
    }
    int rc = chan_send_client(in->pass_fd, fd, state);
    if (rc == CHAN_FAILED || rc == CHAN_SENT_FAILED) {
        close(in->pass_fd); /* the rest are let go */
        in->pass_fd = -1;
    }
    return rc;
}

static void instance_release_clients(struct instance *in)
{
    struct proxy *px = &in->px;
    bool passing = instance_passing(in);
    for (uint32_t i = 0; i < px->npools; i++) {
        instance_release_pool_clients(in, px->pools[i], passing);
    }
    for (struct pool *p = px->retired; p != NULL; p = p->next_retired) {
        instance_release_pool_clients(in, p, false);
    }
    instance_check_empty(in);
}

/* The new binary takes clients over: each one with nothing left to answer or
 * write goes to it, socket and all (it reads the next request from where this
 * process stopped: nothing is closed, so nothing can be sent into a closing
 * connection). The clients of retired pools, and those that cannot travel,
 * are let go behind their replies (instance_release_clients). */
static void instance_pass_clients(struct instance *in)
{
    struct proxy *px = &in->px;
    if (!instance_passing(in)) {
        return;
    }
    struct buf state;
    buf_init(&state);
    int rc = CHAN_SENT;
    for (uint32_t i = 0; i < px->npools && rc == CHAN_SENT; i++) {
        struct client *next;
        for (struct client *c = px->pools[i]->clients; c != NULL && rc == CHAN_SENT; c = next) {
            next = c->next;
            if (!client_pass_ready(c)) {
                continue;
            }
            buf_reset(&state);
            client_export(c, &state);
            /* not now, or never (then the rest are let go) */
            rc = instance_send_client(in, c->io.fd, &state);
            if (rc == CHAN_SENT || rc == CHAN_SENT_FAILED) {
                client_close(c); /* this process's descriptor only */
                in->passed++;
            }
        }
    }
    buf_free(&state);
    instance_check_empty(in);
}

static void instance_before_sleep(struct ev_loop *loop, void *data)
{
    struct instance *in = data;
    if (in->handing_over) {
        instance_pass_clients(in);
        instance_release_clients(in);
    }
    if (proxy_before_sleep(&in->px)) {
        ev_loop_stop(loop); /* drained: every client is gone */
        return;
    }
    if (in->handing_over) {
        instance_pass_clients(in); /* right behind the replies just written */
    }
}

/* New side: a client the replaced binary handed over. */
static void instance_on_client(void *ctx, int fd, const uint8_t *state, size_t len)
{
    struct instance *in = ctx;
    client_import(&in->px, fd, state, len);
}

static void instance_notify_status(struct instance *in, const char *head)
{
    char status[256];
    notify_status_text(status, sizeof(status), in->generation, in->last_reload,
                       in->last_reload ? in->last_reload_ms : (int64_t)in->start_time * 1000,
                       in->px.npools, 0);
    notify_send("%sSTATUS=%s", head, status);
}

static void instance_reload(void *ctx)
{
    struct instance *in = ctx;
    if (in->stopping || in->handing_over) {
        log_warn("reload ignored: this process is %s",
                 in->stopping ? "stopping" : "handing over to a new binary");
        return;
    }
    bool main_process = in->worker_id < 0;
    if (main_process) {
        notify_send("RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading the configuration",
                    (unsigned long long)notify_monotonic_us());
    }
    reload_run(in);
    if (main_process) {
        instance_notify_status(in, "READY=1\n");
    }
}

void instance_ready(struct instance *in)
{
    if (in->up != NULL && upgrade_is_child(in->up)) {
        /* systemd first: it must know the new main pid before the old one exits */
        char head[64];
        snprintf(head, sizeof(head), "MAINPID=%d\nREADY=1\n", (int)getpid());
        instance_notify_status(in, head);
        upgrade_serving(in->up, true);
    } else {
        instance_notify_status(in, "READY=1\n");
    }
}

/* This process's numbers, as the stats port, /metrics and the master read them. */
static struct stats_snap *instance_collect(void *ctx)
{
    struct instance *in = ctx;
    struct stats_snap *s = pool_stats_snap(&in->px);
    if (s != NULL && in->up != NULL && in->up->base != NULL) {
        stats_snap_add(s, in->up->base, true); /* the replaced binary's counts go on */
    }
    if (s != NULL) {
        s->generation = in->generation;
        /* a counter: the replaced binary's failures go on too */
        s->reload_failures =
            in->reload_failures +
            (in->up != NULL && in->up->base != NULL ? in->up->base->reload_failures : 0);
        s->last_reload = in->last_reload;
        s->last_reload_ms = in->last_reload_ms;
    }
    return s;
}

/* A worker's counters, for the master to sum (SPEC 8: the stats port shows the total). */
static void instance_publish(struct instance *in)
{
    struct stats_snap *snap = instance_collect(in);
    if (snap != NULL) {
        stats_slot_publish(in->slots, (uint32_t)in->worker_id, snap);
        stats_snap_free(snap);
    }
}

/* At least every second: the master's status page refreshes every second,
 * whatever -i says of the stats JSON (a snapshot is a few hundred bytes). */
static uint64_t instance_publish_ms(const struct instance *in)
{
    int ms = in->opts.stats_interval_ms;
    return ms > 0 && ms < 1000 ? (uint64_t)ms : 1000u;
}

static void instance_on_publish(struct ev_loop *loop, struct ev_timer *t)
{
    struct instance *in = t->data;
    instance_publish(in);
    ev_timer_start(loop, t, instance_publish_ms(in));
}

/* The stats port and /metrics of a single process; a worker publishes instead. */
static int instance_stats_init(struct instance *in)
{
    const struct options *opts = &in->opts;
    in->src = (struct stats_source){instance_collect, in, in->start_time};
    if (in->worker_id >= 0) {
        ev_timer_init(&in->publish_timer, instance_on_publish, in);
        instance_publish(in);
        ev_timer_start(in->loop, &in->publish_timer, instance_publish_ms(in));
        return 0;
    }
    int fd = in->up ? upgrade_take_host(in->up, -1, opts->stats_addr, opts->stats_port) : -1;
    in->stats = stats_create_on(in->loop, opts, &in->src, fd);
    if (in->stats == NULL) {
        return -1;
    }
    if (opts->metrics_port != 0) {
        const char *addr = opts->metrics_addr ? opts->metrics_addr : opts->stats_addr;
        fd = in->up ? upgrade_take_host(in->up, -1, addr, opts->metrics_port) : -1;
        in->metrics = metrics_create_on(in->loop, addr, opts->metrics_port, &in->src, fd);
        if (in->metrics == NULL) {
            return -1;
        }
    }
    return 0;
}

/* A socket already listening at a (handed over, or bound by the master), or -1.
 * A single process that replaces worker processes takes the first worker's, and
 * the connections waiting in it: binding its own would fail without reuseport. */
static int instance_take(struct instance *in, const struct conf_addr *a)
{
    if (in->up == NULL || a->salen == 0) {
        return -1;
    }
    const struct sockaddr *sa = (const struct sockaddr *)&a->sa;
    int fd = upgrade_take(in->up, in->worker_id, sa, a->salen);
    if (fd < 0 && in->worker_id < 0) {
        fd = upgrade_take(in->up, 0, sa, a->salen);
    }
    return fd;
}

/* The pool's listeners: the sockets handed over where there are, else bound. */
static int instance_listen(struct instance *in, struct pool *p)
{
    int fd = instance_take(in, &p->cp->listen);
    int tls_fd =
        p->cp->listen_tls_addr.text != NULL ? instance_take(in, &p->cp->listen_tls_addr) : -1;
    if (fd >= 0) {
        pool_listen_fd(p, false, fd);
    }
    if (tls_fd >= 0) {
        pool_listen_fd(p, true, tls_fd);
    }
    return pool_listen_only(p, fd < 0, tls_fd < 0);
}

static int instance_pools_init(struct instance *in)
{
    struct conf *conf = in->conf;
    struct proxy *px = &in->px;
    px->pools = calloc(conf->npools ? conf->npools : 1, sizeof(*px->pools));
    if (px->pools == NULL) {
        return -1;
    }
    for (uint32_t i = 0; i < conf->npools; i++) {
        px->pools[i] = instance_pool_create(in, conf, i);
        if (px->pools[i] == NULL) {
            log_error("cannot create pool '%s'", conf->pools[i].name);
            return -1;
        }
        px->npools++;
        if (instance_listen(in, px->pools[i]) != 0) {
            return -1;
        }
    }
    return 0;
}

static void instance_on_hand_over_tick(struct ev_loop *loop, struct ev_timer *t)
{
    struct instance *in = t->data;
    /* from now on idle clients go too (before_sleep, in this very turn) */
    in->hand_over_idle = true;
    ev_timer_start(loop, t, 100);
}

/* Stop accepting (the new binary accepts on the same sockets) and let each
 * client go once it has its replies; worker_shutdown_timeout bounds it. */
static void instance_hand_over(struct instance *in)
{
    if (in->stopping || in->handing_over) {
        return;
    }
    in->handing_over = true;
    for (uint32_t i = 0; i < in->px.npools; i++) {
        pool_stop_accepting(in->px.pools[i]);
    }
    log_notice("handing over: %llu clients to finish", (unsigned long long)proxy_nclients(&in->px));
    ev_timer_start(in->loop, &in->hand_over_tick, HAND_OVER_IDLE_MS);
    ev_timer_start(in->loop, &in->stop_timer,
                   (uint64_t)in->conf->global.worker_shutdown_timeout * 1000u);
}

/* The new binary serves: its stats port is ours (the same socket), its
 * counters start from ours. */
static void instance_on_handed_over(void *ctx)
{
    struct instance *in = ctx;
    stats_destroy(in->stats);
    in->stats = NULL;
    metrics_destroy(in->metrics);
    in->metrics = NULL;
    struct stats_snap *s = instance_collect(in);
    upgrade_send_counters(in->up, s);
    stats_snap_free(s);
    /* nothing more to systemd: the new process is the main one now */
    instance_hand_over(in);
}

/* The replaced process's counters came: the stats port shows them at once
 * (a counter read 0 for an interval looked like a reset to a monitor). */
static void instance_on_counters(void *ctx)
{
    struct instance *in = ctx;
    if (in->stats != NULL) {
        stats_refresh_now(in->stats);
    }
}

/* SIGUSR2: a single process starts the new binary; a worker hands over. */
static void instance_upgrade(void *ctx)
{
    struct instance *in = ctx;
    if (in->worker_id >= 0) {
        if (!in->stopping && !in->handing_over && in->pass_fd < 0) {
            /* the new master's worker of our number takes our clients, if it
             * is there (our master has just heard that the new one serves) */
            in->pass_fd = adopt_connect(getppid(), in->worker_id);
        }
        instance_hand_over(in);
        return;
    }
    if (in->stopping || in->handing_over || in->up == NULL) {
        log_warn("binary upgrade refused: this process is stopping");
        return;
    }
    struct upgrade_fd fds[2 * in->px.npools + 2];
    uint32_t n = 0;
    for (uint32_t i = 0; i < in->px.npools; i++) {
        const struct pool *p = in->px.pools[i];
        if (p->listener.io.fd >= 0) {
            fds[n++] = (struct upgrade_fd){.fd = p->listener.io.fd, .worker = -1};
        }
        if (p->tls_listener.io.fd >= 0) {
            fds[n++] = (struct upgrade_fd){.fd = p->tls_listener.io.fd, .worker = -1};
        }
    }
    if (in->stats != NULL && stats_fd(in->stats) >= 0) {
        fds[n++] = (struct upgrade_fd){.fd = stats_fd(in->stats), .worker = -1};
    }
    if (in->metrics != NULL) {
        fds[n++] = (struct upgrade_fd){.fd = metrics_fd(in->metrics), .worker = -1};
    }
    upgrade_start(in->up, fds, n, in->generation);
}

/* SIGCHLD (a single process's only child is a new binary). */
static void instance_on_child(void *ctx)
{
    struct instance *in = ctx;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        upgrade_reap(in->up, pid, status);
    }
}

static int instance_loop_init(struct instance *in)
{
    static const struct signal_actions actions = {
        .stop = instance_shutdown,
        .reload = instance_reload,
        .upgrade = instance_upgrade,
    };
    in->loop = ev_loop_create_backend(in->opts.event_backend);
    if (in->loop == NULL) {
        log_error("cannot create the event loop: %s", strerror(errno));
        return -1;
    }
    if (strcmp(ev_loop_backend(in->loop), in->opts.event_backend) != 0) {
        log_warn("event backend %s unavailable here (%s), using %s", in->opts.event_backend,
                 strerror(errno), ev_loop_backend(in->loop));
    } else {
        log_notice("event backend %s", ev_loop_backend(in->loop)); /* which one: in the log */
    }
    ev_loop_set_before_sleep(in->loop, instance_before_sleep, in);
    ev_timer_init(&in->stop_timer, instance_on_stop_timeout, in);
    ev_timer_init(&in->hand_over_tick, instance_on_hand_over_tick, in);
    struct signal_actions act = actions;
    act.ctx = in;
    if (in->worker_id < 0 && in->up != NULL) {
        act.child = instance_on_child;
        static const struct upgrade_hooks hooks = {.handed_over = instance_on_handed_over,
                                                   .client = instance_on_client,
                                                   .counters = instance_on_counters};
        struct upgrade_hooks h = hooks;
        h.ctx = in;
        upgrade_attach(in->up, in->loop, &h);
    }
    if (signals_open(&in->sig, in->loop, &act) != 0) {
        log_error("cannot set up signal handling: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int instance_init(struct instance *in, const struct options *opts, struct conf *conf,
                  uint64_t generation, int worker_id, struct stats_slots *slots, struct upgrade *up)
{
    memset(in, 0, sizeof(*in));
    in->pass_fd = -1;
    in->sig.io.fd = -1;
    in->worker_id = worker_id;
    in->up = up;
    in->slots = slots;
    in->opts = *opts;
    in->conf = conf_ref(conf);
    in->generation = generation;
    in->start_time = time(NULL);
    /* the random distribution must not draw the same servers in every worker
     * and after every restart */
    srandom((unsigned)(time(NULL) ^ ((unsigned)getpid() << 8) ^ (unsigned)worker_id));
    if (instance_loop_init(in) != 0 || proxy_init(&in->px, in->loop, opts, worker_id) != 0) {
        return -1;
    }
    in->px.shutdown_timeout_s = (uint32_t)conf->global.worker_shutdown_timeout;
    if (instance_pools_init(in) != 0 || instance_stats_init(in) != 0) {
        return -1;
    }
    if (in->worker_id < 0 && in->up != NULL) {
        /* handed-over sockets nothing of this configuration listens on; those of
         * the other workers of a worker mode this process replaces too: in one
         * SO_REUSEPORT group with its own, they would take connections that
         * nobody accepts */
        listeners_close(in->up);
    } else if (in->up != NULL) {
        upgrade_close_fds(in->up, in->worker_id, NULL, NULL);
    }
    for (uint32_t i = 0; i < in->px.npools; i++) {
        pool_preconnect(in->px.pools[i]);
    }
    if (worker_id >= 0 && up != NULL && up->replaced > 0) {
        const struct chan_sink sink = {NULL, instance_on_client, in};
        adopt_listen(&in->adopt, in->loop, up->replaced, worker_id, &sink);
    }
    return 0;
}

int instance_run(struct instance *in)
{
    return ev_loop_run(in->loop);
}

void instance_deinit(struct instance *in)
{
    if (in->loop == NULL) {
        return;
    }
    if (in->handing_over) {
        log_notice("handed over: %u clients went to the new process, %u were closed behind their "
                   "last reply, %llu at the shutdown timeout",
                   in->passed, in->let_go, (unsigned long long)proxy_nclients(&in->px));
    }
    ev_timer_stop(in->loop, &in->stop_timer);
    ev_timer_stop(in->loop, &in->hand_over_tick);
    if (in->up != NULL && in->up->handed_over && in->worker_id < 0) {
        struct stats_snap *s = instance_collect(in); /* the final counts, for the new binary */
        upgrade_send_counters(in->up, s);
        stats_snap_free(s);
    }
    if (in->slots != NULL) {
        ev_timer_stop(in->loop, &in->publish_timer);
        instance_publish(in); /* the final counts: the master keeps them */
    }
    stats_destroy(in->stats);
    metrics_destroy(in->metrics);
    adopt_close(&in->adopt);
    if (in->pass_fd >= 0) {
        close(in->pass_fd); /* the new worker sees the end of our clients */
        in->pass_fd = -1;
    }
    proxy_deinit(&in->px);
    if (in->up != NULL && in->worker_id < 0) {
        upgrade_detach(in->up);
    }
    signals_close(&in->sig, in->loop);
    ev_loop_destroy(in->loop);
    in->loop = NULL;
    if (in->conf != NULL) {
        conf_unref(in->conf);
    }
}
