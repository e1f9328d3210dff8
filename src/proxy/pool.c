#include "proxy/pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "net/sock.h"
#include "proxy/client.h"
#include "proxy/cluster.h"
#include "proxy/health.h"
#include "proxy/proxy.h"
#include "proxy/replica.h"
#include "proxy/replica_check.h"
#include "proxy/sconn.h"
#include "proxy/server.h"

static enum pool_mode pool_mode_of(const struct conf_pool *cp)
{
    if (cp->redis_cluster) {
        return POOL_CLUSTER;
    }
    if (cp->nsentinels > 0) {
        return POOL_SENTINEL;
    }
    return cp->read_from != READ_FROM_NONE ? POOL_MASTER_REPLICA : POOL_PLAIN;
}

static void pool_listener_init(struct pool *p, struct listener *l, bool tls)
{
    ev_io_init(&l->io, -1, listener_on_accept, l);
    accept_rest_init(&l->rest, &l->io);
    l->pool = p;
    l->tls = tls;
}

struct pool *pool_create(struct proxy *px, struct conf *conf, uint32_t idx)
{
    struct pool *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return NULL;
    }
    p->px = px;
    p->conf = conf_ref(conf);
    p->cp = &conf->pools[idx];
    p->proto = p->cp->redis ? &proto_redis : &proto_memcache;
    p->idx = idx;
    p->mode = pool_mode_of(p->cp);
    p->replica_reads = p->mode == POOL_SENTINEL && conf_reads_replicas(p->cp->read_from);
    /* a cluster pool appends the nodes it learns: servers never move */
    p->cap_servers = p->mode == POOL_CLUSTER ? CLUSTER_POOL_MAX_SERVERS
                                             : (p->cp->nservers ? p->cp->nservers : 1);
    p->servers = calloc(p->cap_servers, sizeof(*p->servers));
    p->nodes = calloc(p->cap_servers, sizeof(*p->nodes));
    /* with listen_tls alone the pool's one address speaks TLS */
    pool_listener_init(p, &p->listener,
                       p->cp->listen_tls.enabled && p->cp->listen_tls_addr.text == NULL);
    pool_listener_init(p, &p->tls_listener, true);
    health_pool_init(p);
    ev_timer_init(&p->info.timer, NULL, p); /* info_pool_init sets it up */
    dist_init(&p->dist);
    if (p->servers == NULL || p->nodes == NULL) {
        pool_destroy(p);
        return NULL;
    }
    if (p->cp->server_connections > SERVER_CONNS_MAX && px->worker_id <= 0) {
        log_warn("pool '%s': server_connections %u: at most %u connections are opened to "
                 "each server",
                 p->cp->name, p->cp->server_connections, SERVER_CONNS_MAX);
    }
    for (uint32_t i = 0; i < p->cp->nservers; i++) {
        p->nservers++;
        if (server_init(&p->servers[i], p, &p->cp->servers[i], i) != 0) {
            pool_destroy(p);
            return NULL;
        }
    }
    pool_rebuild(p);
    if (info_pool_init(p) != 0 || (p->mode == POOL_CLUSTER && cluster_pool_init(p) != 0) ||
        replica_check_start(p) != 0) {
        pool_destroy(p);
        return NULL;
    }
    return p;
}

static void pool_close_one(struct pool *p, struct listener *l)
{
    accept_rest_stop(p->px->loop, &l->rest);
    if (l->io.fd >= 0) {
        ev_io_stop(p->px->loop, &l->io);
        close(l->io.fd);
        l->io.fd = -1;
        p->px->curr_connections--;
    }
}

static void pool_close_listener(struct pool *p)
{
    pool_close_one(p, &p->listener);
    pool_close_one(p, &p->tls_listener);
}

void pool_drain(struct pool *p)
{
    pool_close_listener(p);
    for (struct client *c = p->clients; c != NULL; c = c->next) {
        client_drain(c);
    }
}

static void pool_stop_watcher(struct pool *p)
{
    if (p->watcher != NULL) {
        p->watcher->stop(p->watcher); /* it points at the servers: it goes first */
        p->watcher = NULL;
    }
}

/* Hidden replicas of this pool's groups that left their set: they count into
 * the groups about to be freed, so they go first. */
