#include "proxy/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/instance.h"
#include "core/log.h"
#include "hash/hash.h"
#include "net/sock.h"
#include "proxy/client.h"
#include "proxy/replica.h"
#include "proxy/server.h"
#include "sentinel/sentinel.h"

static void pool_on_retry(struct ev_loop *loop, struct ev_timer *t);

struct pool *pool_create(struct instance *in, struct conf *conf, uint32_t idx)
{
    struct pool *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->inst = in;
    p->conf = conf_ref(conf);
    p->cp = &conf->pools[idx];
    p->proto = p->cp->redis ? &proto_redis : &proto_memcache;
    p->idx = idx;
    p->nservers = p->cp->nservers;
    p->servers = calloc(p->nservers, sizeof(*p->servers));
    p->nodes = calloc(p->nservers, sizeof(*p->nodes));
    ev_io_init(&p->listener.io, -1, listener_on_accept, p);
    ev_timer_init(&p->listener.pause, listener_on_resume, p);
    p->listener.pool = p;
    ev_timer_init(&p->retry_timer, pool_on_retry, p);
    dist_init(&p->dist);
    if (p->servers == NULL || p->nodes == NULL) {
        pool_destroy(p);
        return NULL;
    }
    for (uint32_t i = 0; i < p->nservers; i++) {
        if (server_init(&p->servers[i], p, &p->cp->servers[i], i) != 0) {
            pool_destroy(p);
            return NULL;
        }
    }
    pool_rebuild(p);
    if (p->cp->nsentinels > 0) {
        p->sentinel = sentinel_create(p);
        if (p->sentinel == NULL) {
            pool_destroy(p);
            return NULL;
        }
    }
    return p;
}

static void pool_close_listener(struct pool *p)
{
    ev_timer_stop(p->inst->loop, &p->listener.pause);
    if (p->listener.io.fd >= 0) {
        ev_io_stop(p->inst->loop, &p->listener.io);
        close(p->listener.io.fd);
        p->listener.io.fd = -1;
        p->inst->curr_connections--;
    }
}

void pool_drain(struct pool *p)
{
    pool_close_listener(p);
    for (struct client *c = p->clients; c != NULL; c = c->next) {
        client_drain(c);
    }
}

void pool_destroy(struct pool *p)
{
    if (p == NULL) {
        return;
    }
    pool_close_listener(p);
    while (p->clients != NULL) {
        client_close(p->clients);
    }
    ev_timer_stop(p->inst->loop, &p->retry_timer);
    sentinel_destroy(p->sentinel); /* its probes point at the servers */
    for (uint32_t i = 0; p->servers != NULL && i < p->nservers; i++) {
        server_deinit(&p->servers[i]); /* also one whose connections a reload moved */
    }
    free(p->servers);
    free(p->nodes);
    dist_free(&p->dist);
    conf_unref(p->conf);
    free(p);
}

int pool_listen(struct pool *p)
{
    const struct conf_addr *a = &p->cp->listen;
    int worker = p->inst->worker_id;
    if (a->path != NULL && worker > 0) {
        /* a unix path names one socket, which SO_REUSEPORT cannot share: the
         * first worker serves it (README, worker processes) */
        log_info("pool '%s': '%s' is served by worker 0", p->cp->name, a->text);
        return 0;
    }
    /* workers each bind their own socket; the kernel spreads connections */
    int fd = sock_listen((const struct sockaddr *)&a->sa, a->salen, p->cp->backlog,
                         p->cp->reuseport || worker >= 0, a->perm);
    if (fd < 0) {
        log_error("failed to listen on '%s' for pool '%s': %s", a->text, p->cp->name,
                  strerror(errno));
        return -1;
    }
    ev_io_init(&p->listener.io, fd, listener_on_accept, p);
    ev_io_set(p->inst->loop, &p->listener.io, EV_READ);
    p->inst->curr_connections++;
    p->inst->total_connections++;
    log_notice("pool '%s' listening on '%s' (%s, %u servers)", p->cp->name, a->text, p->proto->name,
               p->nservers);
    return 0;
}

