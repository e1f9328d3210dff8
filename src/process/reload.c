#include "process/reload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"
#include "process/instance.h"
#include "process/master.h"
#include "proxy/client.h"
#include "proxy/cluster.h"
#include "proxy/pool.h"
#include "proxy/replica_check.h"
#include "proxy/server.h"

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

/* The TLS settings a server connection was made with. The files' contents are
 * not compared: a connection made with the old certificate stays (rotation
 * without drops), and the next one made uses the new generation's context. */
static bool reload_tls_same(const struct conf_tls *a, const struct conf_tls *b)
{
    return a->enabled == b->enabled && a->verify == b->verify &&
           reload_str_same(a->server_name, b->server_name) &&
           reload_str_same(a->ca_file, b->ca_file) && reload_str_same(a->ca_dir, b->ca_dir) &&
           reload_str_same(a->cert_file, b->cert_file) && reload_str_same(a->key_file, b->key_file);
}

/* What a server connection was set up with: a change means new connections. */
static bool reload_conn_settings_same(const struct conf_pool *a, const struct conf_pool *b)
{
    return a->redis == b->redis && a->redis_cluster == b->redis_cluster &&
           a->server_connections == b->server_connections && a->tcpkeepalive == b->tcpkeepalive &&
           a->redis_db == b->redis_db && reload_str_same(a->redis_auth, b->redis_auth) &&
           reload_str_same(a->redis_auth_user, b->redis_auth_user) &&
           reload_tls_same(&a->tls, &b->tls);
}

/*
 * pred[i]: the index of the old pool new pool i inherits from, or -1. A pool
 * that kept its listen address first (its clients are the ones to keep), then
 * one that kept its name; an old pool is inherited at most once.
 */
static void reload_match(const struct proxy *px, const struct conf *next, int *pred)
{
    bool taken[px->npools + 1];
    memset(taken, 0, sizeof(taken));
    for (uint32_t i = 0; i < next->npools; i++) {
        pred[i] = -1;
        for (uint32_t j = 0; j < px->npools; j++) {
            if (!taken[j] && reload_addr_same(&px->pools[j]->cp->listen, &next->pools[i].listen)) {
                pred[i] = (int)j;
                taken[j] = true;
                break;
            }
        }
    }
    for (uint32_t i = 0; i < next->npools; i++) {
        for (uint32_t j = 0; pred[i] < 0 && j < px->npools; j++) {
            if (!taken[j] && strcmp(px->pools[j]->cp->name, next->pools[i].name) == 0) {
                pred[i] = (int)j;
                taken[j] = true;
            }
        }
    }
}

/* Whether new pool i keeps the listen_tls_addr socket of old pool op. */
static bool reload_keeps_tls_listener(const struct pool *op, const struct conf_pool *ncp)
{
    return op != NULL && op->cp->listen_tls_addr.text != NULL &&
           ncp->listen_tls_addr.text != NULL &&
           reload_addr_same(&op->cp->listen_tls_addr, &ncp->listen_tls_addr);
}

/* The socket of listener from moves to listener to; whether its clients speak
 * TLS is the new pool's to say (a rotated certificate serves the next accept). */
static void reload_move_listener(struct ev_loop *loop, struct listener *to, struct listener *from)
{
    int fd = from->io.fd;
    accept_rest_stop(loop, &from->rest);
    ev_io_stop(loop, &from->io);
    from->io.fd = -1;
    ev_io_init(&to->io, fd, listener_on_accept, to);
    ev_io_set(loop, &to->io, EV_READ);
}

/* A kept unix listener takes the new mode; with none written, the mode a fresh
 * socket would get (all the umask lets through), not the old file's. */
static void reload_listen_mode(const struct pool *np, const struct pool *op)
{
    const struct conf_addr *na = &np->cp->listen;
    if (na->path == NULL || na->perm == op->cp->listen.perm) {
        return;
    }
    mode_t mode = (mode_t)na->perm;
    if (mode == 0) {
        mode_t mask = umask(0);
        umask(mask);
        mode = 0777 & ~mask;
    }
    if (chmod(na->path, mode) != 0) {
        log_warn("pool '%s': cannot chmod '%s': %s", np->cp->name, na->path, strerror(errno));
    }
}

static void reload_take_listener(struct pool *np, struct pool *op)
{
    struct ev_loop *loop = np->px->loop;
    int fd = op->listener.io.fd;
    reload_move_listener(loop, &np->listener, &op->listener);
    /* the socket stays open, so nobody connecting sees a refusal; the new
     * backlog and unix socket mode apply to it as they are */
    if (listen(fd, np->cp->backlog) != 0) {
        log_warn("pool '%s': cannot change the backlog of '%s': %s", np->cp->name,
                 np->cp->listen.text, strerror(errno));
    }
    reload_listen_mode(np, op);
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
            replica_check_inherit(np, i, op, old->idx);
            kept++;
        }
    }
    if (kept > 0) {
        pool_rebuild(np); /* with the replicas the check had left out */
    }
    return kept;
}