static void pool_free_dead_servers(struct pool *p)
{
    struct server **pp = &p->px->dead_servers;
    while (*pp != NULL) {
        struct server *s = *pp;
        if (s->pool != p) {
            pp = &s->next_dead;
            continue;
        }
        *pp = s->next_dead;
        replica_ep_free(s);
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
    health_pool_stop(p);
    pool_stop_watcher(p);
    replica_check_stop(p);
    info_pool_free(p);
    pool_free_dead_servers(p);
    cluster_pool_stop(p); /* its held requests answered, before the nodes go */
    for (uint32_t i = 0; p->servers != NULL && i < p->nservers; i++) {
        server_deinit(&p->servers[i]); /* also one whose connections a reload moved */
    }
    cluster_pool_free(p);
    free(p->servers);
    free(p->nodes);
    dist_free(&p->dist);
    conf_unref(p->conf);
    free(p);
}

static int pool_listen_on(struct pool *p, struct listener *l, const struct conf_addr *a)
{
    int worker = p->px->worker_id;
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
    pool_listen_fd(p, l == &p->tls_listener, fd);
    return 0;
}

void pool_listen_fd(struct pool *p, bool tls_addr, int fd)
{
    struct listener *l = tls_addr ? &p->tls_listener : &p->listener;
    const struct conf_addr *a = tls_addr ? &p->cp->listen_tls_addr : &p->cp->listen;
    ev_io_init(&l->io, fd, listener_on_accept, l);
    ev_io_set(p->px->loop, &l->io, EV_READ);
    p->px->curr_connections++;
    p->px->total_connections++;
    log_notice("pool '%s' listening on '%s' (%s%s, %u servers)", p->cp->name, a->text,
               p->proto->name, l->tls ? " over TLS" : "", p->nservers);
}

void pool_stop_accepting(struct pool *p)
{
    pool_close_listener(p);
}

int pool_listen_only(struct pool *p, bool main, bool tls)
{
    if (main && pool_listen_on(p, &p->listener, &p->cp->listen) != 0) {
        return -1;
    }
    if (tls && p->cp->listen_tls_addr.text != NULL &&
        pool_listen_on(p, &p->tls_listener, &p->cp->listen_tls_addr) != 0) {
        return -1;
    }
    return 0;
}

int pool_listen(struct pool *p)
{
    return pool_listen_only(p, true, true);
}

void pool_rebuild(struct pool *p)
{
    if (p->mode == POOL_CLUSTER) {
        return; /* the cluster places keys (cluster.c) */
    }
    for (uint32_t i = 0; i < p->nservers; i++) {
        const struct server *s = &p->servers[i];
        p->nodes[i].name = s->cs->name;
        p->nodes[i].name_len = strlen(s->cs->name);
        p->nodes[i].weight = s->cs->weight;
        /* a master takes no keys: the distribution places reads among its replicas,
         * those that have the master's data (replica_check.h) */
        bool master = p->mode == POOL_MASTER_REPLICA && i == p->cp->master;
        p->nodes[i].live = !s->health.ejected && !master && replica_check_reads(p, i);
    }
    if (dist_build(&p->dist, p->cp->distribution, p->nodes, p->nservers) != 0) {
        log_error("pool '%s': out of memory rebuilding the distribution", p->cp->name);
    }
}

void pool_retire(struct pool *p)
{
    struct proxy *px = p->px;
    pool_drain(p);
    health_pool_stop(p);
    pool_stop_watcher(p);
    replica_check_stop(p); /* its distribution stays as it is */
    cluster_pool_retire(p);
    ev_timer_stop(px->loop, &p->info.timer);
    p->retire_deadline_ms = ev_now(px->loop) + (uint64_t)px->shutdown_timeout_s * 1000u;
    p->next_retired = px->retired;
    px->retired = p;
}

bool pool_idle(const struct pool *p)
{
    if (p->nclients != 0 || !cluster_pool_idle(p)) {
        return false;
    }
    for (uint32_t i = 0; i < p->nservers; i++) {
        if (!server_idle(&p->servers[i])) {
            return false;
        }
    }
    for (const struct server *s = p->px->dead_servers; s != NULL; s = s->next_dead) {
        if (s->pool == p && !server_idle(s)) {
            return false;
        }
    }
    return true;
}

void pool_preconnect(struct pool *p)
{
    for (uint32_t i = 0; p->cp->preconnect && i < p->nservers; i++) {
        server_connect_all(&p->servers[i]);
    }
}
