#include "core/instance.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sigfd.h"
#include "proxy/client.h"
#include "proxy/memlimit.h"
#include "proxy/reload.h"
#include "proxy/pool.h"
#include "proxy/server.h"
#include "stats/metrics.h"
#include "stats/slot.h"
#include "stats/snap.h"
#include "stats/stats.h"

/* How often the total of client buffers is held against --buffer-limit. */
#define MEM_CHECK_MS 100

static uint64_t instance_nclients(const struct instance *in)
{
    uint64_t n = reload_retired_clients(in);
    for (uint32_t i = 0; i < in->npools; i++) {
        n += in->pools[i]->nclients;
    }
    return n;
}

static void instance_on_stop_timeout(struct ev_loop *loop, struct ev_timer *t)
{
    log_warn("shutdown timeout reached, closing the remaining clients");
    ev_loop_stop(loop);
}

/* Stop accepting and reading; every pending reply is still written, then exit. */
static void instance_shutdown(struct instance *in)
{
    if (in->stopping) {
        return;
    }
    in->stopping = true;
    for (uint32_t i = 0; i < in->npools; i++) {
        pool_drain(in->pools[i]);
    }
    ev_timer_start(in->loop, &in->stop_timer,
                   (uint64_t)in->conf->global.worker_shutdown_timeout * 1000u);
}

static void instance_check_memory(struct instance *in)
{
    in->read_since_check = 0;
    memlimit_enforce(in);
}

static void instance_on_mem_check(struct ev_loop *loop, struct ev_timer *t)
{
    instance_check_memory(t->data);
    ev_timer_start(loop, t, MEM_CHECK_MS);
}

static void instance_before_sleep(struct ev_loop *loop, void *data)
{
    struct instance *in = data;
    (void)loop;
    if (in->read_since_check >= in->mem_check_bytes) {
        instance_check_memory(in);
    }
    if (in->retired != NULL) {
        reload_reap(in); /* before flushing: freeing a pool can answer requests */
    }
    /* servers first: requests leave before we answer what is already answered.
     * Flushing a client can dispatch requests it had buffered while paused, so
     * go round until both lists are empty: nothing may wait for a wake-up. */
    while (in->dirty_sconns != NULL || in->dirty_clients != NULL) {
        while (in->dirty_sconns != NULL) {
            struct sconn *c = in->dirty_sconns;
            in->dirty_sconns = c->next_dirty;
            c->dirty = false;
            sconn_flush(c);
        }
        while (in->dirty_clients != NULL) {
            struct client *c = in->dirty_clients;
            in->dirty_clients = c->next_dirty;
            c->dirty = false;
            client_flush(c);
        }
    }
    while (in->dead_clients != NULL) {
        struct client *c = in->dead_clients;
        in->dead_clients = c->next_dead;
        client_free(c);
    }
    if (in->stopping && instance_nclients(in) == 0) {
        ev_loop_stop(in->loop);
    }
}

/* SIGHUP: a new generation from the same file, or nothing changed at all. */
static void instance_reload(struct instance *in)
{
    if (in->stopping) {
        return;
    }
    struct conf_errors errs;
    conf_errors_init(&errs);
    struct conf *next = conf_load(in->opts.conf_file, &errs);
    for (uint32_t i = 0; i < errs.n; i++) {
        log_error("%s", errs.msgs[i]);
    }
    conf_errors_free(&errs);
    if (next == NULL) {
        log_error("reload: configuration file '%s' is invalid; the running configuration stays",
                  in->opts.conf_file);
        in->reload_failures++;
        in->last_reload = STATS_RELOAD_FAILED;
        return;
    }
    if (reload_apply(in, next) == 0) {
        in->generation++;
        in->last_reload = STATS_RELOAD_OK;
        log_notice("reload: configuration '%s' applied, %u pools, generation %llu",
                   in->opts.conf_file, in->npools, (unsigned long long)in->generation);
    } else {
        in->reload_failures++;
        in->last_reload = STATS_RELOAD_FAILED;
    }
    conf_unref(next);
}

static void instance_on_signal(struct ev_loop *loop, struct ev_io *io, unsigned events)
{
    struct instance *in = io->data;
    struct signalfd_siginfo si;
    (void)loop;
    (void)events;
    while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGINT:
        case SIGTERM:
            log_notice("signal %d received, exiting", (int)si.ssi_signo);
            instance_shutdown(in);
            break;
        case SIGHUP:
            log_notice("signal %d received, reloading '%s'", (int)si.ssi_signo, in->opts.conf_file);
            log_reopen();
            instance_reload(in);
            break;
        case SIGUSR1:
            log_notice("signal %d received, reopening log file", (int)si.ssi_signo);
            log_reopen();
            break;
        case SIGTTIN:
            log_level_up();
            break;
        case SIGTTOU:
            log_level_down();
            break;
        default:
            break;
        }
    }
}

