/*
 * cluster: a cluster pool's state: its nodes (servers of the pool), the slot
 * map, what a reload carries over. See cluster.h.
 */
#include "proxy/cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/sock.h"
#include "proxy/client.h"
#include "proxy/cluster_int.h"
#include "proxy/hold.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/pubsub.h"
#include "proxy/replica_check.h"
#include "proxy/req.h"
#include "proxy/route.h"
#include "proxy/sconn.h"
#include "proxy/server.h"

/* A node learned at run time: its conf lives as long as its server. */
struct cluster_node_conf {
    struct conf_server cs;
    char name[CLUSTER_HOST_MAX + 16];
    char host[CLUSTER_HOST_MAX + 1];
};

int cluster_pool_init(struct pool *p)
{
    struct cluster *cl = calloc(1, sizeof(*cl));
    if (cl == NULL) {
        return -1;
    }
    cl->nodes = calloc(p->cap_servers, sizeof(*cl->nodes));
    if (cl->nodes == NULL) {
        free(cl);
        return -1;
    }
    cl->p = p;
    for (uint32_t i = 0; i < CLUSTER_SLOTS; i++) {
        cl->owner[i] = NODE_NONE;
    }
    for (uint32_t i = 0; i < p->cap_servers; i++) {
        cl->nodes[i].replica_of = NODE_NONE;
    }
    cluster_topo_init(&cl->topo);
    p->cluster = cl;
    cluster_refresh_init(cl);
    cluster_refresh_soon(cl);
    return 0;
}

/* The replica checks end (the pool closes or retires): reads go to any replica
 * the map lists, as before its first answer. */
static void cluster_checks_stop(struct cluster *cl)
{
    for (uint32_t i = 0; i < cl->p->cap_servers; i++) {
        replica_check_free(cl->nodes[i].check);
        cl->nodes[i].check = NULL;
    }
}

void cluster_pool_stop(struct pool *p)
{
    struct cluster *cl = p->cluster;
    if (cl == NULL || cl->closing) {
        return;
    }
    cl->closing = true;
    cluster_checks_stop(cl);
    cluster_refresh_stop(cl);
    cluster_poll_stop(cl);
    struct hold *h = cl->hold;
    cl->hold = NULL;
    hold_cluster_free(h, "proxy is shutting down");
}

void cluster_pool_free(struct pool *p)
{
    struct cluster *cl = p->cluster;
    if (cl == NULL) {
        return;
    }
    cluster_pool_stop(p);
    for (uint32_t i = 0; i < p->cap_servers; i++) {
        free(cl->nodes[i].own); /* after its server: server->cs points into it */
    }
    free(cl->nodes);
    free(cl->slot_next_ms);
    cluster_topo_free(&cl->topo);
    free(cl);
    p->cluster = NULL;
}

void cluster_pool_retire(struct pool *p)
{
    if (p->cluster != NULL) {
        cluster_refresh_stop(p->cluster); /* held requests still go out (poll) */
        cluster_checks_stop(p->cluster);
    }
}

bool cluster_pool_idle(const struct pool *p)
{
    return p->cluster == NULL || hold_cluster_count(p->cluster->hold) == 0;
}

const int64_t *cluster_stats(const struct pool *p)
{
    return p->cluster != NULL ? p->cluster->stats : NULL;
}

struct hold *cluster_hold_of(const struct pool *p)
{
    return p->cluster != NULL ? p->cluster->hold : NULL;
}

uint32_t cluster_server_index(const struct cluster *cl, const struct server *s)
{
    (void)cl;
    return s->idx;
}

bool cluster_is_master(const struct server *s)
{
    const struct cluster *cl = s->pool->cluster;
    return cl != NULL && s->owner == NULL && cl->nodes[s->idx].in_map && cl->nodes[s->idx].master;
}

bool cluster_pending(struct pool *p, const uint8_t *key, size_t len)
{
    struct cluster *cl = p->cluster;
    if (cl == NULL || cl->closing) {
        return false;
    }
    if (!cl->known) {
        return true; /* the first map is being asked for */
    }
    bool none = key != NULL ? cl->owner[cluster_key_slot(key, len)] == NODE_NONE
                            : cluster_any_master(p, NULL) == NULL;
    if (none) {
        cluster_refresh_soon(cl); /* (nothing else may be waiting to ask) */
    }
    return none;
}

