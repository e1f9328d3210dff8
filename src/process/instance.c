#include "process/instance.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "process/reload.h"
#include "proxy/pool.h"
#include "proxy/pool_stats.h"
#include "sentinel/sentinel.h"
#include "stats/metrics.h"
#include "stats/slot.h"
#include "stats/stats.h"

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
    proxy_drain(&in->px);
    ev_timer_start(in->loop, &in->stop_timer,
                   (uint64_t)in->conf->global.worker_shutdown_timeout * 1000u);
}

static void instance_before_sleep(struct ev_loop *loop, void *data)
{
    struct instance *in = data;
    if (proxy_before_sleep(&in->px)) {
        ev_loop_stop(loop); /* drained: every client is gone */
    }
}

static void instance_reload(void *ctx)
{
    struct instance *in = ctx;
    if (!in->stopping) {
        reload_run(in);
    }
}

/* This process's numbers, as the stats port, /metrics and the master read them. */
static struct stats_snap *instance_collect(void *ctx)
{
    struct instance *in = ctx;
    struct stats_snap *s = pool_stats_snap(&in->px);
    if (s != NULL) {
        s->generation = in->generation;
        s->reload_failures = in->reload_failures;
        s->last_reload = in->last_reload;
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
    in->src = (struct stats_source){instance_collect, in, in->start_time};
    if (in->worker_id >= 0) {
        ev_timer_init(&in->publish_timer, instance_on_publish, in);
        instance_publish(in);
        ev_timer_start(in->loop, &in->publish_timer, (uint64_t)opts->stats_interval_ms);
        return 0;
    }
    in->stats = stats_create(in->loop, opts, &in->src);
    if (in->stats == NULL) {
        return -1;
    }
    if (opts->metrics_port != 0) {
        const char *addr = opts->metrics_addr ? opts->metrics_addr : opts->stats_addr;
        in->metrics = metrics_create(in->loop, addr, opts->metrics_port, &in->src);
        if (in->metrics == NULL) {
            return -1;
        }
    }
    return 0;
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
        if (pool_listen(px->pools[i]) != 0) {
            return -1;
        }
    }
    return 0;
}

static int instance_loop_init(struct instance *in)
{
    static const struct signal_actions actions = {
        .stop = instance_shutdown,
        .reload = instance_reload,
    };
    in->loop = ev_loop_create_backend(in->opts.event_backend);
    if (in->loop == NULL) {
        log_error("cannot create the event loop: %s", strerror(errno));
        return -1;
    }
    if (strcmp(ev_loop_backend(in->loop), in->opts.event_backend) != 0) {
        log_warn("event backend %s unavailable here (%s), using %s", in->opts.event_backend,
                 strerror(errno), ev_loop_backend(in->loop));
    }
    ev_loop_set_before_sleep(in->loop, instance_before_sleep, in);
    ev_timer_init(&in->stop_timer, instance_on_stop_timeout, in);
    struct signal_actions act = actions;
    act.ctx = in;
    if (signals_open(&in->sig, in->loop, &act) != 0) {
        log_error("cannot set up signal handling: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int instance_init(struct instance *in, const struct options *opts, struct conf *conf,
                  uint64_t generation, int worker_id, struct stats_slots *slots)
{
    memset(in, 0, sizeof(*in));
    in->sig.io.fd = -1;
    in->worker_id = worker_id;
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
    for (uint32_t i = 0; i < in->px.npools; i++) {
        pool_preconnect(in->px.pools[i]);
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
    ev_timer_stop(in->loop, &in->stop_timer);
    if (in->slots != NULL) {
        ev_timer_stop(in->loop, &in->publish_timer);
        instance_publish(in); /* the final counts: the master keeps them */
    }
    stats_destroy(in->stats);
    metrics_destroy(in->metrics);
    proxy_deinit(&in->px);
    signals_close(&in->sig, in->loop);
    ev_loop_destroy(in->loop);
    in->loop = NULL;
    if (in->conf != NULL) {
        conf_unref(in->conf);
    }
}
