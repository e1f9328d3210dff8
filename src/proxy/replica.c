#include "proxy/replica.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/instance.h"
#include "core/log.h"
#include "net/sock.h"
#include "proxy/pool.h"
#include "proxy/server.h"

#define NO_SERVER_MSG  "no server is available for this key"
#define NO_REPLICA_MSG "no replica is available for this read (read_from: replica)"

/* More replicas than this per group are not used: the list is re-read every
 * heartbeat, and picking is linear in it. */
#define REPLICA_MAX_ENDPOINTS 64

/* A replica of a sentinel group: a hidden server and what the sentinels say.
 * srv comes first: a hidden server is its endpoint (replica_ep_of). */
struct replica_ep {
    struct server srv;
    struct conf_server cs; /* name for logs; the address is srv.addr */
    char name[160];
    uint64_t seed; /* rendezvous weight, from the address text: same in every worker */
    bool listed;   /* in the sentinels' last list */
    bool usable;   /* ... and up there, linked to its master */
    bool seen;     /* scratch of replica_group_update */
};

struct replica_set {
    struct replica_ep **v; /* each allocated alone: requests point at its connections */
    uint32_t n;
};

uint32_t replica_set_count(const struct replica_set *rs)
{
    return rs != NULL ? rs->n : 0;
}

struct server *replica_set_at(struct replica_set *rs, uint32_t i)
{
    return &rs->v[i]->srv;
}

static struct replica_ep *replica_ep_of(struct server *s)
{
    return (struct replica_ep *)s;
}

bool replica_pool_is_split(const struct pool *p)
{
    return p->cp->nsentinels == 0 && p->cp->read_from != READ_FROM_NONE;
}

bool replica_server_is_master(const struct server *s)
{
    const struct pool *p = s->pool;
    return s->owner == NULL && replica_pool_is_split(p) && s->idx == p->cp->master;
}

bool replica_pool_reads_replicas(const struct pool *p)
{
    enum conf_read_from rf = p->cp->read_from;
    return p->cp->nsentinels > 0 && (rf == READ_FROM_REPLICA || rf == READ_FROM_PREFER_REPLICA);
}

static struct server *replica_master(struct pool *p)
{
    return &p->servers[p->cp->master];
}

/* splitmix64's finaliser: every input bit moves every output bit. */
static uint64_t replica_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static bool replica_ep_usable(struct replica_ep *ep, const struct server *group, uint64_t now)
{
    struct server *s = &ep->srv;
    if (!ep->listed || !ep->usable) {
        return false;
    }
    if (s->ejected) {
        if (now < s->retry_at_ms) {
            return false;
        }
        s->ejected = false; /* its time out is over: one more chance */
        s->failures = 0;
        log_notice("pool '%s': %s gets reads again", s->pool->cp->name, s->cs->name);
    }
    /* right after a failover the sentinels may still list the new master as a
     * replica: it must get writes only through its group */
    return !server_addr_is(group, (const struct sockaddr *)&s->addr.ss, s->addr.len);
}

/* Rendezvous hashing: the usable endpoint with the highest weight for this key
 * hash. A key keeps its replica while that replica stays; when one goes, only
 * its keys move. */
static struct server *replica_pick(struct pool *p, struct server *g, uint32_t key_hash)
{
    struct replica_set *rs = g->replicas;
    if (rs == NULL || rs->n == 0) {
        return NULL;
    }
    uint64_t h = replica_mix(key_hash);
    uint64_t now = ev_now(p->inst->loop);
    struct replica_ep *best = NULL;
    uint64_t best_w = 0;
    for (uint32_t i = 0; i < rs->n; i++) {
        struct replica_ep *ep = rs->v[i];
        if (!replica_ep_usable(ep, g, now)) {
            continue;
        }
        uint64_t w = replica_mix(h ^ ep->seed);
        if (best == NULL || w > best_w || (w == best_w && ep->seed > best->seed)) {
            best = ep;
            best_w = w;
        }
    }
    return best != NULL ? &best->srv : NULL;
}

