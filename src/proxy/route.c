#include "proxy/route.h"

#include <stdio.h>
#include <stdlib.h>

#include "hash/hash.h"
#include "proxy/cluster.h"
#include "proxy/health.h"
#include "proxy/hold.h"
#include "proxy/pool.h"
#include "proxy/replica.h"
#include "proxy/replica_check.h"
#include "proxy/sconn.h"
#include "proxy/server.h"

#define NO_SERVER_MSG  "no server is available for this key"
#define NO_REPLICA_MSG "no replica is available for this read (read_from: replica)"
#define CROSS_MSG      "CROSSSLOT Keys in request don't hash to the same server"
#define CROSS_SLOT_MSG "CROSSSLOT Keys in request don't hash to the same slot"

/* Whether the key's hash is needed: twemproxy hashes neither a key of a
 * one-server pool nor an empty key (its hash is 0, which the distribution
 * places like any other: ketama at its lowest point, modula at the first live
 * server). A one-server pool's reads among replicas are placed by the hash. */
static bool route_needs_hash(const struct pool *p, size_t len, bool readonly)
{
    return len > 0 && (p->nservers > 1 || (p->replica_reads && readonly));
}

static uint32_t route_hash(const struct pool *p, const uint8_t *key, size_t len)
{
    if (p->cp->has_hash_tag) {
        key = hash_tag_apply(key, len, p->cp->hash_tag, &len);
    }
    return hash_key(p->cp->hash, key, len);
}

/* The distribution member for a key of this hash; NULL: none live. (In a
 * master/replica pool the distribution holds the replicas only.) */
static struct server *route_member(struct pool *p, uint32_t hash)
{
    int idx;
    if (p->nservers == 1 && p->mode != POOL_MASTER_REPLICA) {
        idx = p->servers[0].health.ejected ? -1 : 0;
    } else {
        /* random() only where it is used: it costs more than a ketama pick */
        uint32_t rnd = p->dist.type == DIST_RANDOM ? (uint32_t)random() : 0;
        idx = dist_pick(&p->dist, hash, rnd);
    }
    return idx < 0 ? NULL : &p->servers[idx];
}

/* splitmix64's finaliser: every input bit moves every output bit. */
static uint64_t route_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static bool route_replica_usable(struct replica_ep *ep, const struct server *group)
{
    struct server *s = &ep->srv;
    if (!ep->listed || !ep->usable || !replica_check_ok(ep->check) || !health_replica_usable(s)) {
        return false;
    }
    /* right after a failover the sentinels may still list the new master as a
     * replica: it must get writes only through its group */
    return !server_addr_is(group, (const struct sockaddr *)&s->addr.ss, s->addr.len);
}

/* Rendezvous hashing: the usable replica of g (other than skip) with the
 * highest weight for this key hash. A key keeps its replica while that replica
 * stays; when one goes, only its keys move; every worker makes the same choice. */
static struct server *route_replica(struct server *g, uint64_t key_hash, const struct server *skip)
{
    struct replica_set *rs = g->replicas;
    uint64_t h = route_mix(key_hash);
    struct replica_ep *best = NULL;
    uint64_t best_w = 0;
    for (uint32_t i = 0; rs != NULL && i < rs->n; i++) {
        struct replica_ep *ep = rs->v[i];
        if (&ep->srv == skip || !route_replica_usable(ep, g)) {
            continue;
        }
        uint64_t w = route_mix(h ^ ep->seed);
        if (best == NULL || w > best_w || (w == best_w && ep->seed > best->seed)) {
            best = ep;
            best_w = w;
        }
    }
    return best != NULL ? &best->srv : NULL;
}

static int route_sentinel(struct pool *p, uint32_t h, bool readonly, struct route *out)
{
    out->shard = route_member(p, h);
    if (out->shard == NULL) {
        return ROUTE_MISS_SERVER;
    }
    out->target = out->shard;
    if (!readonly || !p->replica_reads) {
        return ROUTE_HIT;
    }
    struct server *r = route_replica(out->shard, h, NULL);
    if (r != NULL) {
        out->target = r;
        return ROUTE_HIT;
    }
    return p->cp->read_from == READ_FROM_PREFER_REPLICA ? ROUTE_HIT : ROUTE_MISS_REPLICA;
}

/* One dataset: writes (and reads by read_from master) go to the master, reads
 * to a live replica placed by the distribution, which holds the replicas only. */
static int route_master_replica(struct pool *p, uint32_t h, bool readonly, struct route *out)
{
    struct server *master = &p->servers[p->cp->master];
    enum conf_read_from rf = p->cp->read_from;
    out->shard = master;
    out->target = master;
    if (!readonly || rf == READ_FROM_MASTER) {
        return ROUTE_HIT;
    }
    struct server *r = route_member(p, h);
    if (r != NULL) {
        out->target = r;
        return ROUTE_HIT;
    }
    return rf == READ_FROM_PREFER_REPLICA ? ROUTE_HIT : ROUTE_MISS_REPLICA;
}

int route_key(struct pool *p, const uint8_t *key, size_t len, bool readonly, struct route *out)
{
    out->shard = out->target = NULL;
    if (p->mode == POOL_CLUSTER) {
        return cluster_route_key(p, key, len, readonly, out); /* the slot map decides */
    }
    /* the hash places the key among members, and a read among a group's replicas */
    uint32_t h = route_needs_hash(p, len, readonly) ? route_hash(p, key, len) : 0;
    switch (p->mode) {
    case POOL_SENTINEL:
        return route_sentinel(p, h, readonly, out);
    case POOL_MASTER_REPLICA:
        return route_master_replica(p, h, readonly, out);
    default:
        out->shard = out->target = route_member(p, h);
        return out->target != NULL ? ROUTE_HIT : ROUTE_MISS_SERVER;
    }
}