/* A master of the map that is not known to be failing. */
static bool cluster_master_answers(const struct cluster *cl, uint32_t i)
{
    const struct cluster_node *n = &cl->nodes[i];
    return n->in_map && n->master && !n->down && !n->failed && !n->says_down && !n->stalled;
}

bool cluster_master_fails(struct pool *p)
{
    struct cluster *cl = p->cluster;
    for (uint32_t i = 0; cl != NULL && !cl->closing && i < p->nservers; i++) {
        if (cl->nodes[i].in_map && cl->nodes[i].master && !cluster_master_answers(cl, i)) {
            return true;
        }
    }
    return false;
}

struct server *cluster_any_master(struct pool *p, struct server *prefer)
{
    struct cluster *cl = p->cluster;
    if (cl == NULL || (prefer != NULL && cluster_master_answers(cl, prefer->idx))) {
        return prefer;
    }
    struct server *any = NULL;
    for (uint32_t i = 0; i < p->nservers; i++) {
        if (cluster_master_answers(cl, i)) {
            return &p->servers[i];
        }
        if (any == NULL && cl->nodes[i].in_map && cl->nodes[i].master) {
            any = &p->servers[i];
        }
    }
    return prefer != NULL ? prefer : any; /* none answers: its failure says why */
}

bool cluster_degraded(const struct cluster *cl)
{
    if (!cl->known || hold_cluster_count(cl->hold) > 0) {
        return true;
    }
    for (uint32_t i = 0; i < cl->p->nservers; i++) {
        if (cl->nodes[i].in_map && cl->nodes[i].master &&
            (cl->nodes[i].down || cl->nodes[i].failed || cl->nodes[i].says_down ||
             cl->nodes[i].stalled)) {
            return true;
        }
    }
    return false;
}

bool cluster_node_down(const struct server *s)
{
    const struct cluster *cl = s->pool->cluster;
    return cl != NULL && !cl->closing && cl->nodes[s->idx].down;
}

void cluster_node_mark_down(struct cluster *cl, struct server *s)
{
    struct cluster_node *n = &cl->nodes[s->idx];
    if (!n->down) {
        log_warn("pool '%s': cluster node '%s' cannot be reached: its requests wait",
                 cl->p->cp->name, s->cs->name);
    }
    n->down = true;
    n->retry_at_ms = ev_now(cl->p->px->loop) + CLUSTER_NODE_RETRY_MS;
    cluster_refresh_soon(cl);
}

/* ------------------------------------------------------------ nodes */

static struct server *cluster_find(struct cluster *cl, const struct sockaddr_storage *ss,
                                   socklen_t len)
{
    struct pool *p = cl->p;
    for (uint32_t i = 0; i < p->nservers; i++) {
        if (server_addr_is(&p->servers[i], (const struct sockaddr *)ss, len)) {
            return &p->servers[i];
        }
    }
    return NULL;
}

static bool cluster_owns_slots(const struct cluster *cl, uint32_t idx)
{
    for (uint32_t i = 0; i < CLUSTER_SLOTS; i++) {
        if (cl->owner[i] == idx) {
            return true;
        }
    }
    return false;
}

/* Once every place of the pool is taken: the place of a node learned at run
 * time that the map no longer names, whose connections are closed
 * (cluster_apply_forget), owning no slot, not asked for the map. -1: none.
 * Nodes of a cluster whose members change address (containers restarted)
 * would otherwise fill the places for good, and the slots of a node that came
 * after that would have no node to go to. */
static int cluster_free_place(const struct cluster *cl)
{
    const struct pool *p = cl->p;
    for (uint32_t i = p->cp->nservers; i < p->nservers; i++) {
        const struct cluster_node *n = &cl->nodes[i];
        const struct server *s = &p->servers[i];
        if (n->in_map || n->forgotten || n->canary_out || n->check != NULL || !server_idle(s) ||
            (cl->qconn != NULL && cl->qconn->server == s) || cluster_owns_slots(cl, i)) {
            continue;
        }
        return (int)i;
    }
    return -1;
}

/* The place idx (cluster_free_place) for the node of nc. NULL when out of
 * memory: the place then keeps its old node, with no connection. */