struct server *replica_route(struct pool *p, const uint8_t *key, size_t len, bool readonly)
{
    struct server *group;
    return replica_route_group(p, key, len, readonly, &group);
}

struct server *replica_route_group(struct pool *p, const uint8_t *key, size_t len, bool readonly,
                                   struct server **group)
{
    enum conf_read_from rf = p->cp->read_from;
    *group = NULL;
    if (p->cp->nsentinels > 0) {
        if (!readonly || !replica_pool_reads_replicas(p)) {
            *group = pool_route(p, key, len);
            return *group;
        }
        /* one hash places the key on its group and on one of its replicas */
        uint32_t h = pool_key_hash(p, key, len);
        struct server *g = pool_route_hashed(p, h, len);
        *group = g;
        if (g == NULL) {
            return NULL;
        }
        struct server *r = replica_pick(p, g, h);
        if (r == NULL && rf == READ_FROM_PREFER_REPLICA) {
            return g;
        }
        return r;
    }
    if (rf == READ_FROM_NONE) {
        struct server *s = pool_route(p, key, len);
        *group = s;
        return s;
    }
    if (!readonly || rf == READ_FROM_MASTER) {
        return replica_master(p);
    }
    /* the distribution holds only the replicas: this is a live one or NULL */
    struct server *s = pool_route(p, key, len);
    if (s == NULL && rf == READ_FROM_PREFER_REPLICA) {
        return replica_master(p);
    }
    *group = s;
    return s;
}

const char *replica_route_error(const struct pool *p, bool readonly)
{
    return replica_route_error_group(p, NULL, readonly, NULL, 0);
}

const char *replica_route_error_group(const struct pool *p, const struct server *group,
                                      bool readonly, char *buf, size_t cap)
{
    if (!readonly || p->cp->read_from != READ_FROM_REPLICA) {
        return NO_SERVER_MSG;
    }
    if (p->cp->nsentinels > 0) {
        if (group == NULL || buf == NULL) {
            return NO_SERVER_MSG; /* the group itself is out */
        }
        snprintf(buf, cap,
                 "no replica of group '%s' is available for this read (read_from: replica)",
                 group->cs->name);
        return buf;
    }
    return NO_REPLICA_MSG;
}

struct server *replica_fallback(const struct server *s, bool readonly)
{
    if (readonly && s->owner != NULL && s->pool->cp->read_from == READ_FROM_PREFER_REPLICA) {
        return s->owner;
    }
    return NULL;
}

/* ------------------------------------------------------------------ the set */

static uint64_t replica_seed(const char *text)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 */
    for (const char *c = text; *c != '\0'; c++) {
        h = (h ^ (uint8_t)*c) * 0x100000001b3ULL;
    }
    return replica_mix(h);
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
        if (ep->srv.conns == NULL) {
            ep->srv.nconns = 0;
        }
        server_deinit(&ep->srv);
        free(ep);
        return NULL;
    }
    memcpy(&ep->srv.addr.ss, sa, len);
    ep->srv.addr.len = len;
    ep->srv.addr.known = true;
    ep->srv.owner = g;
    return ep;
}

static bool replica_ep_idle(const struct replica_ep *ep)
{
    for (uint32_t i = 0; i < ep->srv.nconns; i++) {
        const struct sconn *c = &ep->srv.conns[i];
        /* a dirty connection is on the instance's flush list: not freed under it */
        if (c->head != NULL || c->dirty) {
            return false;
        }
    }
    return true;
}

static void replica_ep_free(struct replica_ep *ep, const char *why)
{
    ep->listed = false; /* closing is no failure of the replica */
    for (uint32_t i = 0; i < ep->srv.nconns; i++) {
        if (ep->srv.conns[i].state != SCONN_CLOSED) {
            sconn_fail(&ep->srv.conns[i], why, -1);
        }
    }
    server_deinit(&ep->srv);
    free(ep);
}

