#include "proxy/reload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "core/instance.h"
#include "core/log.h"
#include "proxy/client.h"
#include "proxy/pool.h"
#include "proxy/server.h"
#include "sentinel/sentinel.h"

static bool reload_str_same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool reload_addr_same(const struct conf_addr *a, const struct conf_addr *b)
{
    if ((a->path == NULL) != (b->path == NULL)) {
        return false;
    }
    if (a->path != NULL) {
        return strcmp(a->path, b->path) == 0;
    }
    if (a->salen == 0 || b->salen == 0) {
        /* a hostname not in DNS at load, or a sentinel group (no address at all) */
        return reload_str_same(a->host, b->host) && a->port == b->port;
    }
    return a->salen == b->salen && memcmp(&a->sa, &b->sa, a->salen) == 0;
}

/* What a server connection was set up with: a change means new connections. */
static bool reload_conn_settings_same(const struct conf_pool *a, const struct conf_pool *b)
{
    return a->redis == b->redis && a->server_connections == b->server_connections &&
           a->tcpkeepalive == b->tcpkeepalive && a->redis_db == b->redis_db &&
           reload_str_same(a->redis_auth, b->redis_auth);
}

/*
 * pred[i]: the index of the old pool new pool i inherits from, or -1. A pool
 * that kept its listen address first (its clients are the ones to keep), then
 * one that kept its name; an old pool is inherited at most once.
 */
static void reload_match(const struct instance *in, const struct conf *next, int *pred)
{
    bool taken[in->npools + 1];
    memset(taken, 0, sizeof(taken));
    for (uint32_t i = 0; i < next->npools; i++) {
        pred[i] = -1;
        for (uint32_t j = 0; j < in->npools; j++) {
            if (!taken[j] && reload_addr_same(&in->pools[j]->cp->listen, &next->pools[i].listen)) {
                pred[i] = (int)j;
                taken[j] = true;
                break;
            }
        }
    }
    for (uint32_t i = 0; i < next->npools; i++) {
        for (uint32_t j = 0; pred[i] < 0 && j < in->npools; j++) {
            if (!taken[j] && strcmp(in->pools[j]->cp->name, next->pools[i].name) == 0) {
                pred[i] = (int)j;
                taken[j] = true;
            }
        }
    }
}

static void reload_take_listener(struct pool *np, struct pool *op)
{
    struct ev_loop *loop = np->inst->loop;
    int fd = op->listener.io.fd;
    ev_timer_stop(loop, &op->listener.pause);
    ev_io_stop(loop, &op->listener.io);
    op->listener.io.fd = -1;
    ev_io_init(&np->listener.io, fd, listener_on_accept, np);
    ev_io_set(loop, &np->listener.io, EV_READ);
    /* the socket stays open, so nobody connecting sees a refusal; the new
     * backlog and unix socket mode apply to it as they are */
    if (listen(fd, np->cp->backlog) != 0) {
        log_warn("pool '%s': cannot change the backlog of '%s': %s", np->cp->name,
                 np->cp->listen.text, strerror(errno));
    }
    if (np->cp->listen.path != NULL && np->cp->listen.perm != 0 &&
        np->cp->listen.perm != op->cp->listen.perm) {
        if (chmod(np->cp->listen.path, (mode_t)np->cp->listen.perm) != 0) {
            log_warn("pool '%s': cannot chmod '%s': %s", np->cp->name, np->cp->listen.path,
                     strerror(errno));
        }
    }
    log_notice("pool '%s' keeps listening on '%s'", np->cp->name, np->cp->listen.text);
}

static struct server *reload_find_server(struct pool *op, const struct conf_server *cs)
{
    for (uint32_t i = 0; i < op->nservers; i++) {
        struct server *s = &op->servers[i];
        if (s->conns != NULL && strcmp(s->cs->name, cs->name) == 0 &&
            reload_addr_same(&s->cs->addr, &cs->addr)) {
            return s;
        }
    }
    return NULL;
}

static uint32_t reload_take_servers(struct pool *np, struct pool *op)
{
    uint32_t kept = 0;
    if (!reload_conn_settings_same(np->cp, op->cp)) {
        return 0;
    }
    for (uint32_t i = 0; i < np->nservers; i++) {
        struct server *old = reload_find_server(op, np->servers[i].cs);
        if (old != NULL) {
            server_adopt(&np->servers[i], old);
            kept++;
        }
    }
    return kept;
}