static struct server *cluster_node_reuse(struct cluster *cl, uint32_t idx,
                                         struct cluster_node_conf *nc)
{
    struct pool *p = cl->p;
    struct server *s = &p->servers[idx];
    struct conf_server *old = cl->nodes[idx].own;
    log_notice("pool '%s': cluster node '%s' takes the place of '%s', which left the cluster",
               p->cp->name, nc->name, old->name);
    server_deinit(s);
    if (server_init(s, p, &nc->cs, idx) != 0) {
        server_deinit(s);
        s->cs = old;
        free(nc);
        return NULL;
    }
    free(old); /* after its server: server->cs pointed into it */
    cl->nodes[idx] = (struct cluster_node){.own = &nc->cs, .replica_of = NODE_NONE};
    return s;
}

/* A new server for the node at ss (named host:port), appended to the pool, or
 * with reuse, once the pool is full, in the place of a node that left.
 * *full: NULL because the pool is full. */
static struct server *cluster_node_add(struct cluster *cl, const struct sockaddr_storage *ss,
                                       socklen_t len, const char *host, int port, bool reuse,
                                       bool *full)
{
    struct pool *p = cl->p;
    int at = p->nservers < p->cap_servers ? (int)p->nservers : reuse ? cluster_free_place(cl) : -1;
    if (at < 0) {
        if (reuse) {
            log_error("pool '%s': more than %u cluster nodes, none of them gone: %s:%d is not "
                      "used",
                      p->cp->name, p->cap_servers, host, port);
        }
        *full = true;
        return NULL;
    }
    struct cluster_node_conf *nc = calloc(1, sizeof(*nc));
    if (nc == NULL) {
        return NULL;
    }
    snprintf(nc->host, sizeof(nc->host), "%s", host);
    bool v6 = strchr(host, ':') != NULL;
    snprintf(nc->name, sizeof(nc->name), v6 ? "[%s]:%d" : "%s:%d", host, port);
    nc->cs.name = nc->name;
    nc->cs.pname = nc->name;
    nc->cs.weight = 1;
    nc->cs.addr.text = nc->name;
    nc->cs.addr.host = nc->host;
    nc->cs.addr.port = port;
    memcpy(&nc->cs.addr.sa, ss, len);
    nc->cs.addr.salen = len;
    uint32_t idx = (uint32_t)at;
    if (idx < p->nservers) {
        return cluster_node_reuse(cl, idx, nc);
    }
    struct server *s = &p->servers[idx];
    if (server_init(s, p, &nc->cs, idx) != 0) {
        server_deinit(s);
        free(nc);
        return NULL;
    }
    cl->nodes[idx] = (struct cluster_node){.own = &nc->cs, .replica_of = NODE_NONE};
    p->nservers++;
    log_notice("pool '%s': cluster node '%s' added", p->cp->name, nc->name);
    return s;
}

/* The socket address of a node a topology names (a: with its host as used). */
static int cluster_node_resolve(struct cluster *cl, const struct cluster_node_addr *addr,
                                const struct server *asked, struct cluster_node_addr *a,
                                struct sockaddr_storage *ss, socklen_t *len)
{
    char host[CLUSTER_HOST_MAX + 1];
    if (addr->host[0] == '\0' && asked != NULL) {
        /* an old node names itself "": the address we reached it at, its port */
        sock_addr_str((const struct sockaddr *)&asked->addr.ss, asked->addr.len, host,
                      sizeof(host));
        char *colon = strrchr(host, ':');
        if (colon != NULL) {
            *colon = '\0';
        }
        if (host[0] == '[') {
            memmove(host, host + 1, strlen(host));
            host[strlen(host) - 1] = '\0';
        }
    } else {
        snprintf(host, sizeof(host), "%s", addr->host);
    }
    *a = *addr;
    snprintf(a->host, sizeof(a->host), "%s", host);
    if (strcmp(a->host, "?") == 0 || a->host[0] == '\0') {
        return -1;
    }
    if (cluster_msg_sockaddr(a, ss, len) != 0 && sock_resolve(a->host, a->port, 0, ss, len) != 0) {
        log_warn("pool '%s': cluster node '%s:%u' does not resolve", cl->p->cp->name, a->host,
                 (unsigned)a->port);
        return -1;
    }
    return 0;
}

static struct server *cluster_node_get(struct cluster *cl, const struct cluster_node_addr *addr,
                                       const struct server *asked, bool reuse, bool *full)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    struct cluster_node_addr a;
    *full = false;
    if (cluster_node_resolve(cl, addr, asked, &a, &ss, &len) != 0) {
        return NULL;
    }
    struct server *s = cluster_find(cl, &ss, len);
    return s != NULL ? s : cluster_node_add(cl, &ss, len, a.host, a.port, reuse, full);
}

