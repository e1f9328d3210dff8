#include "proxy/health.h"

#include <stdio.h>
#include <sys/time.h>

#include "core/log.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/server.h"

static uint64_t health_now(const struct server *s)
{
    return ev_now(s->pool->px->loop);
}

static bool health_is_master(const struct server *s)
{
    const struct pool *p = s->pool;
    return p->mode == POOL_MASTER_REPLICA && s->idx == p->cp->master;
}

static void health_arm_retry(struct pool *p)
{
    uint64_t next = 0;
    for (uint32_t i = 0; i < p->nservers; i++) {
        const struct health *h = &p->servers[i].health;
        if (h->ejected && (next == 0 || h->retry_at_ms < next)) {
            next = h->retry_at_ms;
        }
    }
    if (next != 0) {
        ev_timer_start_at(p->px->loop, &p->retry_timer, next);
    } else {
        ev_timer_stop(p->px->loop, &p->retry_timer);
    }
}

static void health_eject(struct server *s)
{
    struct pool *p = s->pool;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    s->health.ejected = true;
    s->health.retry_at_ms = health_now(s) + (uint64_t)p->cp->server_retry_timeout_ms;
    s->stats[SS_server_ejected_at] = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
    p->stats[SP_server_ejects]++;
    log_warn("pool '%s': server '%s' ejected after %u failures, retry in %lld ms", p->cp->name,
             s->cs->name, s->health.failures, (long long)p->cp->server_retry_timeout_ms);
    pool_rebuild(p);
    health_arm_retry(p);
}

static void health_note_error(struct server *s, const char *why)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(s->health.last_error, sizeof(s->health.last_error), "%s", why);
    s->health.last_error_ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* A sentinel group's replica: only it is left out, never its group. */
static void health_replica_failure(struct server *s)
{
    const struct conf_pool *cp = s->pool->cp;
    s->health.failures++;
    if (s->health.ejected || s->health.failures < cp->server_failure_limit) {
        return;
    }
    s->health.ejected = true;
    s->health.retry_at_ms = health_now(s) + (uint64_t)cp->server_retry_timeout_ms;
    log_warn("pool '%s': %s gets no read for %lld ms after %u failures", cp->name, s->cs->name,
             (long long)cp->server_retry_timeout_ms, s->health.failures);
}

void health_failure(struct server *s, const char *why)
{
    health_note_error(s, why);
    if (s->owner != NULL) {
        health_replica_failure(s);
        return;
    }
    if (health_is_master(s)) {
        return; /* writes have nowhere else to go: keep trying the master */
    }
    struct pool *p = s->pool;
    s->health.failures++;
    /* a replica of a master/replica pool holds no key of its own: taking it out
     * moves no data, so it goes whether or not auto_eject_hosts is set */
    bool ejectable = p->cp->auto_eject_hosts || p->mode == POOL_MASTER_REPLICA;
    if (ejectable && !s->health.ejected && s->health.failures >= p->cp->server_failure_limit) {
        health_eject(s);
    }
}

void health_success(struct server *s)
{
    s->health.failures = 0;
}

void health_reset(struct server *s)
{
    bool was_ejected = s->health.ejected;
    s->health.failures = 0;
    s->health.ejected = false;
    if (was_ejected && s->owner == NULL) {
        pool_rebuild(s->pool);
        health_arm_retry(s->pool);
    }
}

bool health_replica_usable(struct server *s)
{
    if (!s->health.ejected) {
        return true;
    }
    if (health_now(s) < s->health.retry_at_ms) {
        return false;
    }
    s->health.ejected = false; /* its time out is over: one more chance */
    s->health.failures = 0;
    log_notice("pool '%s': %s gets reads again", s->pool->cp->name, s->cs->name);
    return true;
}

static void health_on_retry(struct ev_loop *loop, struct ev_timer *t)
{
    struct pool *p = t->data;
    bool changed = false;
    for (uint32_t i = 0; i < p->nservers; i++) {
        struct server *s = &p->servers[i];
        if (s->health.ejected && s->health.retry_at_ms <= ev_now(loop)) {
            s->health.ejected = false;
            changed = true;
            log_notice("pool '%s': server '%s' is back in the distribution", p->cp->name,
                       s->cs->name);
        }
    }
    if (changed) {
        pool_rebuild(p);
    }
    health_arm_retry(p);
}

void health_pool_init(struct pool *p)
{
    ev_timer_init(&p->retry_timer, health_on_retry, p);
}

void health_pool_stop(struct pool *p)
{
    ev_timer_stop(p->px->loop, &p->retry_timer);
}