void pool_rebuild(struct pool *p)
{
    for (uint32_t i = 0; i < p->nservers; i++) {
        const struct conf_server *cs = p->servers[i].cs;
        p->nodes[i].name = cs->name;
        p->nodes[i].name_len = strlen(cs->name);
        p->nodes[i].weight = cs->weight;
        /* a master takes no keys: the distribution places reads among its replicas */
        p->nodes[i].live = !p->servers[i].ejected && !replica_server_is_master(&p->servers[i]);
    }
    if (dist_build(&p->dist, p->cp->distribution, p->nodes, p->nservers) != 0) {
        log_error("pool '%s': out of memory rebuilding the distribution", p->cp->name);
    }
}

/* twemproxy's shortcut to server 0 for a one-server pool or an empty key; among
 * replicas the distribution decides, since server 0 may be the master or an
 * ejected replica */
static bool pool_takes_server0(const struct pool *p, size_t len)
{
    return !replica_pool_is_split(p) && (p->nservers == 1 || len == 0);
}

uint32_t pool_key_hash(const struct pool *p, const uint8_t *key, size_t len)
{
    if (p->cp->has_hash_tag) {
        key = hash_tag_apply(key, len, p->cp->hash_tag, &len);
    }
    return hash_key(p->cp->hash, key, len);
}

struct server *pool_route_hashed(struct pool *p, uint32_t hash, size_t len)
{
    int idx;
    if (pool_takes_server0(p, len)) {
        idx = p->servers[0].ejected ? -1 : 0;
    } else {
        idx = dist_pick(&p->dist, hash, (uint32_t)random());
    }
    return idx < 0 ? NULL : &p->servers[idx];
}

struct server *pool_route(struct pool *p, const uint8_t *key, size_t len)
{
    uint32_t hash = pool_takes_server0(p, len) ? 0 : pool_key_hash(p, key, len);
    return pool_route_hashed(p, hash, len);
}

static void pool_arm_retry(struct pool *p)
{
    uint64_t next = 0;
    for (uint32_t i = 0; i < p->nservers; i++) {
        struct server *s = &p->servers[i];
        if (s->ejected && (next == 0 || s->retry_at_ms < next)) {
            next = s->retry_at_ms;
        }
    }
    if (next != 0) {
        ev_timer_start_at(p->inst->loop, &p->retry_timer, next);
    } else {
        ev_timer_stop(p->inst->loop, &p->retry_timer);
    }
}

void pool_eject(struct pool *p, struct server *s)
{
    if (replica_server_is_master(s)) {
        /* writes have nowhere else to go: keep trying the master */
        s->failures = 0;
        return;
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    s->ejected = true;
    s->retry_at_ms = ev_now(p->inst->loop) + (uint64_t)p->cp->server_retry_timeout_ms;
    s->stats[SS_server_ejected_at] = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
    p->stats[SP_server_ejects]++;
    log_warn("pool '%s': server '%s' ejected after %u failures, retry in %lld ms", p->cp->name,
             s->cs->name, s->failures, (long long)p->cp->server_retry_timeout_ms);
    pool_rebuild(p);
    pool_arm_retry(p);
}

static void pool_on_retry(struct ev_loop *loop, struct ev_timer *t)
{
    struct pool *p = t->data;
    bool changed = false;
    for (uint32_t i = 0; i < p->nservers; i++) {
        struct server *s = &p->servers[i];
        if (s->ejected && s->retry_at_ms <= ev_now(loop)) {
            s->ejected = false;
            changed = true;
            log_notice("pool '%s': server '%s' is back in the distribution", p->cp->name,
                       s->cs->name);
        }
    }
    if (changed) {
        pool_rebuild(p);
    }
    pool_arm_retry(p);
}