struct server *cluster_node_at(struct cluster *cl, const struct cluster_node_addr *addr,
                               const struct server *asked)
{
    bool full;
    return cluster_node_get(cl, addr, asked, true, &full);
}

/* t names a node of the map by its id (one other than asked). */
static bool cluster_topo_names_known_id(const struct cluster *cl, const struct cluster_topo *t,
                                        const struct server *asked)
{
    for (uint32_t i = 0; i < cl->p->nservers; i++) {
        const struct cluster_node *n = &cl->nodes[i];
        if (!n->in_map || n->id[0] == '\0' || &cl->p->servers[i] == asked) {
            continue;
        }
        for (uint32_t k = 0; k < t->nnodes; k++) {
            if (strcmp(t->nodes[k].id, n->id) == 0) {
                return true;
            }
        }
    }
    return false;
}

bool cluster_topo_foreign(struct cluster *cl, const struct cluster_topo *t,
                          const struct server *asked)
{
    bool others = false;
    for (uint32_t i = 0; cl->known && i < cl->p->nservers && !others; i++) {
        const struct cluster_node *n = &cl->nodes[i];
        /* (nodes we cannot reach do not count: a cluster restarted whole at
         * new addresses, its old ones all gone, is taken at its word) */
        others = n->in_map && !n->down && &cl->p->servers[i] != asked;
    }
    if (!others) {
        return false; /* nothing to compare with: the first map, or a one-node cluster */
    }
    if (cluster_topo_names_known_id(cl, t, asked)) {
        return false; /* a node that changed address is still the same node */
    }
    bool unsure = false; /* a node we cannot place (a name that does not resolve now) */
    for (uint32_t i = 0; i < t->nnodes; i++) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        struct cluster_node_addr a;
        if (cluster_node_resolve(cl, &t->nodes[i].addr, asked, &a, &ss, &len) != 0) {
            unsure = true;
            continue;
        }
        struct server *s = cluster_find(cl, &ss, len);
        if (s != NULL && s != asked && cl->nodes[s->idx].in_map) {
            return false;
        }
    }
    return !unsure;
}

/* ------------------------------------------------------------ the map */

static void cluster_map_set(struct cluster *cl, uint16_t slot, uint16_t owner)
{
    if (cl->owner[slot] != owner) {
        /* one version per change of the map, however many slots it moves */
        cl->owner[slot] = owner;
        cl->changed[slot] = cl->version + 1;
    }
}

static void cluster_conn_say_readonly(struct sconn *sc, bool on)
{
    if (sc->state == SCONN_CLOSED) {
        return; /* it says it at its next connect */
    }
    struct buf *out = sconn_out(sc);
    size_t before = out->len;
    if (buf_append(out, on ? cluster_msg_readonly : cluster_msg_readwrite,
                   on ? cluster_msg_readonly_len : cluster_msg_readwrite_len) != 0) {
        sconn_reset(sc, "out of memory");
        return;
    }
    sconn_queued(sc, req_new(sc->server->pool->px, 0), out->len - before);
}

/* Connections to s say READONLY exactly while the map has s as a replica that
 * takes reads: a connection that said it to a node that is a master since
 * would have that node, once demoted again before the map says so, answer a
 * read meant for the master from its replica's data instead of with MOVED.
 * Open connections are told in order, behind what they carry (a request of no
 * client: its +OK is dropped); new ones say it at connect (sconn.c). */
static void cluster_set_readonly(struct server *s, bool on)
{
    if (s->readonly_conns == on) {
        return;
    }
    s->readonly_conns = on;
    for (uint32_t i = 0; i < s->nconns; i++) {
        cluster_conn_say_readonly(&s->conns[i], on);
        if (s->conns3 != NULL) {
            cluster_conn_say_readonly(&s->conns3[i], on);
        }
    }
}

/* The replicas that take reads say READONLY, every other node READWRITE. */
static void cluster_apply_readonly(struct cluster *cl)
{
    struct pool *p = cl->p;
    bool reads = conf_reads_replicas(p->cp->read_from);
    for (uint32_t i = 0; i < p->nservers; i++) {
        const struct cluster_node *n = &cl->nodes[i];
        cluster_set_readonly(&p->servers[i], reads && !n->master && n->replica_of != NODE_NONE);
    }
}