static struct replica_ep *replica_find(struct replica_set *rs, const struct sockaddr *sa,
                                       socklen_t len)
{
    for (uint32_t i = 0; i < rs->n; i++) {
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
        rs->v[rs->n++] = ep;
    }
    if (ep->seen) {
        return; /* listed twice: the first entry says it */
    }
    ep->seen = true;
    bool was = ep->listed && ep->usable;
    if (a->usable && !was) {
        /* the sentinels see it serve again: whatever failed before is over */
        ep->srv.ejected = false;
        ep->srv.failures = 0;
    }
    ep->listed = true;
    ep->usable = a->usable;
    if (was != a->usable) {
        replica_note(g, ep, a->usable ? "is usable for reads" : "is not usable (sentinels)");
    }
}

void replica_group_update(struct server *g, const struct replica_addr *v, uint32_t n)
{
    struct replica_set *rs = g->replicas;
    if (rs == NULL) {
        if (n == 0) {
            return;
        }
        rs = calloc(1, sizeof(*rs));
        struct replica_ep **arr = calloc(REPLICA_MAX_ENDPOINTS, sizeof(*arr));
        if (rs == NULL || arr == NULL) {
            free(rs);
            free(arr);
            return;
        }
        rs->v = arr;
        g->replicas = rs;
    }
    for (uint32_t i = 0; i < rs->n; i++) {
        rs->v[i]->seen = false;
    }
    for (uint32_t i = 0; i < n; i++) {
        replica_list_one(g, rs, &v[i]);
    }
    for (uint32_t i = 0; i < rs->n;) {
        struct replica_ep *ep = rs->v[i];
        if (!ep->seen && ep->listed) {
            ep->listed = false;
            if (ep->usable) {
                replica_note(g, ep, "is no longer listed by the sentinels");
            }
        }
        /* kept while requests wait on it, so none points at freed memory */
        if (!ep->listed && replica_ep_idle(ep)) {
            rs->v[i] = rs->v[--rs->n];
            replica_ep_free(ep, "replica no longer listed by the sentinels");
            continue;
        }
        i++;
    }
}

void replica_group_mark(struct server *g, const struct sockaddr *sa, socklen_t len, bool usable)
{
    struct replica_ep *ep = g->replicas != NULL ? replica_find(g->replicas, sa, len) : NULL;
    if (ep == NULL || !ep->listed || ep->usable == usable) {
        return; /* a new replica waits for the next list: it says more */
    }
    if (usable) {
        ep->srv.ejected = false;
        ep->srv.failures = 0;
    }
    ep->usable = usable;
    replica_note(g, ep, usable ? "is usable for reads (-sdown)" : "is not usable (+sdown)");
}

void replica_endpoint_failed(struct server *s)
{
    const struct conf_pool *cp = s->pool->cp;
    if (!replica_ep_of(s)->listed) {
        return; /* it gets no read anyway */
    }
    s->failures++;
    if (s->ejected || s->failures < cp->server_failure_limit) {
        return;
    }
    s->ejected = true;
    s->retry_at_ms = ev_now(s->pool->inst->loop) + (uint64_t)cp->server_retry_timeout_ms;
    log_warn("pool '%s': %s gets no read for %lld ms after %u failures", cp->name, s->cs->name,
             (long long)cp->server_retry_timeout_ms, s->failures);
}

void replica_set_free(struct replica_set *rs)
{
    if (rs == NULL) {
        return;
    }
    for (uint32_t i = 0; i < rs->n; i++) {
        replica_ep_free(rs->v[i], "proxy is shutting down");
    }
    free(rs->v);
    free(rs);
}

bool replica_set_idle(const struct replica_set *rs)
{
    for (uint32_t i = 0; rs != NULL && i < rs->n; i++) {
        if (!replica_ep_idle(rs->v[i])) {
            return false;
        }
    }
    return true;
}

void replica_set_adopt(struct server *s)
{
    for (uint32_t i = 0; s->replicas != NULL && i < s->replicas->n; i++) {
        struct server *r = &s->replicas->v[i]->srv;
        r->owner = s;
        r->pool = s->pool;
    }
}