static int instance_signals(struct instance *in)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGTTIN, SIGTTOU};
    in->sigfd = sigfd_open(sigs, sizeof(sigs) / sizeof(sigs[0]));
    if (in->sigfd < 0) {
        return -1;
    }
    ev_io_init(&in->sigio, in->sigfd, instance_on_signal, in);
    return ev_io_set(in->loop, &in->sigio, EV_READ);
}

/* A worker's counters, for the master to sum (SPEC 8: the stats port shows the total). */
static void instance_publish(struct instance *in)
{
    struct stats_snap *snap = stats_snap_of_instance(in);
    if (snap != NULL) {
        stats_slot_publish(in->slots, (uint32_t)in->worker_id, snap);
        stats_snap_free(snap);
    }
}

static void instance_on_publish(struct ev_loop *loop, struct ev_timer *t)
{
    struct instance *in = t->data;
    instance_publish(in);
    ev_timer_start(loop, t, (uint64_t)in->opts.stats_interval_ms);
}

/* The stats port and /metrics of a single process; a worker publishes instead. */
static int instance_stats_init(struct instance *in)
{
    const struct options *opts = &in->opts;
    if (in->worker_id >= 0) {
        ev_timer_init(&in->publish_timer, instance_on_publish, in);
        instance_publish(in);
        ev_timer_start(in->loop, &in->publish_timer, (uint64_t)opts->stats_interval_ms);
        return 0;
    }
    in->stats = stats_create(in);
    if (in->stats == NULL) {
        return -1;
    }
    if (opts->metrics_port != 0) {
        const char *addr = opts->metrics_addr ? opts->metrics_addr : opts->stats_addr;
        in->metrics = metrics_create(in, addr, opts->metrics_port);
        if (in->metrics == NULL) {
            return -1;
        }
    }
    return 0;
}

int instance_init(struct instance *in, const struct options *opts, struct conf *conf)
{
    return instance_init_worker(in, opts, conf, 1, -1, NULL);
}

int instance_init_worker(struct instance *in, const struct options *opts, struct conf *conf,
                         uint64_t generation, int worker_id, struct stats_slots *slots)
{
    memset(in, 0, sizeof(*in));
    in->generation = generation;
    in->worker_id = worker_id;
    in->slots = slots;
    in->opts = *opts;
    in->conf = conf_ref(conf);
    in->mbuf_size = opts->mbuf_size;
    if (bufpool_init(&in->bufs, opts->mbuf_size, 4096) != 0) {
        return -1;
    }
    in->client_max_buffer = opts->client_buffer_limit;
    in->buffer_limit = opts->buffer_limit;
    /* 1/32 of the limit: the overshoot stays small, the scan stays rare */
    in->mem_check_bytes = opts->buffer_limit / 32 > 65536 ? opts->buffer_limit / 32 : 65536;
    in->start_time = time(NULL);
    in->sigfd = -1;
    in->loop = ev_loop_create();
    if (in->loop == NULL) {
        log_error("cannot create the event loop: %s", strerror(errno));
        return -1;
    }
    ev_loop_set_before_sleep(in->loop, instance_before_sleep, in);
    ev_timer_init(&in->stop_timer, instance_on_stop_timeout, in);
    ev_timer_init(&in->mem_timer, instance_on_mem_check, in);
    ev_timer_start(in->loop, &in->mem_timer, MEM_CHECK_MS);
    if (instance_signals(in) != 0) {
        log_error("cannot set up signal handling: %s", strerror(errno));
        return -1;
    }
    in->pools = calloc(conf->npools ? conf->npools : 1, sizeof(*in->pools));
    if (in->pools == NULL) {
        return -1;
    }
    for (uint32_t i = 0; i < conf->npools; i++) {
        in->pools[i] = pool_create(in, conf, i);
        if (in->pools[i] == NULL) {
            log_error("cannot create pool '%s'", conf->pools[i].name);
            return -1;
        }
        in->npools++;
        if (pool_listen(in->pools[i]) != 0) {
            return -1;
        }
    }
    if (instance_stats_init(in) != 0) {
        return -1;
    }
    for (uint32_t i = 0; i < in->npools; i++) {
        struct pool *p = in->pools[i];
        for (uint32_t j = 0; p->cp->preconnect && j < p->nservers; j++) {
            server_connect_all(&p->servers[j]);
        }
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
    ev_timer_stop(in->loop, &in->mem_timer);
    if (in->slots != NULL) {
        ev_timer_stop(in->loop, &in->publish_timer);
        instance_publish(in); /* the final counts: the master keeps them */
    }
    stats_destroy(in->stats);
    metrics_destroy(in->metrics);
    for (uint32_t i = 0; i < in->npools; i++) {
        pool_destroy(in->pools[i]);
    }
    free(in->pools);
    reload_reap_all(in);
    /* clients closed while pools went away */
    while (in->dead_clients != NULL) {
        struct client *c = in->dead_clients;
        in->dead_clients = c->next_dead;
        client_free(c);
    }
    if (in->sigfd >= 0) {
        close(in->sigfd);
    }
    ev_loop_destroy(in->loop);
    bufpool_deinit(&in->bufs);
    if (in->conf != NULL) {
        conf_unref(in->conf);
    }
}