/* The clients of op go on in np; a client whose subscriptions, watch or
 * transaction are on a server np did not keep stays in op, which closes it once
 * answered (as a server that went away would). Returns how many moved. */
static uint32_t reload_move_clients(struct pool *np, struct pool *op)
{
    uint32_t moved = 0, stayed = 0;
    struct client *next;
    for (struct client *c = op->clients; c != NULL; c = next) {
        next = c->next;
        if (client_move(c, np)) {
            moved++;
        } else {
            stayed++;
        }
    }
    if (stayed > 0) {
        log_notice("pool '%s': %u clients subscribed or watching on servers it does not keep "
                   "are closed once answered",
                   np->cp->name, stayed);
    }
    return moved;
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
    if (reload_keeps_tls_listener(op, np->cp) && op->tls_listener.io.fd >= 0) {
        reload_move_listener(np->px->loop, &np->tls_listener, &op->tls_listener);
        log_notice("pool '%s' keeps listening on '%s' (TLS)", np->cp->name,
                   np->cp->listen_tls_addr.text);
    }
    /* servers first: a moving client's own connections follow them (heir) */
    uint32_t kept = reload_take_servers(np, op);
    /* a cluster's nodes, slot map and held requests go on (proxy/cluster.h) */
    cluster_pool_inherit(np, op, reload_conn_settings_same(np->cp, op->cp));
    uint32_t moved = 0;
    if (same_listen && np->proto == op->proto) {
        moved = reload_move_clients(np, op);
    }
    for (uint32_t i = 0; i < op->nservers; i++) {
        op->servers[i].heir = NULL;
    }
    log_notice("pool '%s' takes over from pool '%s': %u clients, %u of %u servers kept",
               np->cp->name, op->cp->name, moved, kept, np->nservers);
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
    struct proxy *px = &in->px;
    uint32_t n = next->npools;
    struct pool **pools = calloc(n ? n : 1, sizeof(*pools));
    int pred[n + 1];
    if (pools == NULL) {
        log_error("reload: out of memory; the running configuration stays");
        return -1;
    }
    reload_match(px, next, pred);
    /* everything that can fail comes before the first change to the running pools */
    for (uint32_t i = 0; i < n; i++) {
        pools[i] = instance_pool_create(in, next, i);
        struct pool *op = pred[i] >= 0 ? px->pools[pred[i]] : NULL;
        bool keeps_listener =
            op != NULL && reload_addr_same(&op->cp->listen, &next->pools[i].listen);
        bool keeps_tls = reload_keeps_tls_listener(op, &next->pools[i]);
        if (pools[i] == NULL || pool_listen_only(pools[i], !keeps_listener, !keeps_tls) != 0) {
            log_error("reload: cannot set up pool '%s'; the running configuration stays",
                      next->pools[i].name);
            reload_destroy_new(pools, i + 1);
            return -1;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        if (pred[i] >= 0) {
            reload_inherit(pools[i], px->pools[pred[i]]);
        }
    }
    /* the new generation governs the old pools' shutdown timeout too */
    struct conf *prev = in->conf;
    in->conf = conf_ref(next);
    conf_unref(prev);
    px->shutdown_timeout_s = (uint32_t)next->global.worker_shutdown_timeout;
    for (uint32_t j = 0; j < px->npools; j++) {
        pool_retire(px->pools[j]);
    }
    free(px->pools);
    px->pools = pools;
    px->npools = n;
    for (uint32_t i = 0; i < n; i++) {
        pool_preconnect(pools[i]);
    }
    return 0;
}

static int64_t reload_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void reload_failed(struct instance *in)
{
    in->reload_failures++;
    in->last_reload = STATS_RELOAD_FAILED;
    in->last_reload_ms = reload_wall_ms();
}

void reload_run(struct instance *in)
{
    const char *path = in->opts.conf_file;
    struct conf_errors errs;
    conf_errors_init(&errs);
    struct conf *next = conf_reload(path, &errs);
    for (uint32_t i = 0; i < errs.n; i++) {
        log_error("%s", errs.msgs[i]);
    }
    conf_errors_free(&errs);
    if (next == NULL) {
        log_error("reload: configuration file '%s' is invalid; the running configuration stays",
                  path);
        reload_failed(in);
        return;
    }
    if (reload_apply(in, next) == 0) {
        in->generation++;
        in->last_reload = STATS_RELOAD_OK;
        in->last_reload_ms = reload_wall_ms();
        log_notice("reload: configuration '%s' applied, %u pools, generation %llu", path,
                   in->px.npools, (unsigned long long)in->generation);
        if (in->worker_id < 0 && master_workers(&next->global) > 0) {
            log_warn("reload: worker_processes changes only with a restart or a binary upgrade: "
                     "staying one process");
        }
    } else {
        reload_failed(in);
    }
    conf_unref(next);
}
