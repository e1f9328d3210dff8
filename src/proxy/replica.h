/*
 * replica: the replicas of sentinel groups (SPEC 10), as the sentinels list
 * them (groups.c passes their lists and +sdown/-sdown news in). Each replica is
 * an endpoint: a hidden struct server owned by its group (its own address and
 * connections, its group's counters), allocated alone so that requests can
 * point at its connections. route.c picks one for a read; this file keeps the
 * set current and frees an endpoint no longer listed once nothing waits on it.
 *
 * (Static master/replica pools need none of this: their replicas are ordinary
 * servers of the pool, see route.c. Both kinds are asked whether they have
 * their master's data: replica_check.h.)
 */
#ifndef NC_REPLICA_H
#define NC_REPLICA_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "proxy/groups.h"
#include "proxy/server.h"

struct replica_check;

/* srv comes first: a hidden server is its endpoint (replica_ep_of). */
struct replica_ep {
    struct server srv;
    struct conf_server cs; /* name for logs; the address is srv.addr */
    char name[160];
    uint64_t seed; /* rendezvous weight, from the address text: same in every worker */
    bool listed;   /* in the sentinels' last list */
    bool usable;   /* ... and up there, linked to its master */
    bool seen;     /* scratch of replica_group_update */
    /* what the replica itself says of its data (replica_check.h), while listed */
    struct replica_check *check;
};

/* The endpoint of a hidden server (s->owner != NULL). */
static inline const struct replica_ep *replica_ep_of(const struct server *s)
{
    return (const struct replica_ep *)(const void *)s;
}

struct replica_set {
    struct replica_ep **v; /* each allocated alone: requests point at its connections */
    uint32_t n;
};

/* The replicas the sentinels list now for group g, all of them: an endpoint
 * left out is no longer used, and freed once no request waits on it (one
 * that comes back before is reused). */
void replica_group_update(struct server *g, const struct replica_addr *v, uint32_t n);
/* The sentinels announce that the replica of g at this address is down (or up
 * again): no read waits for the next heartbeat to see it. */
void replica_group_mark(struct server *g, const struct sockaddr *sa, socklen_t len, bool usable);
/* Stop using every replica of g (a pool that no longer reads from replicas). */
void replica_group_drop(struct server *g);

/* The group's side (server.c). */
void replica_set_free(struct replica_set *rs);
bool replica_set_idle(const struct replica_set *rs);
/* g took over a set from a server of a reloaded pool: repoint every endpoint. */
void replica_set_adopt(struct server *g);
/* A hidden replica on the proxy's dead list: free it once idle (true). */
bool replica_ep_reap(struct server *s);
/* Free it now, answering what waits on it. */
void replica_ep_free(struct server *s);

#endif