bool cluster_map_move(struct cluster *cl, uint16_t slot, struct server *s)
{
    struct cluster_node *n = &cl->nodes[s->idx];
    if (cl->owner[slot] == s->idx) {
        return false;
    }
    cluster_map_set(cl, slot, (uint16_t)s->idx);
    cl->version++;
    n->master = true;
    n->in_map = true;
    cluster_set_readonly(s, false);
    return true;
}

/* The nodes of t as servers (NULL for one that cannot be used). */
static void cluster_apply_nodes(struct cluster *cl, const struct cluster_topo *t,
                                const struct server *asked, struct server **srv)
{
    struct pool *p = cl->p;
    for (uint32_t i = 0; i < p->nservers; i++) {
        struct cluster_node *n = &cl->nodes[i];
        /* a learned node of the last map: forgotten unless this one names it */
        n->forgotten = i >= p->cp->nservers && (n->forgotten || n->in_map);
        n->in_map = n->master = n->failed = n->loading = false;
        n->replica_of = NODE_NONE;
        n->nreps = 0;
    }
    /* the nodes t names that the pool has first: a new one that takes the
     * place of one that left (cluster_free_place) must not take one of them
     * (in_map is set for each as it is found) */
    bool any_full = false;
    for (int pass = 0; pass < 2 && (pass == 0 || any_full); pass++) {
        for (uint32_t i = 0; i < t->nnodes; i++) {
            const struct cluster_topo_node *tn = &t->nodes[i];
            bool full = false;
            if (pass == 1 && srv[i] != NULL) {
                continue;
            }
            srv[i] = cluster_node_get(cl, &tn->addr, asked, pass == 1, &full);
            any_full |= full;
            if (srv[i] == NULL) {
                continue;
            }
            struct cluster_node *n = &cl->nodes[srv[i]->idx];
            n->in_map = true;
            if (tn->id[0] != '\0') {
                memcpy(n->id, tn->id, sizeof(n->id));
            }
            n->master |= tn->master;
            n->failed = tn->failed;
            n->loading = tn->loading;
        }
    }
}

/* A node learned at run time that the map no longer names has left the cluster:
 * its connections close once idle, and the clients' own there end (a removed node
 * hears no more of the cluster's messages: a subscriber there would be deaf). */
static void cluster_apply_forget(struct cluster *cl)
{
    struct pool *p = cl->p;
    for (uint32_t i = p->cp->nservers; i < p->nservers; i++) {
        struct cluster_node *n = &cl->nodes[i];
        n->forgotten = n->forgotten && !n->in_map;
        if (n->forgotten && server_idle(&p->servers[i])) {
            n->forgotten = false;
            log_notice("pool '%s': cluster node '%s' left the cluster: its connections close",
                       p->cp->name, p->servers[i].cs->name);
            server_reset_conns(&p->servers[i], "the node left the cluster");
        }
    }
}

/* Every replica of a shard, listed with the shard's master for reads. */
static void cluster_apply_replicas(struct cluster *cl, const struct cluster_topo *t,
                                   struct server **srv)
{
    for (uint32_t i = 0; i < t->nnodes; i++) {
        int m = cluster_topo_master(t, t->nodes[i].shard);
        if (t->nodes[i].master || m < 0 || srv[i] == NULL || srv[m] == NULL) {
            continue;
        }
        struct cluster_node *mn = &cl->nodes[srv[m]->idx];
        struct cluster_node *rn = &cl->nodes[srv[i]->idx];
        rn->replica_of = (uint16_t)srv[m]->idx;
        if (mn->nreps < CLUSTER_MAX_REPLICAS && !rn->master) {
            mn->reps[mn->nreps++] = (uint16_t)srv[i]->idx;
        }
    }
}

/* Each replica that may take reads is asked whether it has its master's data
 * (replica_check.h), as a static pool's are; a node that is no longer one is
 * not. A check that cannot be had (no memory) leaves the replica unchecked. */
static void cluster_apply_checks(struct cluster *cl)
{
    struct pool *p = cl->p;
    bool reads = conf_reads_replicas(p->cp->read_from) && !cl->stopped;
    for (uint32_t i = 0; i < p->nservers; i++) {
        struct cluster_node *n = &cl->nodes[i];
        /* replica_of is set for replicas in this map only (cluster_apply_replicas) */
        bool want = reads && !n->master && n->replica_of != NODE_NONE;
        if (want && n->check == NULL) {
            n->check = replica_check_new(p, &p->servers[i]);
        } else if (!want && n->check != NULL) {
            replica_check_free(n->check);
            n->check = NULL;
        }
    }
}