/* New pool np takes what did not change from old pool op. */
static void reload_inherit(struct pool *np, struct pool *op)
{
    bool same_listen = reload_addr_same(&np->cp->listen, &op->cp->listen);
    if (strcmp(np->cp->name, op->cp->name) == 0) {
        /* the counters go on: dashboards see one pool, not a reset */
        memcpy(np->stats, op->stats, sizeof(np->stats));
        np->stats[SP_client_connections] = 0; /* recounted as clients move */
        np->lat_request = op->lat_request;
    }
    if (same_listen && op->listener.io.fd >= 0) {
        reload_take_listener(np, op);
    }
    uint32_t moved = 0;
    if (same_listen && np->proto == op->proto) {
        while (op->clients != NULL) {
            client_move(op->clients, np);
            moved++;
        }
    }
    uint32_t kept = reload_take_servers(np, op);
    log_notice("pool '%s' takes over from pool '%s': %u clients, %u of %u servers kept",
               np->cp->name, op->cp->name, moved, kept, np->nservers);
}

/* What is left of op finishes its work and goes: see reload_reap. */
static void reload_retire(struct instance *in, struct pool *op)
{
    pool_drain(op);
    ev_timer_stop(in->loop, &op->retry_timer);
    sentinel_destroy(op->sentinel);
    op->sentinel = NULL;
    op->retire_deadline_ms =
        ev_now(in->loop) + (uint64_t)in->conf->global.worker_shutdown_timeout * 1000u;
    op->next_retired = in->retired;
    in->retired = op;
}

static void reload_destroy_new(struct pool **pools, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        pool_destroy(pools[i]);
    }
    free(pools);
}

int reload_apply(struct instance *in, struct conf *next)
{
    uint32_t n = next->npools;
    struct pool **pools = calloc(n ? n : 1, sizeof(*pools));
    int pred[n + 1];
    if (pools == NULL) {
        log_error("reload: out of memory; the running configuration stays");
        return -1;
    }
    reload_match(in, next, pred);
    /* everything that can fail comes before the first change to the running pools */
    for (uint32_t i = 0; i < n; i++) {
        pools[i] = pool_create(in, next, i);
        bool keeps_listener = pred[i] >= 0 && reload_addr_same(&in->pools[pred[i]]->cp->listen,
                                                               &next->pools[i].listen);
        if (pools[i] == NULL || (!keeps_listener && pool_listen(pools[i]) != 0)) {
            log_error("reload: cannot set up pool '%s'; the running configuration stays",
                      next->pools[i].name);
            reload_destroy_new(pools, i + 1);
            return -1;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        if (pred[i] >= 0) {
            reload_inherit(pools[i], in->pools[pred[i]]);
        }
    }
    /* the new generation governs the old pools' shutdown timeout too */
    struct conf *prev = in->conf;
    in->conf = conf_ref(next);
    conf_unref(prev);
    for (uint32_t j = 0; j < in->npools; j++) {
        reload_retire(in, in->pools[j]);
    }
    free(in->pools);
    in->pools = pools;
    in->npools = n;
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; pools[i]->cp->preconnect && j < pools[i]->nservers; j++) {
            server_connect_all(&pools[i]->servers[j]);
        }
    }
    return 0;
}

static bool reload_pool_idle(const struct pool *p)
{
    if (p->nclients != 0) {
        return false;
    }
    for (uint32_t i = 0; i < p->nservers; i++) {
        if (!server_idle(&p->servers[i])) {
            return false;
        }
    }
    return true;
}

void reload_reap(struct instance *in)
{
    struct pool **pp = &in->retired;
    while (*pp != NULL) {
        struct pool *p = *pp;
        bool idle = reload_pool_idle(p);
        if (!idle && ev_now(in->loop) < p->retire_deadline_ms) {
            pp = &p->next_retired;
            continue;
        }
        *pp = p->next_retired;
        if (idle) {
            log_notice("retired pool '%s' finished its work", p->cp->name);
        } else {
            log_warn("retired pool '%s' still busy after the shutdown timeout: closing it",
                     p->cp->name);
        }
        pool_destroy(p);
    }
}

void reload_reap_all(struct instance *in)
{
    while (in->retired != NULL) {
        struct pool *p = in->retired;
        in->retired = p->next_retired;
        pool_destroy(p);
    }
}

uint64_t reload_retired_clients(const struct instance *in)
{
    uint64_t n = 0;
    for (const struct pool *p = in->retired; p != NULL; p = p->next_retired) {
        n += p->nclients;
    }
    return n;
}
