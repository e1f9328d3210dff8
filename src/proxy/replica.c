#include "proxy/replica.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/sock.h"
#include "proxy/health.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/replica_check.h"
#include "proxy/sconn.h"

/* More replicas than this per group are not used: the list is re-read every
 * heartbeat, and picking is linear in it. */
#define REPLICA_MAX_ENDPOINTS 64

/* splitmix64's finaliser over FNV-1a of the address text: a seed every worker
 * computes alike. */
static uint64_t replica_seed(const char *text)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *c = text; *c != '\0'; c++) {
        h = (h ^ (uint8_t)*c) * 0x100000001b3ULL;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

static struct replica_ep *replica_ep_new(struct server *g, const struct sockaddr *sa, socklen_t len)
{
    struct replica_ep *ep = calloc(1, sizeof(*ep));
    char addr[96];
    if (ep == NULL) {
        return NULL;
    }
    sock_addr_str(sa, len, addr, sizeof(addr));
    snprintf(ep->name, sizeof(ep->name), "%s replica %s", g->cs->name, addr);
    ep->seed = replica_seed(addr);
    ep->cs.name = ep->name;
    ep->cs.pname = ep->name;
    ep->cs.weight = 1;
    if (server_init(&ep->srv, g->pool, &ep->cs, g->idx) != 0) {
        server_deinit(&ep->srv);
        free(ep);
        return NULL;
    }
    memcpy(&ep->srv.addr.ss, sa, len);
    ep->srv.addr.len = len;
    ep->srv.addr.known = true;
    ep->srv.owner = g;
    if (g->pool->replica_reads) {
        ep->check = replica_check_new(g->pool, &ep->srv); /* NULL (no memory): unchecked */
    }
    return ep;
}

/* Out of the set: its requests in flight finish, then the proxy frees it
 * (replica_ep_reap), so nothing ever points at freed memory. */
static void replica_ep_retire(struct replica_ep *ep)
{
    struct proxy *px = ep->srv.pool->px;
    ep->listed = false;
    replica_check_free(ep->check); /* it gets no more reads: nothing to ask */
    ep->check = NULL;
    ep->srv.next_dead = px->dead_servers;
    px->dead_servers = &ep->srv;
}

void replica_ep_free(struct server *s)
{
    replica_check_free(((struct replica_ep *)s)->check);
    server_deinit(s);
    free((struct replica_ep *)s);
}

bool replica_ep_reap(struct server *s)
{
    if (!server_idle(s)) {
        return false;
    }
    replica_ep_free(s);
    return true;
}

static struct replica_ep *replica_find(struct replica_set *rs, const struct sockaddr *sa,
                                       socklen_t len)
{
    for (uint32_t i = 0; rs != NULL && i < rs->n; i++) {
        if (server_addr_is(&rs->v[i]->srv, sa, len)) {
            return rs->v[i];
        }
    }
    return NULL;
}

static void replica_note(const struct server *g, const struct replica_ep *ep, const char *what)
{
    log_notice("pool '%s': group '%s': %s %s", g->pool->cp->name, g->cs->name, ep->name, what);
}

static void replica_list_one(struct server *g, struct replica_set *rs, const struct replica_addr *a)
{
    struct replica_ep *ep = replica_find(rs, (const struct sockaddr *)&a->ss, a->len);
    if (ep == NULL) {
        if (rs->n >= REPLICA_MAX_ENDPOINTS) {
            return;
        }
        ep = replica_ep_new(g, (const struct sockaddr *)&a->ss, a->len);
        if (ep == NULL) {
            log_error("pool '%s': group '%s': out of memory for a replica", g->pool->cp->name,
                      g->cs->name);
            return;
        }
        ep->listed = true;
        rs->v[rs->n++] = ep;
    }
    if (ep->seen) {
        return; /* listed twice: the first entry says it */
    }
    ep->seen = true;
    if (a->usable && !ep->usable) {
        /* the sentinels see it serve again: whatever failed before is over */
        health_reset(&ep->srv);
    }
    if (ep->usable != a->usable) {
        replica_note(g, ep, a->usable ? "is usable for reads" : "is not usable (sentinels)");
    }
    ep->usable = a->usable;
}

static struct replica_set *replica_set_of(struct server *g)
{
    if (g->replicas == NULL) {
        struct replica_set *rs = calloc(1, sizeof(*rs));
        struct replica_ep **arr = calloc(REPLICA_MAX_ENDPOINTS, sizeof(*arr));
        if (rs == NULL || arr == NULL) {
            free(rs);
            free(arr);
            return NULL;
        }
        rs->v = arr;
        g->replicas = rs;
    }
    return g->replicas;
}

void replica_group_update(struct server *g, const struct replica_addr *v, uint32_t n)
{
    struct replica_set *rs = n > 0 ? replica_set_of(g) : g->replicas;
    if (rs == NULL) {
        return;
    }
    for (uint32_t i = 0; i < rs->n; i++) {
        rs->v[i]->seen = false;
    }
    for (uint32_t i = 0; i < n; i++) {
        replica_list_one(g, rs, &v[i]);
    }
    for (uint32_t i = 0; i < rs->n;) {
        struct replica_ep *ep = rs->v[i];
        if (ep->seen) {
            i++;
            continue;
        }
        if (ep->usable) {
            replica_note(g, ep, "is no longer listed by the sentinels");
        }
        rs->v[i] = rs->v[--rs->n];
        replica_ep_retire(ep);
    }
}

void replica_group_mark(struct server *g, const struct sockaddr *sa, socklen_t len, bool usable)
{
    struct replica_ep *ep = replica_find(g->replicas, sa, len);
    if (ep == NULL || ep->usable == usable) {
        return; /* a new replica waits for the next list: it says more */
    }
    if (usable) {
        health_reset(&ep->srv);
    }
    ep->usable = usable;
    replica_note(g, ep, usable ? "is usable for reads (-sdown)" : "is not usable (+sdown)");
}

void replica_group_drop(struct server *g)
{
    replica_group_update(g, NULL, 0);
}

void replica_set_free(struct replica_set *rs)
{
    if (rs == NULL) {
        return;
    }
    for (uint32_t i = 0; i < rs->n; i++) {
        replica_ep_free(&rs->v[i]->srv);
    }
    free(rs->v);
    free(rs);
}

bool replica_set_idle(const struct replica_set *rs)
{
    for (uint32_t i = 0; rs != NULL && i < rs->n; i++) {
        if (!server_idle(&rs->v[i]->srv)) {
            return false;
        }
    }
    return true;
}

void replica_set_adopt(struct server *g)
{
    for (uint32_t i = 0; g->replicas != NULL && i < g->replicas->n; i++) {
        struct server *r = &g->replicas->v[i]->srv;
        r->owner = g;
        r->pool = g->pool;
        replica_check_moved(g->replicas->v[i]->check, g->pool);
    }
}