/* The masters of the map as they were before it changed: when they are others
 * now, keyspace subscribers subscribe again (pubsub_masters_changed). */
static bool *cluster_masters_before(const struct cluster *cl)
{
    bool *was = calloc(cl->p->nservers ? cl->p->nservers : 1, sizeof(*was));
    for (uint32_t i = 0; was != NULL && i < cl->p->nservers; i++) {
        was[i] = cl->nodes[i].in_map && cl->nodes[i].master;
    }
    return was;
}

/* (nbefore: the pool's servers then; the map may have added nodes since) */
static void cluster_masters_after(const struct cluster *cl, bool *was, uint32_t nbefore)
{
    bool changed = false;
    for (uint32_t i = 0; was != NULL && cl->known && i < cl->p->nservers; i++) {
        changed |= (i < nbefore && was[i]) != (cl->nodes[i].in_map && cl->nodes[i].master);
    }
    free(was);
    if (changed) {
        for (struct client *c = cl->p->clients; c != NULL; c = c->next) {
            pubsub_masters_changed(c, "the cluster's masters changed");
        }
    }
}

void cluster_apply(struct cluster *cl, const struct cluster_topo *t, const struct server *asked)
{
    struct server **srv = calloc(t->nnodes ? t->nnodes : 1, sizeof(*srv));
    uint16_t *owner = malloc(CLUSTER_SLOTS * sizeof(*owner));
    uint32_t nbefore = cl->p->nservers;
    bool *was = cluster_masters_before(cl);
    if (srv == NULL || owner == NULL) {
        free(srv);
        free(owner);
        free(was);
        return;
    }
    cluster_apply_nodes(cl, t, asked, srv);
    cluster_masters_after(cl, was, nbefore);
    cluster_apply_forget(cl);
    cluster_apply_replicas(cl, t, srv);
    cluster_apply_checks(cl);
    cluster_apply_readonly(cl);
    for (uint32_t i = 0; i < CLUSTER_SLOTS; i++) {
        owner[i] = NODE_NONE;
    }
    uint32_t covered = 0;
    for (uint32_t i = 0; i < t->nranges; i++) {
        int m = cluster_topo_master(t, t->ranges[i].shard);
        for (uint32_t s = t->ranges[i].start; m >= 0 && srv[m] != NULL && s <= t->ranges[i].end;
             s++) {
            covered += owner[s] == NODE_NONE;
            owner[s] = (uint16_t)srv[m]->idx;
        }
    }
    uint32_t moved = 0;
    for (uint32_t s = 0; s < CLUSTER_SLOTS; s++) {
        moved += cl->owner[s] != owner[s];
        cluster_map_set(cl, (uint16_t)s, owner[s]);
    }
    if (moved > 0) {
        cl->version++;
        log_info("pool '%s': cluster slot map: %u slots changed master, %u of %u covered",
                 cl->p->cp->name, moved, covered, CLUSTER_SLOTS);
    }
    if (!cl->known) {
        log_notice("pool '%s': cluster slot map learned: %u slots covered", cl->p->cp->name,
                   covered);
    }
    cl->known = true;
    int64_t nodes = 0;
    for (uint32_t i = 0; i < cl->p->nservers; i++) {
        nodes += cl->nodes[i].in_map;
    }
    cl->stats[SC_cluster_nodes] = nodes;
    free(srv);
    free(owner);
    cluster_kick(cl);
}

/* ------------------------------------------------------------ routing as the map is */

bool cluster_keys_one_slot(const uint8_t *req, const struct spans *keys)
{
    for (uint32_t i = 1; i < keys->n; i++) {
        if (cluster_key_slot(req + keys->v[i].off, keys->v[i].len) !=
            cluster_key_slot(req + keys->v[0].off, keys->v[0].len)) {
            return false;
        }
    }
    return true;
}

int cluster_route_key(struct pool *p, const uint8_t *key, size_t len, bool readonly,
                      struct route *out)
{
    struct cluster *cl = p->cluster;
    (void)readonly; /* transactions and subscriptions stay on the masters */
    uint16_t o = cl != NULL ? cl->owner[cluster_key_slot(key, len)] : NODE_NONE;
    out->shard = out->target = o != NODE_NONE ? &p->servers[o] : NULL;
    return out->target != NULL ? ROUTE_HIT : ROUTE_MISS_SERVER;
}