int route_request(struct pool *p, const uint8_t *req, const struct spans *keys, bool readonly,
                  struct route *out)
{
    if (keys->n == 0) {
        return route_key(p, req, 0, readonly, out);
    }
    int miss = route_key(p, req + keys->v[0].off, keys->v[0].len, readonly, out);
    if (p->mode == POOL_CLUSTER && miss == ROUTE_HIT && !cluster_keys_one_slot(req, keys)) {
        return ROUTE_MISS_CROSS; /* a node takes keys of one slot only */
    }
    if (miss != ROUTE_HIT || keys->n == 1 || p->mode == POOL_CLUSTER || route_one_dataset(p) ||
        p->cp->distribution == DIST_RANDOM) {
        return miss;
    }
    /* RENAME, SUNIONSTORE, EVAL...: run on one server for keys of another, they
     * would lose writes or read what is not there */
    for (uint32_t i = 1; i < keys->n; i++) {
        struct route other;
        if (route_key(p, req + keys->v[i].off, keys->v[i].len, false, &other) != ROUTE_HIT) {
            return ROUTE_MISS_SERVER;
        }
        if (other.shard != out->shard) {
            return ROUTE_MISS_CROSS;
        }
    }
    return ROUTE_HIT;
}

/* How much a keyless request would like s: connected, else not failing lately. */
static int route_any_rank(struct server *s, uint64_t client_id)
{
    if (server_conn_for(s, client_id, 2)->state == SCONN_CONNECTED) {
        return 0;
    }
    return s->health.failures == 0 ? 1 : 2;
}

struct server *route_any(struct pool *p, uint64_t client_id, uint32_t skip)
{
    for (int rank = 0; rank <= 2; rank++) {
        for (uint32_t i = 0; i < p->nservers; i++) {
            struct server *s = &p->servers[i];
            if (s->health.ejected || !s->addr.known || route_any_rank(s, client_id) != rank) {
                continue;
            }
            if (skip == 0) {
                return s;
            }
            skip--;
        }
    }
    return NULL;
}

/* A sentinel group whose master the first look has not found yet (looking
 * alone stays true once it is found: it matters only while not known). */
static bool route_looking(struct server *s)
{
    return !s->addr.known && s->addr.looking;
}

bool route_pending(struct pool *p, const uint8_t *key, size_t len)
{
    struct route rt;
    if (p->mode == POOL_CLUSTER) {
        return cluster_pending(p, key, len);
    }
    /* a sentinel group's master not known yet; another pool's server held
     * for through its restart (failover_hold_on_crash) */
    bool (*waits)(struct server *) = p->mode == POOL_SENTINEL ? route_looking : hold_restarting;
    if (key == NULL) {
        for (uint32_t i = 0; i < p->nservers; i++) {
            if (waits(&p->servers[i])) {
                return true;
            }
        }
        return false;
    }
    return route_key(p, key, len, false, &rt) == ROUTE_HIT && waits(rt.target);
}

bool route_one_dataset(const struct pool *p)
{
    return p->mode == POOL_MASTER_REPLICA || (p->nservers == 1 && p->mode != POOL_CLUSTER);
}

const char *route_miss_text(const struct pool *p, int miss, const struct route *r, char *buf,
                            size_t cap)
{
    if (miss == ROUTE_MISS_CROSS) {
        return p->mode == POOL_CLUSTER ? CROSS_SLOT_MSG : CROSS_MSG;
    }
    if (miss != ROUTE_MISS_REPLICA) {
        return NO_SERVER_MSG;
    }
    if (p->mode == POOL_SENTINEL && r->shard != NULL) {
        snprintf(buf, cap,
                 "no replica of group '%s' is available for this read (read_from: replica)",
                 r->shard->cs->name);
        return buf;
    }
    return NO_REPLICA_MSG;
}

bool route_may_fall_back(const struct server *s)
{
    const struct pool *p = s->pool;
    if (!conf_reads_replicas(p->cp->read_from)) {
        return false;
    }
    /* a sentinel group's replica, or a static master/replica pool's */
    return s->owner != NULL || (p->mode == POOL_MASTER_REPLICA && s != &p->servers[p->cp->master]);
}

/* Another live replica of a static master/replica pool than target: the next
 * one after it in the pool's order. */
static struct server *route_other_member(struct pool *p, const struct server *target)
{
    uint32_t at = (uint32_t)(target - p->servers);
    for (uint32_t k = 1; k < p->nservers; k++) {
        struct server *s = &p->servers[(at + k) % p->nservers];
        if (s != &p->servers[p->cp->master] && !s->health.ejected && s->addr.known &&
            replica_check_reads(p, s->idx)) {
            return s;
        }
    }
    return NULL;
}

struct server *route_fallback(struct server *target, bool readonly, bool replicas_too)
{
    if (!readonly || !route_may_fall_back(target)) {
        return NULL;
    }
    struct pool *p = target->pool;
    struct server *group = target->owner;
    struct server *other = NULL;
    if (replicas_too) {
        /* a sentinel group's replica: by rendezvous on its own seed, so that the
         * reads of different lost replicas spread over the others */
        other = group != NULL ? route_replica(group, replica_ep_of(target)->seed, target)
                              : route_other_member(p, target);
    }
    if (other != NULL || p->cp->read_from != READ_FROM_PREFER_REPLICA) {
        return other;
    }
    return group != NULL ? group : &p->servers[p->cp->master];
}