struct server *cluster_slot_master(struct pool *p, uint16_t slot)
{
    struct cluster *cl = p->cluster;
    uint16_t o = cl != NULL ? cl->owner[slot] : NODE_NONE;
    return o != NODE_NONE ? &p->servers[o] : NULL;
}

/* ------------------------------------------------------------ reload */

/* np's server for op's server s: the same address, else a new node. */
static struct server *cluster_inherit_server(struct cluster *ncl, struct server *s)
{
    struct server *t = cluster_find(ncl, &s->addr.ss, s->addr.len);
    if (t != NULL || s->addr.len == 0) {
        return t;
    }
    char host[CLUSTER_HOST_MAX + 1];
    const struct conf_addr *a = &s->cs->addr;
    snprintf(host, sizeof(host), "%s", a->host != NULL ? a->host : "");
    bool full;
    return cluster_node_add(ncl, &s->addr.ss, s->addr.len, host, a->port, false, &full);
}

/* The nodes op uses go on in np: each server of op that np has no seed for
 * becomes a node of np, with its connections when they can be kept. */
static void cluster_inherit_nodes(struct pool *np, struct pool *op, bool keep_conns, uint16_t *to)
{
    struct cluster *ncl = np->cluster, *ocl = op->cluster;
    for (uint32_t i = 0; i < op->nservers; i++) {
        struct server *s = &op->servers[i];
        to[i] = NODE_NONE;
        if (!ocl->nodes[i].in_map && i >= op->cp->nservers) {
            continue; /* a node that left the cluster: it finishes in op */
        }
        struct server *t = cluster_inherit_server(ncl, s);
        if (t == NULL) {
            continue;
        }
        to[i] = (uint16_t)t->idx;
        struct cluster_node n = ocl->nodes[i];
        n.own = ncl->nodes[t->idx].own;
        n.canary_out = false; /* a canary out has the old numbering: the next one may go */
        ncl->nodes[t->idx] = n;
        t->readonly_conns = s->readonly_conns;
        if (keep_conns && s->conns != NULL && t->idx >= np->cp->nservers) {
            server_adopt(t, s); /* seeds were adopted by reload.c */
        }
    }
    for (uint32_t i = 0; i < np->nservers; i++) {
        struct cluster_node *n = &ncl->nodes[i];
        n->replica_of = n->replica_of != NODE_NONE && n->replica_of < op->nservers
                            ? to[n->replica_of]
                            : NODE_NONE;
        uint8_t k = 0;
        for (uint8_t j = 0; j < n->nreps; j++) {
            if (n->reps[j] < op->nservers && to[n->reps[j]] != NODE_NONE) {
                n->reps[k++] = to[n->reps[j]];
            }
        }
        n->nreps = k;
    }
}

void cluster_pool_inherit(struct pool *np, struct pool *op, bool keep_conns)
{
    struct cluster *ncl = np->cluster, *ocl = op->cluster;
    if (ncl == NULL || ocl == NULL) {
        return;
    }
    /* op asks no more: its query connection closes now, while the counters it
     * is in are still the ones np takes over (server_adopt) */
    cluster_refresh_stop(ocl);
    uint16_t *to = calloc(op->nservers ? op->nservers : 1, sizeof(*to));
    if (to == NULL) {
        return; /* the new pool learns the map itself */
    }
    cluster_inherit_nodes(np, op, keep_conns, to);
    if (ocl->known) {
        for (uint32_t s = 0; s < CLUSTER_SLOTS; s++) {
            ncl->owner[s] = ocl->owner[s] != NODE_NONE ? to[ocl->owner[s]] : NODE_NONE;
            ncl->changed[s] = ocl->changed[s];
        }
        ncl->version = ocl->version;
        ncl->known = true;
    }
    free(to);
    ncl->use_slots = ocl->use_slots;
    if (strcmp(np->cp->name, op->cp->name) == 0) {
        memcpy(ncl->stats, ocl->stats, sizeof(ncl->stats));
    }
    if (ocl->hold != NULL) {
        /* what waits goes on waiting, for the new pool's map */
        hold_cluster_free(ncl->hold, "replaced");
        ncl->hold = ocl->hold;
        ocl->hold = NULL;
        hold_cluster_adopt(ncl->hold, np, ncl->stats);
        cluster_kick(ncl);
    }
}
